import CohortData
import CohortNN
import CohortTensor
import Foundation
import Yams

/// An experiment, as read from a YAML config. configs/README.md documents every key.
public struct ExperimentConfig: Sendable {
    public var name: String
    public var seed: UInt64
    public var data: DataSpec
    public var model: ModelConfig
    public var training: TrainingConfig
    public var optimizer: OptimizerConfig
    public var cluster: ClusterConfig
    public var evaluation: EvaluationConfig
    public var checkpoint: CheckpointConfig
    /// The resolved config as YAML (overrides applied), written to the run directory.
    public var resolvedYAML: String
    /// What a worker needs to rebuild the model and loss: the `model` section (without
    /// init_from: weights travel in the protocol) and the loss, as YAML.
    public var workerSpec: String
    public var sourcePath: String


    public struct ModelConfig: Sendable {
        public var inputShape: [Int]
        public var layers: [LayerConfig]
        public var initializer: Initializer
        public var initFrom: String?
    }

    public struct LayerConfig: Sendable {
        public var layer: any Layer
        /// Explicit initial values by local parameter name ("weight", "bias").
        public var values: [String: Tensor]
    }

    public struct TrainingConfig: Sendable {
        public var loss: Loss
        public var reduction: Reduction
        public var epochs: Int
        /// Stop after this many steps (overrides epochs when set).
        public var steps: Int?
        public var batchSize: Int
        public var microBatches: Int
        public var clipNorm: Float?
        public var clipValue: Float?
        public var regularization: Regularization
        public var shuffle: Bool
        public var dropLast: Bool
        public var logEvery: Int
        /// Where batch_size was set, for errors that need the dataset size to detect.
        public var batchSizeLocation: ConfigError
    }

    /// Checkpoints under the run directory's checkpoints/.
    public struct CheckpointConfig: Sendable {
        /// Save every this many steps (nil: only when asked to resume-proof the run).
        public var everySteps: Int?
        public var keepLast: Int
    }

    /// Evaluation on the held-out set (the test set, or the validation split).
    public struct EvaluationConfig: Sendable {
        /// Evaluate when training ends (written to summary.json).
        public var atEnd: Bool
        /// Evaluate at most this many samples (the first ones).
        public var limit: Int?
        /// Also evaluate every this many steps (metrics.jsonl and curves.svg).
        public var everySteps: Int?
    }

    /// How the coordinator runs: local workers, an endpoint for external ones, liveness.
    public struct ClusterConfig: Sendable {
        /// Local worker processes to spawn (default: the number of cores).
        public var workers: Int?
        /// Wait for this many workers before training starts.
        public var minWorkers: Int
        /// BLAS threads per worker (default: cores ÷ local workers, at least 1).
        public var threadsPerWorker: Int?
        /// Endpoint to bind for external workers (tcp://host:port); local runs use ipc://.
        public var bind: String?
        /// Seconds of silence after which a worker is declared dead and its work reassigned.
        public var heartbeatTimeout: Double
        /// Largest message accepted, in megabytes (ZMQ_MAXMSGSIZE), checked before allocation.
        public var maxMessageMB: Int
        /// Seconds to wait for the first `min_workers` workers.
        public var startTimeout: Double
        /// Exchange weights and gradients with workers on this machine through /dev/shm.
        public var sharedMemory: Bool
        /// CURVE: the coordinator's .key_secret file and the workers' public keys (a .key file or
        /// a directory of them). Both or neither.
        public var secretKey: String?
        public var authorizedKeys: String?
        /// Allow a non-loopback bind without CURVE.
        public var insecure: Bool
    }

    public struct OptimizerConfig: Sendable {
        public enum Name: String, Sendable, CaseIterable { case sgd, adam, adamw, rmsprop }
        public var name: Name
        public var lr: Float
        public var momentum: Float = 0
        public var nesterov = false
        public var beta1: Float = 0.9, beta2: Float = 0.999
        public var epsilon: Float = 1e-8
        /// AdamW's decoupled weight decay.
        public var weightDecay: Float = 0.01
        public var alpha: Float = 0.99
        public var schedule = LearningRateSchedule()

