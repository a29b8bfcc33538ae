import CohortNN
import CohortTensor
import CohortTraining

/// `optimizer:` — the rule, its settings and the learning-rate schedule. A new optimizer adds a
/// name here, the settings it reads (`keys`), and the rule it makes (`rule`).
package struct OptimizerConfig: Sendable {
    package enum Name: String, Sendable, CaseIterable {
        case sgd, adam, adamw, rmsprop

        /// The settings of this optimizer, as torch.optim names them; any other is refused.
        package var keys: [String] {
            switch self {
            case .sgd: ["lr", "momentum", "nesterov", "weight_decay"]
            case .adam, .adamw: ["lr", "betas", "eps", "weight_decay"]
            case .rmsprop: ["lr", "alpha", "eps", "weight_decay"]
            }
        }

        /// torch.optim's default: AdamW decays by 0.01 (decoupled), the others not at all.
        var defaultWeightDecay: Float { self == .adamw ? 0.01 : 0 }
    }
    package var name: Name
    package var lr: Float
    package var momentum: Float = 0
    package var nesterov = false
    package var beta1: Float = 0.9, beta2: Float = 0.999
    package var epsilon: Float = 1e-8
    /// AdamW's decoupled weight decay.
    var weightDecay: Float = 0.01
    package var alpha: Float = 0.99
    package var schedule = LearningRateSchedule()

    package var rule: any OptimizerRule {
        switch name {
        case .sgd: SGD(momentum: momentum, nesterov: nesterov, weightDecay: weightDecay)
        case .adam: Adam(beta1: beta1, beta2: beta2, epsilon: epsilon, weightDecay: weightDecay)
        case .adamw: Adam(beta1: beta1, beta2: beta2, epsilon: epsilon, decoupledWeightDecay: weightDecay)
        case .rmsprop: RMSProp(alpha: alpha, epsilon: epsilon, weightDecay: weightDecay)
        }
    }

    /// What the trainer needs: the rule, the base rate and its schedule.
    package var setup: OptimizerSetup { OptimizerSetup(rule: rule, learningRate: lr, schedule: schedule) }

    package func make(parameters: [Tensor]) -> Optimizer { setup.make(parameters: parameters) }
}

extension ExperimentConfig {
    static func readOptimizer(_ node: ConfigNode) throws(ConfigError) -> OptimizerConfig {
        let name = try node.optional("name")?.choice(OptimizerConfig.Name.self) ?? .sgd
        try refuseForeignKeys(node, of: name)
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
        o.weightDecay = Float(try node.optional("weight_decay")?.double(min: 0) ?? Double(name.defaultWeightDecay))
        o.alpha = Float(try node.optional("alpha")?.double(min: 0, max: 1) ?? 0.99)
        if o.nesterov && (name != .sgd || o.momentum == 0) {
            throw try node.required("nesterov").error("Nesterov needs optimizer sgd with momentum > 0")
        }
        if let s = try node.optional("schedule") { o.schedule = try readSchedule(s) }
        return o
    }

    /// A setting of another optimizer (momentum under adam, say) is an error, not silently
    /// ignored (`--set optimizer.momentum=null` removes one); an unknown key is left to the
    /// did-you-mean of `ConfigNode.finish`.
    static func refuseForeignKeys(_ node: ConfigNode, of name: OptimizerConfig.Name) throws(ConfigError) {
        let own = Set(name.keys + ["name", "schedule"])
        let everyOptimizersKeys = Set(OptimizerConfig.Name.allCases.flatMap(\.keys))
        for key in node.keys where !own.contains(key) && everyOptimizersKeys.contains(key) {
            guard try node.optional(key) != nil else { continue }
            throw try node.required(key).error("\(name.rawValue) has no '\(key)' (its settings: \(name.keys.joined(separator: ", ")), schedule)")
        }
    }

    static func readSchedule(_ s: ConfigNode) throws(ConfigError) -> LearningRateSchedule {
        var schedule = LearningRateSchedule()
        schedule.kind = try s.optional("name")?.choice(LearningRateSchedule.Kind.self) ?? .constant
        schedule.stepSize = try s.optional("step_size")?.int(min: 1) ?? 1
        schedule.gamma = Float(try s.optional("gamma")?.double(min: 0) ?? 0.1)
        schedule.minimum = Float(try s.optional("min_lr")?.double(min: 0) ?? 0)
        schedule.warmupSteps = try s.optional("warmup_steps")?.int(min: 0) ?? 0
        return schedule
    }
}
