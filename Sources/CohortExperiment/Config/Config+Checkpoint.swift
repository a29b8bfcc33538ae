/// `checkpoint:` — checkpoints under the run directory's checkpoints/. They are on by default:
/// every few minutes of wall time and at the end, so a crash costs minutes and a finished run
/// can be extended.
package struct CheckpointConfig: Sendable {
    /// Save every this many steps (nil: by time only).
    package var everySteps: Int?
    /// Save when this many minutes have passed since the last checkpoint (0: never by time).
    package var everyMinutes: Double
    /// Save after the last step.
    package var atEnd: Bool
    /// How many of the newest to keep.
    package var keepLast: Int

    package static let defaultEveryMinutes = 5.0
}

extension ExperimentConfig {
    static func readCheckpoint(_ node: ConfigNode?) throws(ConfigError) -> CheckpointConfig {
        CheckpointConfig(everySteps: try node?.optional("every_steps")?.int(min: 1),
                         everyMinutes: try node?.optional("every_minutes")?.double(min: 0) ?? CheckpointConfig.defaultEveryMinutes,
                         atEnd: try node?.optional("at_end")?.bool() ?? true,
                         keepLast: try node?.optional("keep_last")?.int(min: 1) ?? 3)
    }
}
