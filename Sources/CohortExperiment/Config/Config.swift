import CohortData
import CohortTraining
import Foundation
import Yams

/// An experiment, as read from a YAML config. configs/README.md documents every key; each
/// section is read in its own file (`Config+Data.swift`, `Config+Model.swift`, …).
package struct ExperimentConfig: Sendable {
    package var name: String
    package var seed: UInt64
    package var data: DataSpec
    package var model: ModelConfig
    package var training: TrainingConfig
    package var optimizer: OptimizerConfig
    package var cluster: ClusterConfig
    package var evaluation: EvaluationConfig
    package var checkpoint: CheckpointConfig
    /// The resolved config as YAML (overrides applied), written to the run directory.
    package var resolvedYAML: String
    var sourcePath: String

    /// What a worker needs to rebuild the model and loss (weights travel in the protocol).
    var gradientSpec: GradientSpec {
        GradientSpec(model: model.spec, loss: training.loss, reduction: training.reduction, wireDType: cluster.wireDType ?? .fp32)
    }
}

extension ExperimentConfig {
    /// Reads and validates a config file, applying `--set key=value` overrides first.
    package static func load(path: String, overrides: [String] = []) throws(ConfigError) -> ExperimentConfig {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw ConfigError(file: path, line: nil, column: nil, keyPath: "", message: "cannot read the file (\(error.localizedDescription))")
        }
        return try parse(text, file: path, overrides: overrides)
    }

    package static func parse(_ text: String, file: String, overrides: [String] = []) throws(ConfigError) -> ExperimentConfig {
        try ConfigLimits.checkText(text, file: file)
        var root: Node
        do {
            root = try Yams.compose(yaml: text) ?? Node.mapping([:])
        } catch let error as YamlError {
            throw yamlError(error, file: file)
        } catch {
            throw ConfigError(file: file, line: nil, column: nil, keyPath: "", message: "\(error)")
        }
        try ConfigLimits.checkTree(root, file: file)
        var overridden: Set<String> = []
        for assignment in overrides {
            let (key, value) = try parseOverride(assignment)
            root = try setting(value, at: key.split(separator: ".").map(String.init), in: root, fullKey: key)
            overridden.insert(key)
        }
        let top = ConfigNode(node: root, path: "", file: file, overridden: overridden)
        var config = try read(top, file: file, resolved: "")
        try top.finish()
        // A dataset found by searching is written down, so that the run directory's copy of the
        // config (which local workers and --resume read) names the same files.
        if case .mnist(let directory, _) = config.data.source, root.mapping?["data"]?.mapping?["path"] == nil {
            let absolute = URL(fileURLWithPath: directory).standardized.path
            root = try setting(Node(absolute), at: ["data", "path"], in: root, fullKey: "data.path")
        }
        config.resolvedYAML = (try? Yams.serialize(node: root)) ?? text
        return config
    }

    /// `dotted.key=value`, the value read as YAML.
    static func parseOverride(_ assignment: String) throws(ConfigError) -> (key: String, value: Node) {
        guard let eq = assignment.firstIndex(of: "="), eq != assignment.startIndex else {
            throw ConfigError(file: "--set", line: nil, column: nil, keyPath: assignment, message: "expected dotted.key=value")
        }
        let key = String(assignment[..<eq]), valueText = String(assignment[assignment.index(after: eq)...])
        try ConfigLimits.checkText(valueText, file: "--set \(key)")
        let value: Node
        do { value = try Yams.compose(yaml: valueText) ?? Node("") } catch {
            throw ConfigError(file: "--set", line: nil, column: nil, keyPath: key, message: "value '\(valueText)' is not valid YAML")
        }
        try ConfigLimits.checkTree(value, file: "--set \(key)")
        return (key, value)
    }

    static func setting(_ value: Node, at path: [String], in node: Node, fullKey: String) throws(ConfigError) -> Node {
        guard let key = path.first else { return value }
        var mapping = node.mapping ?? Node.Mapping([])
        if node.mapping == nil && node.scalar.map({ !$0.string.isEmpty }) == true {
            throw ConfigError(file: "--set", line: nil, column: nil, keyPath: fullKey,
                              message: "'\(key)' is inside a value that is not a mapping")
        }
        let child = mapping[key] ?? Node.mapping([:])
        mapping[key] = try setting(value, at: Array(path.dropFirst()), in: child, fullKey: fullKey)
        return .mapping(mapping)
    }

    static func yamlError(_ error: YamlError, file: String) -> ConfigError {
        switch error {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _):
            return ConfigError(file: file, line: mark.line, column: mark.column, keyPath: "", message: "YAML syntax: \(problem)")
        case .composer(_, let problem, let mark, _):
            return ConfigError(file: file, line: mark.line, column: mark.column, keyPath: "", message: "YAML: \(problem)")
        default:
            return ConfigError(file: file, line: nil, column: nil, keyPath: "", message: "YAML: \(error)")
        }
    }

    /// Every section, in the order a config lists them.
    static func read(_ top: ConfigNode, file: String, resolved: String) throws(ConfigError) -> ExperimentConfig {
        let stem = URL(fileURLWithPath: file).deletingPathExtension().lastPathComponent
        return ExperimentConfig(
            name: try top.optional("name")?.string() ?? stem,
            seed: UInt64(try top.optional("seed")?.int(min: 0) ?? 0),
            data: try readData(try top.required("data")),
            model: try readModel(try top.required("model")),
            training: try readTraining(try top.required("training")),
            optimizer: try readOptimizer(try top.required("optimizer")),
            cluster: try readCluster(try top.optional("cluster")),
            evaluation: try readEvaluation(try top.optional("evaluation")),
            checkpoint: try readCheckpoint(try top.optional("checkpoint")),
            resolvedYAML: resolved, sourcePath: file)
    }
}
