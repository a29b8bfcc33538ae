import CohortData
import CohortTensor
import Foundation

/// `data:` — where the samples come from and how they are prepared (a `DataSpec`).
extension ExperimentConfig {
    static let dataSources = ["xor", "spirals", "circles", "blobs", "sequence", "inline", "mnist", "fashion_mnist", "csv", "npy"]

    static func readData(_ node: ConfigNode) throws(ConfigError) -> DataSpec {
        let nameNode = try node.required("name")
        let name = try nameNode.string()
        let source: DataSpec.Source
        var defaultNormalization = Normalization.none
        switch name {
        case "inline": source = try readInline(node)
        case "mnist", "fashion_mnist":
            source = try readMNIST(node, nameNode: nameNode, fashion: name == "fashion_mnist")
            defaultNormalization = .scale
        case "csv":
            let labelNode = try node.required("label")
            let labels = labelNode.isSequence ? try labelNode.elements().map { e throws(ConfigError) in try e.string() } : [try labelNode.string()]
            source = .csv(train: try existingFile(node, "path")!, test: try existingFile(node, "test_path", required: false), labels: labels)
        case "npy":
            source = .npy(x: try existingFile(node, "x")!, y: try existingFile(node, "y")!,
                          testX: try existingFile(node, "test_x", required: false), testY: try existingFile(node, "test_y", required: false))
        default: source = try readSynthetic(node, name: name, nameNode: nameNode)
        }
        let normalization = try node.optional("normalize")?.choice(Normalization.self) ?? defaultNormalization
        let validation = try node.optional("validation")?.double(min: 0, max: 0.9)
        let limit = try node.optional("limit")?.int(min: 1)
        let oneHot = try node.optional("one_hot")?.bool() ?? false
        return DataSpec(source: source, normalization: normalization, validationFraction: validation, limit: limit, oneHot: oneHot)
    }

    /// The path under `key`, which must exist.
    static func existingFile(_ node: ConfigNode, _ key: String, required: Bool = true) throws(ConfigError) -> String? {
        guard let fileNode = required ? try node.required(key) : try node.optional(key) else { return nil }
        let path = try fileNode.string()
        guard FileManager.default.fileExists(atPath: path) else { throw fileNode.error("no such file: \(path)") }
        return path
    }

    /// `x:` and `y:` written out in the config.
    static func readInline(_ node: ConfigNode) throws(ConfigError) -> DataSpec.Source {
        let xNode = try node.required("x"), yNode = try node.required("y")
        let x = try xNode.numbers(), y = try yNode.numbers()
        guard x.shape.count >= 2 else { throw xNode.error("expected a list of samples, each a list of numbers") }
        guard y.shape.first == x.shape.first else {
            throw yNode.error("has \(y.shape.first ?? 0) targets for \(x.shape[0]) samples")
        }
        return .inline(inputs: Tensor(shape: x.shape, x.values), targets: Tensor(shape: y.shape, y.values))
    }

    /// `data.path`, or the first place `MNISTSearch` finds (the config's own directory counts).
    static func readMNIST(_ node: ConfigNode, nameNode: ConfigNode, fashion: Bool) throws(ConfigError) -> DataSpec.Source {
        guard let pathNode = try node.optional("path") else {
            let configDirectory = URL(fileURLWithPath: node.file).deletingLastPathComponent().path
            let search = MNISTSearch(fashion: fashion, configDirectory: configDirectory)
            guard let found = search.find() else { throw nameNode.error(search.notFoundMessage) }
            return .mnist(directory: found, fashion: fashion)
        }
        let directory = try pathNode.string()
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw pathNode.error("no MNIST directory at \(directory) (cohort data mnist --to DIRECTORY downloads one)")
        }
        return .mnist(directory: directory, fashion: fashion)
    }

    static func readSynthetic(_ node: ConfigNode, name: String, nameNode: ConfigNode) throws(ConfigError) -> DataSpec.Source {
        guard let kind = SyntheticDataset(rawValue: name) else {
            var message = "unknown data source '\(name)'"
            if let suggestion = closest(to: name, among: dataSources) { message += "; did you mean '\(suggestion)'?" }
            throw nameNode.error(message + " (choose from \(dataSources.joined(separator: ", ")))")
        }
        return .synthetic(kind, samples: try node.optional("samples")?.int(min: 1) ?? 1000,
                          noise: Float(try node.optional("noise")?.double(min: 0) ?? 0.1),
                          classes: try node.optional("classes")?.int(min: 2) ?? 2,
                          length: try node.optional("length")?.int(min: 2) ?? 20)
    }
}
