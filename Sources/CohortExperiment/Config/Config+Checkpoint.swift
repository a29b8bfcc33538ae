/// `checkpoint:` — checkpoints under the run directory's checkpoints/.
package struct CheckpointConfig: Sendable {
    /// Save every this many steps (nil: none).
    var everySteps: Int?
    /// How many of the newest to keep.
    var keepLast: Int
}

extension ExperimentConfig {
    static func readCheckpoint(_ node: ConfigNode?) throws(ConfigError) -> CheckpointConfig {
        CheckpointConfig(everySteps: try node?.optional("every_steps")?.int(min: 1),
                         keepLast: try node?.optional("keep_last")?.int(min: 1) ?? 3)
    }
}