        public var rule: any OptimizerRule {
            switch name {
            case .sgd: SGD(momentum: momentum, nesterov: nesterov)
            case .adam: Adam(beta1: beta1, beta2: beta2, epsilon: epsilon)
            case .adamw: Adam(beta1: beta1, beta2: beta2, epsilon: epsilon, decoupledWeightDecay: weightDecay)
            case .rmsprop: RMSProp(alpha: alpha, epsilon: epsilon)
            }
        }

        public func make(parameters: [Tensor]) -> Optimizer {
            Optimizer(rule: rule, learningRate: lr, parameters: parameters)
        }
    }
}

extension ExperimentConfig {
    /// Reads and validates a config file, applying `--set key=value` overrides first.
    public static func load(path: String, overrides: [String] = []) throws(ConfigError) -> ExperimentConfig {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw ConfigError(file: path, line: nil, column: nil, keyPath: "", message: "cannot read the file (\(error.localizedDescription))")
        }
        return try parse(text, file: path, overrides: overrides)
    }

    public static func parse(_ text: String, file: String, overrides: [String] = []) throws(ConfigError) -> ExperimentConfig {
        var root: Node
        do {
            root = try Yams.compose(yaml: text) ?? Node.mapping([:])
        } catch let error as YamlError {
            throw yamlError(error, file: file)
        } catch {
            throw ConfigError(file: file, line: nil, column: nil, keyPath: "", message: "\(error)")
        }
        var overridden: Set<String> = []
        for assignment in overrides {
            guard let eq = assignment.firstIndex(of: "="), eq != assignment.startIndex else {
                throw ConfigError(file: "--set", line: nil, column: nil, keyPath: assignment,
                                  message: "expected dotted.key=value")
            }
            let key = String(assignment[..<eq]), valueText = String(assignment[assignment.index(after: eq)...])
            let value: Node
            do { value = try Yams.compose(yaml: valueText) ?? Node("") } catch {
                throw ConfigError(file: "--set", line: nil, column: nil, keyPath: key, message: "value '\(valueText)' is not valid YAML")
            }
            root = try setting(value, at: key.split(separator: ".").map(String.init), in: root, fullKey: key)
            overridden.insert(key)
        }
        let resolved = (try? Yams.serialize(node: root)) ?? text
        let top = ConfigNode(node: root, path: "", file: file, overridden: overridden)
        var config = try read(top, file: file, resolved: resolved)
        try top.finish()
        var model = root.mapping?["model"]?.mapping ?? [:]
        model["init_from"] = nil
        let training = root.mapping?["training"]?.mapping
        let spec: Node = .mapping([
            "model": .mapping(model),
            "loss": training?["loss"] ?? Node("cross_entropy"),
            "reduction": training?["reduction"] ?? Node("mean"),
        ])
        config.workerSpec = (try? Yams.serialize(node: spec)) ?? ""
        return config
    }

    /// Rebuilds a model and its loss from `workerSpec` (what a worker receives in WELCOME).
    public static func parseWorkerSpec(_ text: String) throws -> (model: Sequential, loss: Loss, reduction: Reduction) {
        let root: Node
        do { root = try Yams.compose(yaml: text) ?? Node.mapping([:]) } catch let error as YamlError {
            throw yamlError(error, file: "<model spec>")
        }
        let top = ConfigNode(node: root, path: "", file: "<model spec>", overridden: [])
        let modelConfig = try readModel(try top.required("model"))
        let loss = try top.required("loss").choice(Loss.self)
        let reduction = try top.optional("reduction")?.choice(Reduction.self) ?? .mean
        try top.finish()
        let model = try Sequential(inputShape: modelConfig.inputShape, layers: modelConfig.layers.map(\.layer))
        return (model, loss, reduction)
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

    static func read(_ top: ConfigNode, file: String, resolved: String) throws(ConfigError) -> ExperimentConfig {
        let stem = URL(fileURLWithPath: file).deletingPathExtension().lastPathComponent
        let name = try top.optional("name")?.string() ?? stem
        let seed = UInt64(try top.optional("seed")?.int(min: 0) ?? 0)
        let data = try readData(try top.required("data"))
        let model = try readModel(try top.required("model"))
        let training = try readTraining(try top.required("training"))
        let optimizer = try readOptimizer(try top.required("optimizer"))
        let cluster = try readCluster(try top.optional("cluster"))
        let evaluationNode = try top.optional("evaluation")
        let evaluation = EvaluationConfig(atEnd: try evaluationNode?.optional("at_end")?.bool() ?? true,
                                          limit: try evaluationNode?.optional("limit")?.int(min: 1),
                                          everySteps: try evaluationNode?.optional("every_steps")?.int(min: 1))
        let checkpointNode = try top.optional("checkpoint")
        let checkpoint = CheckpointConfig(everySteps: try checkpointNode?.optional("every_steps")?.int(min: 1),
                                          keepLast: try checkpointNode?.optional("keep_last")?.int(min: 1) ?? 3)
        return ExperimentConfig(name: name, seed: seed, data: data, model: model, training: training,
                                optimizer: optimizer, cluster: cluster, evaluation: evaluation, checkpoint: checkpoint,
                                resolvedYAML: resolved, workerSpec: "", sourcePath: file)
    }

    static let dataSources = ["xor", "spirals", "circles", "blobs", "sequence", "inline", "mnist", "fashion_mnist", "csv", "npy"]

    static func readData(_ node: ConfigNode) throws(ConfigError) -> DataSpec {
        let nameNode = try node.required("name")
        let name = try nameNode.string()
        func existingFile(_ key: String, required: Bool = true) throws(ConfigError) -> String? {
            guard let fileNode = required ? try node.required(key) : try node.optional(key) else { return nil }
            let path = try fileNode.string()
            guard FileManager.default.fileExists(atPath: path) else { throw fileNode.error("no such file: \(path)") }
            return path
        }
        let source: DataSpec.Source
        var defaultNormalization = Normalization.none
        switch name {
        case "inline":
            let xNode = try node.required("x"), yNode = try node.required("y")
            let x = try xNode.numbers(), y = try yNode.numbers()
            guard x.shape.count >= 2 else { throw xNode.error("expected a list of samples, each a list of numbers") }
            guard y.shape.first == x.shape.first else {
                throw yNode.error("has \(y.shape.first ?? 0) targets for \(x.shape[0]) samples")
            }
            source = .inline(inputs: Tensor(shape: x.shape, x.values), targets: Tensor(shape: y.shape, y.values))
        case "mnist", "fashion_mnist":
            let pathNode = try node.optional("path")
            let directory = try pathNode?.string() ?? DataSpec.defaultMNISTDirectory
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
                let message = "no MNIST directory at \(directory) (set data.path or COHORT_DATA; README.md says how to fetch MNIST)"
                throw (pathNode ?? nameNode).error(message)
            }
            source = .mnist(directory: directory, fashion: name == "fashion_mnist")
            defaultNormalization = .scale
        case "csv":
            let labelNode = try node.required("label")
            let labels = labelNode.isSequence ? try labelNode.elements().map { e throws(ConfigError) in try e.string() } : [try labelNode.string()]
            source = .csv(train: try existingFile("path")!, test: try existingFile("test_path", required: false), labels: labels)
        case "npy":
            source = .npy(x: try existingFile("x")!, y: try existingFile("y")!,
                          testX: try existingFile("test_x", required: false), testY: try existingFile("test_y", required: false))
        default:
            guard let kind = SyntheticDataset(rawValue: name) else {
                var message = "unknown data source '\(name)'"
                if let suggestion = closest(to: name, among: dataSources) { message += "; did you mean '\(suggestion)'?" }
                throw nameNode.error(message + " (choose from \(dataSources.joined(separator: ", ")))")
            }
            let samples = try node.optional("samples")?.int(min: 1) ?? 1000
            let noise = Float(try node.optional("noise")?.double(min: 0) ?? 0.1)
            let classes = try node.optional("classes")?.int(min: 2) ?? 2
            let length = try node.optional("length")?.int(min: 2) ?? 20
            source = .synthetic(kind, samples: samples, noise: noise, classes: classes, length: length)
        }
        let normalization = try node.optional("normalize")?.choice(Normalization.self) ?? defaultNormalization
        let validation = try node.optional("validation")?.double(min: 0, max: 0.9)
        let limit = try node.optional("limit")?.int(min: 1)
        let oneHot = try node.optional("one_hot")?.bool() ?? false
        return DataSpec(source: source, normalization: normalization, validationFraction: validation, limit: limit, oneHot: oneHot)
    }

    static func readModel(_ node: ConfigNode) throws(ConfigError) -> ModelConfig {
        let inputNode = try node.required("input")
        let inputShape = inputNode.isSequence ? try inputNode.elements().map { e throws(ConfigError) in try e.int(min: 1) }
                                              : [try inputNode.int(min: 1)]
        let initializer = try node.optional("init")?.choice(Initializer.self) ?? .pytorch
        var initFrom: String?
        if let fromNode = try node.optional("init_from") {
            initFrom = try fromNode.string()
            guard FileManager.default.fileExists(atPath: initFrom!) else { throw fromNode.error("no such file: \(initFrom!)") }
        }
        let layersNode = try node.required("layers")
        var shape = inputShape
        var layers: [LayerConfig] = []
        for entry in try layersNode.elements() {
            let layer = try readLayer(entry, inputShape: shape)
            switch layer.layer.outputShape(for: shape) {
            case .success(let next): shape = next
            case .failure(let error): throw entry.error(error.description)
            }
            layers.append(layer)
        }
        guard !layers.isEmpty else { throw layersNode.error("needs at least one layer") }
        return ModelConfig(inputShape: inputShape, layers: layers, initializer: initializer, initFrom: initFrom)
    }

    static let layerNames = ["linear", "conv2d", "maxpool2d", "avgpool2d", "flatten", "dropout", "residual",
                             "rnn", "lstm", "gru", "gru_pytorch", "embedding"] + Activation.allCases.map(\.rawValue)

    /// A layer entry is either a bare name (`relu`, `flatten`) or a one-key mapping with settings
    /// (`linear: {out: 10}`). `inputShape` is the per-sample shape arriving at the layer.
    static func readLayer(_ entry: ConfigNode, inputShape: [Int]) throws(ConfigError) -> LayerConfig {
        if entry.node.scalar != nil {
            let name = try entry.string()
            if name == "flatten" { return LayerConfig(layer: Flatten(), values: [:]) }
            if let activation = Activation(rawValue: name) { return LayerConfig(layer: activation, values: [:]) }
            if layerNames.contains(name) { throw entry.error("\(name) needs its settings, e.g. '\(name): {…}' (see configs/README.md)") }
            throw unknownLayer(name, at: entry)
        }
        guard entry.isMapping, entry.keys.count == 1, let kind = entry.keys.first else {
            throw entry.error("a layer is a name (relu) or one key with settings (linear: {out: 10})")
        }
        let settings = try entry.required(kind)
        let features = inputShape.reduce(1, *)
        switch kind {
        case "linear":
            let inFeatures = try settings.optional("in")?.int(min: 1) ?? features
            let out = try settings.required("out").int(min: 1)
            let bias = try settings.optional("bias")?.bool() ?? true
            let layer = Linear(inFeatures: inFeatures, outFeatures: out, bias: bias)
            return LayerConfig(layer: layer, values: try explicitValues(settings, layer: layer))
        case "conv2d":
            guard inputShape.count == 3 else { throw entry.error("conv2d needs [channels, height, width] input, got \(inputShape)") }
            let layer = Conv2D(inChannels: try settings.optional("in")?.int(min: 1) ?? inputShape[0],
                               outChannels: try settings.required("out").int(min: 1),
                               kernel: try settings.required("kernel").int(min: 1),
                               stride: try settings.optional("stride")?.int(min: 1) ?? 1,
                               padding: try settings.optional("padding")?.int(min: 0) ?? 0,
                               bias: try settings.optional("bias")?.bool() ?? true)
            return LayerConfig(layer: layer, values: try explicitValues(settings, layer: layer))
        case "maxpool2d", "avgpool2d":
            let k = try settings.required("kernel").int(min: 1)
            let layer = Pool2D(kind == "maxpool2d" ? .max : .average, kernel: k, stride: try settings.optional("stride")?.int(min: 1) ?? k)
            return LayerConfig(layer: layer, values: [:])
        case "dropout":
            let rate = settings.isMapping ? try settings.required("p").double(min: 0, max: 0.99) : try settings.double(min: 0, max: 0.99)
            return LayerConfig(layer: Dropout(rate: Float(rate)), values: [:])
        case "rnn", "lstm", "gru", "gru_pytorch":
            guard inputShape.count == 2 else { throw entry.error("\(kind) needs [time, features] input, got \(inputShape)") }
            let layer = Recurrent(RecurrentCell(rawValue: kind)!, inputSize: inputShape[1],
                                  hiddenSize: try settings.required("hidden").int(min: 1),
                                  layers: try settings.optional("layers")?.int(min: 1, max: 16) ?? 1,
                                  returnSequences: try settings.optional("sequences")?.bool() ?? false)
            return LayerConfig(layer: layer, values: try explicitValues(settings, layer: layer))
        case "embedding":
            let layer = Embedding(count: try settings.required("count").int(min: 1), dimension: try settings.required("dim").int(min: 1))
            return LayerConfig(layer: layer, values: try explicitValues(settings, layer: layer))
        case "residual":
            var shape = inputShape
            var inner: [any Layer] = []
            for sub in try settings.required("layers").elements() {
                let layer = try readLayer(sub, inputShape: shape).layer
                switch layer.outputShape(for: shape) {
                case .success(let next): shape = next
                case .failure(let error): throw sub.error(error.description)
                }
                inner.append(layer)
            }
            do { return LayerConfig(layer: try Residual(inputShape: inputShape, block: inner), values: [:]) } catch {
                throw settings.error(error.description)
            }
        default:
            throw unknownLayer(kind, at: entry)
        }
    }

    static func unknownLayer(_ kind: String, at entry: ConfigNode) -> ConfigError {
        var message = "unknown layer '\(kind)'"
        if let suggestion = closest(to: kind, among: layerNames) { message += "; did you mean '\(suggestion)'?" }
        return entry.error(message + " (known: \(layerNames.joined(separator: ", ")))")
    }

    /// `init: {weight: [[…]], bias: […]}`: explicit initial values in PyTorch's layout.
    static func explicitValues(_ settings: ConfigNode, layer: any Layer) throws(ConfigError) -> [String: Tensor] {
        var values: [String: Tensor] = [:]
        guard let initNode = try settings.optional("init") else { return values }
        for spec in layer.parameterSpecs {
            guard let valueNode = try initNode.optional(spec.name) else { continue }
            let (shape, v) = try valueNode.numbers()
            guard v.count == spec.shape.reduce(1, *), shape.reduce(1, *) == v.count else {
                throw valueNode.error("needs shape \(spec.shape) (PyTorch layout), got \(shape)")
            }
            values[spec.name] = Tensor(shape: spec.shape, v)
        }
        return values
    }

    static func readTraining(_ node: ConfigNode) throws(ConfigError) -> TrainingConfig {
        let loss = try node.required("loss").choice(Loss.self)
        let reduction = try node.optional("reduction")?.choice(Reduction.self) ?? .mean
        let epochs = try node.optional("epochs")?.int(min: 1) ?? 1
        let steps = try node.optional("steps")?.int(min: 1)
        let batchNode = try node.required("batch_size")
        let batchSize = try batchNode.int(min: 1)
        let microNode = try node.optional("micro_batches")
        let microBatches = try microNode?.int(min: 1) ?? 1
        if let microNode, microBatches > batchSize {
            throw microNode.error("cannot cut a batch of \(batchSize) into \(microBatches) micro-batches")
        }
        let clip = try node.optional("clip_norm")?.double(min: 0, exclusiveMin: true)
        let clipValue = try node.optional("clip_value")?.double(min: 0, exclusiveMin: true)
        var regularization = Regularization()
        if let r = try node.optional("regularization") {
            regularization.l1 = Float(try r.optional("l1")?.double(min: 0) ?? 0)
            regularization.l2 = Float(try r.optional("l2")?.double(min: 0) ?? 0)
            regularization.includeBiases = try r.optional("include_biases")?.bool() ?? false
        }
        let shuffle = try node.optional("shuffle")?.bool() ?? true
        let dropLast = try node.optional("drop_last")?.bool() ?? false
        let logEvery = try node.optional("log_every")?.int(min: 1) ?? 10
        return TrainingConfig(loss: loss, reduction: reduction, epochs: epochs, steps: steps, batchSize: batchSize,
                              microBatches: microBatches, clipNorm: clip.map(Float.init), clipValue: clipValue.map(Float.init),
                              regularization: regularization, shuffle: shuffle,
                              dropLast: dropLast, logEvery: logEvery, batchSizeLocation: batchNode.error(""))
    }

    static func readCluster(_ node: ConfigNode?) throws(ConfigError) -> ClusterConfig {
        let secretKey = try node?.optional("secret_key")?.string()
        let authorizedKeys = try node?.optional("authorized_keys")?.string()
        if let node, (secretKey == nil) != (authorizedKeys == nil) {
            let given = secretKey == nil ? "authorized_keys" : "secret_key"
            throw try node.required(given).error("CURVE needs both cluster.secret_key and cluster.authorized_keys")
        }
        for key in ["secret_key", "authorized_keys"] {
            if let item = try node?.optional(key), !FileManager.default.fileExists(atPath: try item.string()) {
                throw item.error("no such file or directory: \(try item.string())")
            }
        }
        return ClusterConfig(
            workers: try node?.optional("workers")?.int(min: 0, max: 256),
            minWorkers: try node?.optional("min_workers")?.int(min: 1, max: 256) ?? 1,
            threadsPerWorker: try node?.optional("threads_per_worker")?.int(min: 1, max: 256),
            bind: try node?.optional("bind")?.string(),
            heartbeatTimeout: try node?.optional("heartbeat_timeout")?.double(min: 0.1) ?? 10,
            maxMessageMB: try node?.optional("max_message_mb")?.int(min: 1) ?? 1024,
            startTimeout: try node?.optional("start_timeout")?.double(min: 0.1) ?? 120,
            sharedMemory: try node?.optional("shared_memory")?.bool() ?? true,
            secretKey: secretKey, authorizedKeys: authorizedKeys,
            insecure: try node?.optional("insecure")?.bool() ?? false)
    }

    static func readOptimizer(_ node: ConfigNode) throws(ConfigError) -> OptimizerConfig {
        let name = try node.optional("name")?.choice(OptimizerConfig.Name.self) ?? .sgd
        var o = OptimizerConfig(name: name, lr: Float(try node.required("lr").double(min: 0, exclusiveMin: true)))
        o.momentum = Float(try node.optional("momentum")?.double(min: 0, max: 1) ?? 0)
        o.nesterov = try node.optional("nesterov")?.bool() ?? false
        if let betas = try node.optional("betas") {
            let items = try betas.elements()
            guard items.count == 2 else { throw betas.error("needs two numbers [β₁, β₂]") }
            o.beta1 = Float(try items[0].double(min: 0, max: 0.999999))
            o.beta2 = Float(try items[1].double(min: 0, max: 0.999999))
        }
        o.epsilon = Float(try node.optional("eps")?.double(min: 0, exclusiveMin: true) ?? 1e-8)
        o.weightDecay = Float(try node.optional("weight_decay")?.double(min: 0) ?? 0.01)
        o.alpha = Float(try node.optional("alpha")?.double(min: 0, max: 1) ?? 0.99)
        if o.nesterov && (name != .sgd || o.momentum == 0) {
            throw try node.required("nesterov").error("Nesterov needs optimizer sgd with momentum > 0")
        }
        if let s = try node.optional("schedule") {
            o.schedule.kind = try s.optional("name")?.choice(LearningRateSchedule.Kind.self) ?? .constant
            o.schedule.stepSize = try s.optional("step_size")?.int(min: 1) ?? 1
            o.schedule.gamma = Float(try s.optional("gamma")?.double(min: 0) ?? 0.1)
            o.schedule.minimum = Float(try s.optional("min_lr")?.double(min: 0) ?? 0)
            o.schedule.warmupSteps = try s.optional("warmup_steps")?.int(min: 0) ?? 0
        }
        return o
    }
}
