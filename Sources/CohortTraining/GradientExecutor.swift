import CohortTensor

/// Computes gradient sums for a step's micro-batches. The in-process executor (`LocalExecutor`)
/// runs them all here; the coordinator hands ranges of them to worker processes. Either way it
/// returns sums of whole nodes of the gradient tree, which the trainer completes.
package protocol GradientExecutor {
    mutating func compute(_ task: StepTask, tree: GradientTree) throws -> [Range<Int>: GradientSum]
    /// Whether this step should go through `compute(_:tree:streaming:)`: when gradients and
    /// weights cross a network, summing and updating chunk by chunk overlaps the two directions.
    mutating func streamsUpdates() -> Bool
    /// `compute`, feeding each chunk of the gradient to `stream` as soon as every block has sent
    /// it (`StreamedUpdate.sum`), updating what can be (`applyReady`) and sending it on. The
    /// blocks returned have given their chunks to the stream: only their counts are still whole.
    mutating func compute(_ task: StepTask, tree: GradientTree, streaming stream: StreamedUpdate) throws -> [Range<Int>: GradientSum]
    /// The same step again, carefully: called when the step's loss or gradient was not finite.
    /// A distributed executor checks every block and recomputes a bad one elsewhere (a worker
    /// that sent numbers an honest computation does not reproduce is dropped).
    mutating func recompute(_ task: StepTask, tree: GradientTree) throws -> [Range<Int>: GradientSum]
    /// Called after `compute`, before the update: let go of the task's weights (a reference
    /// kept would make the update copy them first). The executor may also move `parameters`
    /// into memory of its own with the same values (the coordinator's shared weights file), so
    /// the update writes the next weights where the workers read them.
    mutating func prepareUpdate(of parameters: inout [Tensor])
    /// What the last step cost in messages and waiting (nil for an in-process executor).
    mutating func exchangeMetrics() -> ExchangeMetrics?
    /// Run totals for summary.json (nil for an in-process executor).
    mutating func summary(wallSeconds: Double) -> ExecutorSummary?
}

extension GradientExecutor {
    package mutating func recompute(_ task: StepTask, tree: GradientTree) throws -> [Range<Int>: GradientSum] {
        try compute(task, tree: tree)
    }
    package mutating func streamsUpdates() -> Bool { false }
    package mutating func compute(_ task: StepTask, tree: GradientTree, streaming stream: StreamedUpdate) throws -> [Range<Int>: GradientSum] {
        try compute(task, tree: tree)
    }
    package mutating func exchangeMetrics() -> ExchangeMetrics? { nil }
    package mutating func summary(wallSeconds: Double) -> ExecutorSummary? { nil }
    package mutating func prepareUpdate(of parameters: inout [Tensor]) {}
}
