import CohortData
import CohortNN
import CohortTensor

/// Everything the training step needs, typed and checked: the model and its loss, the training
/// data and how it is cut into batches, the first weights, the optimizer and the update rule.
/// The config reader (CohortExperiment) builds one; the trainer, the in-process executor and the
/// coordinator read it.
package struct TrainingSetup: Sendable {
    /// The model and loss as a worker rebuilds them.
    package var spec: GradientSpec
    package var model: Sequential
    /// The training set.
    package var dataset: Dataset
    package var initialParameters: [Tensor]
    package var plan: BatchPlan
    package var totalSteps: Int
    /// Keys every random draw inside a step (dropout masks) and the epoch permutations.
    package var seed: UInt64
    package var optimizer: OptimizerSetup
    /// ÷ B, clipping and the penalties, between the tree sum and the optimizer.
    package var update: StepUpdate
    /// What a step whose loss or gradient is not finite does.
    package var onNonFinite: NonFinitePolicy = .stop

    package init(spec: GradientSpec, model: Sequential, dataset: Dataset, initialParameters: [Tensor], plan: BatchPlan,
                 totalSteps: Int, seed: UInt64, optimizer: OptimizerSetup, update: StepUpdate) {
        self.spec = spec; self.model = model; self.dataset = dataset; self.initialParameters = initialParameters
        self.plan = plan; self.totalSteps = totalSteps; self.seed = seed; self.optimizer = optimizer; self.update = update
    }

    package var loss: Loss { spec.loss }
    package var reduction: Reduction { spec.reduction }

    /// The forward and backward pass of one micro-batch.
    package var gradient: MicroBatchGradient {
        MicroBatchGradient(model: model, loss: spec.loss, reduction: spec.reduction)
    }
}

/// The optimizer's rule, its base learning rate and how that rate moves with the step.
package struct OptimizerSetup: Sendable {
    package var rule: any OptimizerRule
    package var learningRate: Float
    package var schedule: LearningRateSchedule

    package init(rule: any OptimizerRule, learningRate: Float, schedule: LearningRateSchedule = LearningRateSchedule()) {
        self.rule = rule; self.learningRate = learningRate; self.schedule = schedule
    }

    package func make(parameters: [Tensor]) -> Optimizer {
        Optimizer(rule: rule, learningRate: learningRate, parameters: parameters)
    }
}

/// A diverged step (its loss or gradient not finite, even computed again) either stops the run,
/// or is skipped, leaving the weights as they were, at most `maxInARow` times in a row.
package enum NonFinitePolicy: Sendable, Equatable {
    case stop
    case skip(maxInARow: Int)
}
