/// `evaluation:` — the held-out set (the test set, or the validation split).
package struct EvaluationConfig: Sendable {
    /// Evaluate when training ends (written to summary.json).
    var atEnd: Bool
    /// Evaluate at most this many samples (the first ones).
    package var limit: Int?
    /// Also evaluate every this many steps (metrics.jsonl and curves.svg).
    var everySteps: Int?
}

extension ExperimentConfig {
    static func readEvaluation(_ node: ConfigNode?) throws(ConfigError) -> EvaluationConfig {
        EvaluationConfig(atEnd: try node?.optional("at_end")?.bool() ?? true,
                         limit: try node?.optional("limit")?.int(min: 1),
                         everySteps: try node?.optional("every_steps")?.int(min: 1))
    }
}
