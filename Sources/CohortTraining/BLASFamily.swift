
/// A family of OpenBLAS sgemm kernels. OpenBLAS (built with DYNAMIC_ARCH, as Debian's is) picks
/// its kernels by CPU when it loads, and different kernels add in a different order: the same
/// micro-batch gives other bits on an AVX-512 machine than on an AVX2 one. So that weights do
/// not depend on which machine computed what, every worker of a run uses one family, chosen by
/// the coordinator (`cluster.blas_kernel`) and set with OPENBLAS_CORETYPE before OpenBLAS loads.
///
/// Families whose sgemm kernels give the same bits are one family here: Zen runs the Haswell
/// kernels (measured: the same bytes). Cooper Lake, SkylakeX and Sandybridge each differ from
/// all others (measured with OpenBLAS 0.3.21 on an AVX-512 machine).
package enum BLASFamily: String, CaseIterable, Sendable, Codable {
    // Fastest first: `auto` takes the first one every worker can run.
    case cooperlake, skylakex, haswell, sandybridge, nehalem, core2, prescott

    /// The value of OPENBLAS_CORETYPE that selects this family.
    package var coreType: String {
        switch self {
        case .cooperlake: "Cooperlake"
        case .skylakex: "SkylakeX"
        case .haswell: "Haswell"
        case .sandybridge: "Sandybridge"
        case .nehalem: "Nehalem"
        case .core2: "Core2"
        case .prescott: "Prescott"
        }
    }

    /// The family of an OpenBLAS core name (`openblas_get_corename()`), nil for a core with
    /// kernels of its own (older AMD families, ARM cores).
    package init?(coreName: String) {
        switch coreName.lowercased() {
        case "cooperlake": self = .cooperlake
        case "skylakex": self = .skylakex
        case "haswell", "zen": self = .haswell
        case "sandybridge": self = .sandybridge
        case "nehalem", "dunnington": self = .nehalem
        case "core2", "penryn": self = .core2
        case "prescott", "atom": self = .prescott
        default: return nil
        }
    }

    /// What a CPU needs to run the family (the flags of /proc/cpuinfo).
    var requiredFlags: [String] {
        switch self {
        case .cooperlake: ["avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl", "avx512_bf16"]
        case .skylakex: ["avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"]
        case .haswell: ["avx2", "fma"]
        case .sandybridge: ["avx"]
        case .nehalem: ["sse4_2"]
        case .core2: ["ssse3"]
        case .prescott: ["pni"]
        }
    }

    /// The families a CPU with these flags can run, fastest first.
    package static func runnable(cpuFlags: Set<String>) -> [BLASFamily] {
        allCases.filter { $0.requiredFlags.allSatisfy(cpuFlags.contains) }
    }

    /// The family `auto` chooses for workers that loaded `loaded` and can run `runnable`: the
    /// one they all loaded when they agree (nothing to change, nothing lost), otherwise the
    /// fastest family they can all run; nil when they share none.
    package static func choose(loaded: [String], runnable: [[String]]) -> String? {
        if let first = loaded.first, loaded.allSatisfy({ $0 == first }), runnable.allSatisfy({ $0.contains(first) }) { return first }
        return allCases.map(\.rawValue).first { family in runnable.allSatisfy { $0.contains(family) } }
    }
}
