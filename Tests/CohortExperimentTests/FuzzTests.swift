@testable import CohortData
@testable import CohortExperiment
@testable import CohortTensor
import CohortTestSupport
import Foundation
import Testing

/// Seeded, bounded fuzzing of everything Cohort reads from a file: the process must never trap,
/// whatever the bytes (a trap would end the test run itself).
@Suite struct FuzzTests {
    @Test func mutatedSafetensorsNeverTrap() throws {
        let valid = [UInt8](Safetensors.encode([Safetensors.Entry("0.weight", Tensor.ones([3, 4])), Safetensors.Entry("0.bias", Tensor([1, 2, 3]))],
                                               metadata: ["step": "7"]))
        let headerEnd = 8 + Int(valid[0]) + Int(valid[1]) << 8
        var rng = SplitMix(state: 1)
        var rejected = 0
        for i in 0..<3000 {
            let bytes = mutate(valid, using: &rng, focus: i % 4 == 0 ? nil : 0..<headerEnd)
            if (try? Safetensors.decode(Data(bytes))) == nil { rejected += 1 }
        }
        #expect(rejected > 1000)
    }

    @Test func mutatedIDXAndNPYNeverTrap() throws {
        let idx = [0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 3] + [UInt8](repeating: 7, count: 18)
        let npy = [UInt8](NPY.encode(Tensor(shape: [2, 3], [1, 2, 3, 4, 5, 6])))
        var rng = SplitMix(state: 2)
        var rejected = 0
        for _ in 0..<3000 {
            if (try? IDX.parse(Data(mutate(idx, using: &rng, focus: 0..<16)), file: "fuzz", expectedDimensions: 3)) == nil { rejected += 1 }
            if (try? NPY.parse(Data(mutate(npy, using: &rng, focus: 0..<80)), file: "fuzz")) == nil { rejected += 1 }
        }
        #expect(rejected > 2000)
    }

    /// Every shipped config, mutated: parsed and, when valid, read into an experiment's typed
    /// setup, or refused with a config error; never a trap, and quickly.
    @Test func mutatedConfigsNeverTrap() throws {
        let dir = packageRoot.appendingPathComponent("configs")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".yaml") }.sorted()
        var rng = SplitMix(state: 3)
        let start = Date()
        var accepted = 0
        for i in 0..<1500 {
            let text = try String(contentsOf: dir.appendingPathComponent(files[i % files.count]), encoding: .utf8)
            let bytes = mutate(Array(text.utf8), using: &rng)
            guard let mutated = String(bytes: bytes, encoding: .utf8) else { continue }
            let file = files[i % files.count]
            if let config = try? ExperimentConfig.parse(mutated, file: "fuzz.yaml", overrides: ["data.path=\(mnistDirectory.path)"]) {
                accepted += 1
                _ = try? config.model.spec.makeModel()
                // Small data: build the whole experiment too (its data checks, its first weights).
                if !file.hasPrefix("mnist") { _ = try? Experiment(config: config) }
            }
        }
        #expect(accepted > 50)
        #expect(Date().timeIntervalSince(start) < 60)
    }
}
