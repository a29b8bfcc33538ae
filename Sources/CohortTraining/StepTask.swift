import CohortTensor

/// One step's work for the workers: the samples of each micro-batch, in micro-batch order.
package struct StepTask: Sendable {
    package var step: Int
    package var epoch: Int
    package var microBatches: [[Int]]
    package var parameters: [Tensor]
    /// The next step's micro-batches, when the run goes on after this step: workers across a
    /// network can start their first layer on them while the weights this step makes arrive
    /// (`FirstLayerAhead`). A hint: the next step's own task is what counts.
    package var nextMicroBatches: [[Int]]?

    package init(step: Int, epoch: Int, microBatches: [[Int]], parameters: [Tensor]) {
        self.step = step; self.epoch = epoch; self.microBatches = microBatches; self.parameters = parameters
    }
}
