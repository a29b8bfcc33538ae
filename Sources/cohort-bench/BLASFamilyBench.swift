import CohortCluster
import CohortTensor
import CohortTraining
import Foundation

// MARK: what pinning a BLAS kernel family costs: sgemm and the MLP step on each family

/// A run pins every worker to one OpenBLAS kernel family (`cluster.blas_kernel`), so a mix of
/// machines trains the same bytes. This reruns the sgemm and MLP-step figures under each family
/// this CPU can run (OPENBLAS_CORETYPE, set before OpenBLAS loads, so in a child process),
/// alternating families for three rounds, and reports each against the family OpenBLAS picks
/// by itself here.
func blasFamilyBench(rounds: Int = 3) {
    guard selected("blas_families") else { return }
    let families = BLASMachine.current.runnable.compactMap(BLASFamily.init(rawValue:))
    let own = BLASMachine.current.loaded
    var best: [String: [String: Double]] = [:]   // family → figure → best value
    for _ in 0..<rounds {
        for family in families {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
            process.arguments = ["=sgemm", "=mlp_train_step"]
            process.environment = ProcessInfo.processInfo.environment.merging(["OPENBLAS_CORETYPE": family.coreType]) { _, new in new }
            let pipe = Pipe()
            process.standardOutput = pipe
            guard (try? process.run()) != nil else { continue }
            let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            for line in text.split(separator: "\n") {
                guard let m = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { continue }
                let (name, value): (String, Double?) = m["bench"] as? String == "sgemm"
                    ? ("sgemm \(m["shape"] ?? "")", m["raw_gflops"] as? Double) : ("mlp_train_step", m["samples_per_s"] as? Double)
                guard let value else { continue }
                best[family.rawValue, default: [:]][name] = max(best[family.rawValue]?[name] ?? 0, value)
            }
        }
    }
    for family in families {
        for (figure, value) in (best[family.rawValue] ?? [:]).sorted(by: { $0.key < $1.key }) {
            let baseline = best[own]?[figure] ?? .nan
            emit(["bench": "blas_families", "family": family.rawValue, "figure": figure,
                  "value": value, "unit": figure.hasPrefix("sgemm") ? "GFLOP/s" : "samples/s",
                  "vs_own_family": value / baseline, "own_family": own, "rounds": rounds])
        }
    }
}
