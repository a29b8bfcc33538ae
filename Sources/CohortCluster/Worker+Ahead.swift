import CohortNN
import CohortTensor
import CohortTraining

/// A worker across the network starts its next step's first layer while the next weights arrive
/// (`FirstLayerAhead`): a TASK tells it its leaves' samples in the next step (`nextLeaves`), and
/// each WEIGHTS CHUNK of the next version completes more of that layer's columns. The next TASK
/// uses them only if it is for the very same leaves, samples, weights version and generation;
/// anything else (another dealing, a rollback, a worker that joined) computes from scratch.
struct AheadOfTask {
    /// The weights version the next task will ask for.
    let version: UInt64
    let range: Range<Int>
    let leaves: [[Int]]
    /// The generation of streamed chunks the layer is computed from (nil: none yet).
    var generation: UInt32?
    var layer: FirstLayerAhead?
}

extension Worker {
    /// Remembers the next samples of `task`'s leaves, when this worker reads its own data and
    /// its model starts with a linear layer.
    func expectNextLeaves(of task: TaskMessage) {
        ahead = nil
        guard !task.nextLeaves.isEmpty, usesLocalData, sharedWeights == nil, let data = localData,
              gradient?.model.layers.first is Linear else { return }
        if let bad = task.nextLeaves.joined().first(where: { $0 < 0 || $0 >= data.count }) {
            drop("next sample index \(bad) outside the dataset of \(data.count)")
            return
        }
        ahead = AheadOfTask(version: task.weightsVersion + 1, range: task.range, leaves: task.nextLeaves)
    }

    /// After a chunk of the next weights is in place: the columns that the chunks in so far (from
    /// the first, without a gap) complete. A new generation starts over.
    func advanceAhead() {
        guard var next = ahead, let weights = nextWeights, weights.version == next.version,
              let gradient, let data = localData else { return }
        if next.generation != weights.generation {
            next.generation = weights.generation
            next.layer = FirstLayerAhead(model: gradient.model, layout: streamLayout, inputs: next.leaves.map { data.batch($0).inputs },
                                         threads: leafThreads.count)
            ahead = next
        }
        next.layer?.advance(arrived: weights.arrived.firstIndex(of: false) ?? weights.arrived.count, weights: weights.tensors)
    }

    /// The first layer's outputs computed for `task`, by leaf, if they are for its leaves, samples
    /// and weights; none otherwise. Either way they are used up.
    func takeAhead(for task: TaskMessage) -> [Int: Tensor] {
        defer { ahead = nil }
        guard let done = ahead, let layer = done.layer, layer.isComplete, done.version == task.weightsVersion,
              done.generation == task.weightsGeneration, done.range == task.range, done.leaves == task.leaves else { return [:] }
        return Dictionary(uniqueKeysWithValues: zip(task.range, layer.outputs))
    }
}
