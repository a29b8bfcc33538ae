import CohortTensor

/// Which samples each step trains on, and how each global batch is cut into micro-batches.
///
/// The plan depends only on the seed, the dataset size, the batch size and K, never on the number
/// of workers: that is what lets 1, 2 or 4 workers produce the same weights.
package struct BatchPlan: Sendable, Equatable {
    package let datasetSize: Int
    package let batchSize: Int
    package let microBatches: Int
    package let shuffle: Bool
    package let dropLast: Bool
    package let seed: UInt64

    package init(datasetSize: Int, batchSize: Int, microBatches: Int, shuffle: Bool, dropLast: Bool, seed: UInt64) {
        precondition(datasetSize > 0 && batchSize > 0 && microBatches > 0, "empty plan")
        self.datasetSize = datasetSize; self.batchSize = batchSize; self.microBatches = microBatches
        self.shuffle = shuffle; self.dropLast = dropLast; self.seed = seed
    }

    /// Steps in one epoch.
    package var stepsPerEpoch: Int {
        dropLast ? datasetSize / batchSize : (datasetSize + batchSize - 1) / batchSize
    }

    /// The order of the samples in an epoch (seeded per epoch).
    package func permutation(epoch: Int) -> [Int] {
        guard shuffle else { return Array(0..<datasetSize) }
        return seededPermutation(datasetSize, seed: seed,
                                 stream: RandomStream(purpose: RandomStream.shuffle, a: UInt32(truncatingIfNeeded: epoch)))
    }

    /// The samples of step `step` (0-based within the epoch), given that epoch's permutation.
    package func batch(step: Int, of permutation: [Int]) -> ArraySlice<Int> {
        let start = step * batchSize
        return permutation[start..<min(start + batchSize, datasetSize)]
    }

    /// Micro-batch k of a batch of n samples covers [⌊k·n/K⌋, ⌊(k+1)·n/K⌋): fixed boundaries,
    /// sizes differing by at most one. A batch smaller than K gets only n micro-batches.
    package static func microBatchRanges(batchCount n: Int, microBatches: Int) -> [Range<Int>] {
        let k = min(microBatches, n)
        return (0..<k).map { (($0 * n) / k)..<((($0 + 1) * n) / k) }
    }
}
