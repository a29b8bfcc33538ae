import CohortData
import CohortNN
import CohortTensor
import CohortTraining
import Foundation

/// A checkpoint: everything needed to continue a run bit for bit, in one safetensors file.
/// Weights keep their PyTorch names (so the file also loads into PyTorch); the optimizer state is
/// stored as `optimizer.<parameter>.<state>` (e.g. `optimizer.0.weight.exp_avg`); the step,
/// the optimizer's update count, the seed, the resolved config and its hash go in
/// `__metadata__`, with a checksum of every tensor. The data order needs no cursor of its own: it
/// follows from the seed and the step.
package struct Checkpoint: Sendable {
    /// Format 2 adds the resolved config and hashes it by keys (`ConfigFingerprint`); format 1
    /// files are still read.
    static let formatVersion = "2"

    package var step: Int
    package var optimizerStep: Int
    package var parameters: [Tensor]
    package var optimizerState: [[Tensor]]
    package var configHash: String
    /// The config the checkpoint was made with (format 2), to name what changed.
    package var resolvedConfig: String? = nil
    package var format = Checkpoint.formatVersion

    /// The hash a checkpoint of this config must carry (see `ConfigFingerprint`).
    package static func configHash(_ config: ExperimentConfig) -> String {
        ConfigFingerprint.hash(config.resolvedYAML)
    }

    /// Whether this checkpoint continues `config`: the same hash, in the checkpoint's format.
    package func matches(_ config: ExperimentConfig) -> Bool {
        configHash == (format == "1" ? ConfigFingerprint.legacyHash(config.resolvedYAML) : Self.configHash(config))
    }

    package func write(to path: String, model: Sequential, optimizer: Optimizer, config: ExperimentConfig) throws {
        var entries = zip(model.parameterNames, parameters).map { Safetensors.Entry($0, $1) }
        for (name, states) in zip(model.parameterNames, optimizerState) {
            for (stateName, tensor) in zip(optimizer.rule.stateNames, states) {
                entries.append(Safetensors.Entry("optimizer.\(name).\(stateName)", tensor))
            }
        }
        let metadata = ["format": "pt", "producer": "cohort", "cohort_checkpoint": Self.formatVersion,
                        "step": "\(step)", "optimizer_step": "\(optimizerStep)", "seed": "\(config.seed)",
                        "config_hash": configHash, "config": config.name, "optimizer": config.optimizer.name.rawValue,
                        "resolved_config": config.resolvedYAML]
        try Safetensors.write(entries, metadata: metadata, to: path)
    }

    /// Reads and checks a checkpoint against the model and optimizer it must continue.
    package static func read(_ path: String, model: Sequential, optimizer: Optimizer) throws -> Checkpoint {
        let (entries, metadata) = try Safetensors.read(path: path)
        func fail(_ problem: String) -> Safetensors.FormatError { Safetensors.FormatError(path: path, problem: problem) }
        guard let format = metadata["cohort_checkpoint"], ["1", formatVersion].contains(format), let step = Int(metadata["step"] ?? ""),
              let optimizerStep = Int(metadata["optimizer_step"] ?? ""), let hash = metadata["config_hash"] else {
            throw fail("not a Cohort checkpoint (no step, optimizer_step or config_hash in its metadata)")
        }
        let byName = Dictionary(entries.map { ($0.name, $0.tensor) }, uniquingKeysWith: { a, _ in a })
        var parameters: [Tensor] = [], state: [[Tensor]] = []
        for (index, entry) in model.parameterSpecs.enumerated() {
            guard let p = byName[entry.name], p.shape == entry.spec.shape else { throw fail("'\(entry.name)' is missing or has the wrong shape") }
            parameters.append(p)
            state.append(try optimizer.rule.stateNames.map { stateName in
                guard let t = byName["optimizer.\(entry.name).\(stateName)"], t.shape == optimizer.state[index].first?.shape ?? t.shape else {
                    throw fail("optimizer state 'optimizer.\(entry.name).\(stateName)' is missing or has the wrong shape")
                }
                return t
            })
        }
        return Checkpoint(step: step, optimizerStep: optimizerStep, parameters: parameters, optimizerState: state, configHash: hash,
                          resolvedConfig: metadata["resolved_config"], format: format)
    }
}

/// checkpoints/step-N.safetensors in a run directory: written every `every` steps, the newest
/// `keepLast` kept.
package struct CheckpointDirectory {
    package let path: String

    package init(runDirectory: String) { path = "\(runDirectory)/checkpoints" }

    package func file(step: Int) -> String { "\(path)/step-\(step).safetensors" }

    /// Checkpoint steps present, newest first (temp files of an interrupted write are ignored).
    package func steps() -> [Int] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        return names.compactMap { name -> Int? in
            guard name.hasPrefix("step-"), name.hasSuffix(".safetensors") else { return nil }
            return Int(name.dropFirst(5).dropLast(12))
        }.sorted(by: >)
    }

    package func save(_ checkpoint: Checkpoint, model: Sequential, optimizer: Optimizer, config: ExperimentConfig, keepLast: Int) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        try checkpoint.write(to: file(step: checkpoint.step), model: model, optimizer: optimizer, config: config)
        for old in steps().dropFirst(keepLast) { try? FileManager.default.removeItem(atPath: file(step: old)) }
    }

    /// The newest checkpoint that reads back whole, with the reasons older ones were passed over.
    package func newestValid(model: Sequential, optimizer: Optimizer) -> (checkpoint: Checkpoint?, skipped: [String]) {
        var skipped: [String] = []
        for step in steps() {
            do { return (try Checkpoint.read(file(step: step), model: model, optimizer: optimizer), skipped) } catch {
                skipped.append("\(error)")
            }
        }
        return (nil, skipped)
    }
}
