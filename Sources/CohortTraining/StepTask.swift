import CohortTensor

/// One step's work for the workers: the samples of each micro-batch, in micro-batch order.
package struct StepTask: Sendable {
    package var step: Int
    package var epoch: Int
    package var microBatches: [[Int]]
    package var parameters: [Tensor]

    package init(step: Int, epoch: Int, microBatches: [[Int]], parameters: [Tensor]) {
        self.step = step; self.epoch = epoch; self.microBatches = microBatches; self.parameters = parameters
    }
}
