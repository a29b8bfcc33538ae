import CohortTensor
import CohortTraining
import Foundation

/// This process's OpenBLAS: the family it loaded and the families its CPU can run, as a HELLO
/// reports them. COHORT_SIMULATE_CPU=FAMILY makes it behave as a machine whose CPU goes no
/// further than that family (to rehearse a mix of machines on one): it offers only that family
/// and the older ones, and must have been started with OPENBLAS_CORETYPE among them.
package struct BLASMachine: Sendable {
    package var loaded: String
    package var runnable: [String]

    /// Read once: OpenBLAS chose its kernels when it loaded, and the CPU does not change.
    package static let current: BLASMachine = {
        let core = BLAS.coreName
        let loaded = BLASFamily(coreName: core)?.rawValue ?? core.lowercased()
        var runnable = BLASFamily.runnable(cpuFlags: cpuFlags).map(\.rawValue)
        if let simulated = ProcessInfo.processInfo.environment["COHORT_SIMULATE_CPU"].flatMap(BLASFamily.init(rawValue:)),
           let start = BLASFamily.allCases.firstIndex(of: simulated) {
            runnable = BLASFamily.allCases[start...].map(\.rawValue).filter(runnable.contains)
        }
        // A core with kernels of its own can run them, and the families its flags allow.
        if BLASFamily(rawValue: loaded) == nil { runnable.append(loaded) }
        return BLASMachine(loaded: loaded, runnable: runnable)
    }()

    static var cpuFlags: Set<String> {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") }),
              let colon = line.firstIndex(of: ":") else { return [] }
        return Set(line[line.index(after: colon)...].split(separator: " ").map(String.init))
    }

    /// Replaces this process with itself, OpenBLAS told to load `family` (the worker's answer
    /// to a coordinator that runs another family). Returns only if that cannot be done.
    package static func reexec(as family: String) -> String {
        guard let coreType = BLASFamily(rawValue: family)?.coreType else { return "no BLAS kernel family \(family) on this machine" }
        let environment = ProcessInfo.processInfo.environment
        if environment["COHORT_BLAS_REEXEC"] == family {
            // Started with it already and still another family: OpenBLAS ignores OPENBLAS_CORETYPE
            // (a build without DYNAMIC_ARCH). Going round again would not help.
            return "OpenBLAS here loaded \(BLAS.coreName) although OPENBLAS_CORETYPE=\(coreType) asked for \(family) " +
                "(an OpenBLAS built without DYNAMIC_ARCH cannot switch kernels)"
        }
        var merged = environment
        merged["OPENBLAS_CORETYPE"] = coreType
        merged["COHORT_BLAS_REEXEC"] = family
        let arguments = CommandLine.arguments
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        var envp: [UnsafeMutablePointer<CChar>?] = merged.map { strdup("\($0.key)=\($0.value)") } + [nil]
        execve("/proc/self/exe", &argv, &envp)
        let reason = String(cString: strerror(errno))
        for p in argv { free(p) }
        for p in envp { free(p) }
        return "cannot restart with the BLAS kernels \(family): \(reason)"
    }
}
