import CohortTraining

extension Trainer {
    package init(experiment: Experiment) { self.init(setup: experiment.setup) }

    /// The state to save: continuing from it reproduces the run bit for bit.
    package func checkpoint(of config: ExperimentConfig) -> Checkpoint {
        Checkpoint(step: step, optimizerStep: optimizer.step, parameters: parameters, optimizerState: optimizer.state,
                   configHash: Checkpoint.configHash(config))
    }

    /// Continues from a checkpoint of the same experiment.
    package mutating func restore(_ checkpoint: Checkpoint) {
        restore(step: checkpoint.step, parameters: checkpoint.parameters, optimizerState: checkpoint.optimizerState,
                optimizerStep: checkpoint.optimizerStep)
    }
}

extension LocalExecutor {
    package init(experiment: Experiment, threads: Int = 1) { self.init(setup: experiment.setup, threads: threads) }
}
