import CohortData
import Foundation
import Yams

/// `cohort config --defaults`: every key of the config with the value a run would use, defaults
/// included (null where a key is unset and has no default). The model's layers are shown as
/// written; the cluster section comes from the CLI, which owns those defaults.
extension ExperimentConfig {
    package func everyKeyYAML(cluster: [(String, Node)]) -> String {
        let root = Node.mapping(Node.Mapping([
            (Node("name"), Node(name)), (Node("seed"), Node(String(seed))),
            (Node("data"), mapping(dataKeys)), (Node("model"), mapping(modelKeys)),
            (Node("training"), mapping(trainingKeys)), (Node("optimizer"), mapping(optimizerKeys)),
            (Node("cluster"), mapping(cluster)), (Node("evaluation"), mapping(evaluationKeys)),
            (Node("checkpoint"), mapping(checkpointKeys)),
        ]))
        return (try? Yams.serialize(node: root)) ?? resolvedYAML
    }

    func mapping(_ pairs: [(String, Node)]) -> Node { .mapping(Node.Mapping(pairs.map { (Node($0.0), $0.1) })) }

    /// A scalar, or null.
    func value<T>(_ v: T?) -> Node { v.map { Node("\($0)") } ?? Node("null") }

    /// The section of the resolved YAML, as written (the layers, inline data).
    func written(_ path: [String]) -> Node? {
        var node = try? Yams.compose(yaml: resolvedYAML)
        for key in path { node = node?.mapping?[key] }
        return node
    }

    var dataKeys: [(String, Node)] {
        var keys: [(String, Node)]
        switch data.source {
        case let .synthetic(kind, samples, noise, classes, length):
            keys = [("name", Node(kind.rawValue)), ("samples", value(samples)), ("noise", value(noise)),
                    ("classes", value(classes)), ("length", value(length))]
        case .inline:
            keys = [("name", Node("inline")), ("x", written(["data", "x"]) ?? Node("null")), ("y", written(["data", "y"]) ?? Node("null"))]
        case let .mnist(directory, fashion):
            keys = [("name", Node(fashion ? "fashion_mnist" : "mnist")), ("path", Node(directory))]
        case let .csv(train, test, labels):
            keys = [("name", Node("csv")), ("path", Node(train)), ("test_path", value(test)),
                    ("label", labels.count == 1 ? Node(labels[0]) : Node(labels.map { Node($0) }))]
        case let .npy(x, y, testX, testY):
            keys = [("name", Node("npy")), ("x", Node(x)), ("y", Node(y)), ("test_x", value(testX)), ("test_y", value(testY))]
        }
        return keys + [("normalize", Node(data.normalization.rawValue)), ("validation", value(data.validationFraction)),
                       ("limit", value(data.limit)), ("one_hot", value(data.oneHot))]
    }

    var modelKeys: [(String, Node)] {
        [("input", model.inputShape.count == 1 ? value(model.inputShape[0]) : Node(model.inputShape.map { Node(String($0)) })),
         ("init", Node(model.initializer.rawValue)), ("init_from", value(model.initFrom)),
         ("layers", written(["model", "layers"]) ?? Node("null"))]
    }

    var trainingKeys: [(String, Node)] {
        let t = training
        return [("loss", Node(t.loss.rawValue)), ("reduction", Node(t.reduction.rawValue)), ("epochs", value(t.epochs)),
                ("steps", value(t.steps)), ("batch_size", value(t.batchSize)), ("micro_batches", value(t.microBatches)),
                ("clip_norm", value(t.clipNorm)), ("clip_value", value(t.clipValue)),
                ("regularization", mapping([("l1", value(t.regularization.l1)), ("l2", value(t.regularization.l2)),
                                            ("include_biases", value(t.regularization.includeBiases))])),
                ("shuffle", value(t.shuffle)), ("drop_last", value(t.dropLast)), ("log_every", value(t.logEvery))]
    }

    var optimizerKeys: [(String, Node)] {
        let o = optimizer
        let all: [String: Node] = ["lr": value(o.lr), "momentum": value(o.momentum), "nesterov": value(o.nesterov),
                                   "betas": Node([value(o.beta1), value(o.beta2)]), "eps": value(o.epsilon),
                                   "weight_decay": value(o.weightDecay), "alpha": value(o.alpha)]
        let s = o.schedule
        let schedule = mapping([("name", Node(s.kind.rawValue)), ("step_size", value(s.stepSize)), ("gamma", value(s.gamma)),
                                ("min_lr", value(s.minimum)), ("warmup_steps", value(s.warmupSteps))])
        return [("name", Node(o.name.rawValue))] + o.name.keys.map { ($0, all[$0]!) } + [("schedule", schedule)]
    }

    var evaluationKeys: [(String, Node)] {
        [("at_end", value(evaluation.atEnd)), ("limit", value(evaluation.limit)), ("every_steps", value(evaluation.everySteps))]
    }

    var checkpointKeys: [(String, Node)] {
        [("every_minutes", value(checkpoint.everyMinutes)), ("every_steps", value(checkpoint.everySteps)),
         ("at_end", value(checkpoint.atEnd)), ("keep_last", value(checkpoint.keepLast))]
    }
}
