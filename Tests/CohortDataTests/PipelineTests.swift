@testable import CohortData
@testable import CohortTensor
import Testing

@Suite struct PipelineTests {
    @Test func planIsTheSameAcrossRunsAndWorkerCountsAndCoversEachSampleOnce() {
        let plan = BatchPlan(datasetSize: 1000, batchSize: 96, microBatches: 8, shuffle: true, dropLast: false, seed: 5)
        let again = BatchPlan(datasetSize: 1000, batchSize: 96, microBatches: 8, shuffle: true, dropLast: false, seed: 5)
        for epoch in 0..<3 {
            let order = plan.permutation(epoch: epoch)
            #expect(order == again.permutation(epoch: epoch))
            var seen: [Int] = []
            for step in 0..<plan.stepsPerEpoch {
                let batch = Array(plan.batch(step: step, of: order))
                let ranges = BatchPlan.microBatchRanges(batchCount: batch.count, microBatches: plan.microBatches)
                // The cut depends on B and K only; dealing micro-batches to 1, 2 or 4 workers
                // regroups the same micro-batches.
                for workers in [1, 2, 4] {
                    var dealt: [Int] = []
                    for w in 0..<workers {
                        let mine: ArraySlice<Range<Int>> = ranges[(w * ranges.count / workers)..<((w + 1) * ranges.count / workers)]
                        for range in mine { dealt += batch[range] }
                    }
                    #expect(dealt == batch)
                }
                for range in ranges { seen += batch[range] }
            }
            #expect(seen.sorted() == Array(0..<1000))
        }
        #expect(plan.permutation(epoch: 0) != plan.permutation(epoch: 1))
        let dropping = BatchPlan(datasetSize: 1000, batchSize: 96, microBatches: 8, shuffle: false, dropLast: true, seed: 5)
        #expect(dropping.stepsPerEpoch == 10 && plan.stepsPerEpoch == 11)
    }

    @Test func assemblerReusesItsBuffers() {
        let d = SyntheticDataset.spirals.generate(samples: 50, noise: 0.1, seed: 1)
        var assembler = BatchAssembler()
        let first = assembler.assemble([3, 1, 4], from: d)
        #expect(first.inputs == d.inputs.gatherRows([3, 1, 4]) && first.targets == d.targets.gatherRows([3, 1, 4]))
        let second = assembler.assemble([1, 5, 9], from: d)
        #expect(second.inputs == d.inputs.gatherRows([1, 5, 9]))
        #expect(first.inputs == d.inputs.gatherRows([3, 1, 4]), "an earlier batch is not overwritten while still held")
    }

    @Test func normalizationUsesTrainingStatistics() {
        let train = Dataset(name: "t", inputs: Tensor([[0, 10], [2, 10], [4, 10]]), targets: Tensor([0, 1, 0]), classes: 2)
        let test = Dataset(name: "v", inputs: Tensor([[2, 11]]), targets: Tensor([1]), classes: 2)
        let normalizer = Normalizer(fitting: .standardize, to: train)
        let scaled = normalizer.apply(train)
        #expect(abs(scaled.inputs[0, 0] + 1.2247449) < 1e-5 && scaled.inputs[1, 0] == 0)
        #expect(scaled.inputs[0, 1] == 0, "a constant feature keeps std 1")
        #expect(normalizer.apply(test).inputs == Tensor([[0, 1]]))
        #expect(Normalizer(fitting: .scale, to: train).apply(test).inputs == Tensor([[2 / 255, 11 / 255]]))
    }

    @Test func splitAndOneHot() {
        let d = SyntheticDataset.blobs.generate(samples: 100, noise: 0.1, classes: 4, seed: 2)
        let (train, validation) = d.split(validationFraction: 0.2, seed: 9)
        #expect(train.count == 80 && validation.count == 20)
        #expect(d.split(validationFraction: 0.2, seed: 9).validation.inputs == validation.inputs)
        let onehot = d.oneHot()
        #expect(onehot.targets.shape == [100, 4] && onehot.targets.sum() == 100)
        #expect(onehot.targets[0, Int(d.targets[flat: 0])] == 1)
    }

    @Test func syntheticDatasetsAreDeterministic() {
        for kind in SyntheticDataset.allCases {
            let a = kind.generate(samples: 64, noise: 0.1, seed: 3), b = kind.generate(samples: 64, noise: 0.1, seed: 3)
            #expect(a.fingerprint == b.fingerprint && a.inputs.bitwiseEqual(b.inputs))
            #expect(a.fingerprint != kind.generate(samples: 64, noise: 0.1, seed: 4).fingerprint)
            #expect(Set(a.targets.scalars).count == 2 || kind == .blobs)
        }
        let s = SyntheticDataset.sequence.generate(samples: 10, noise: 0, length: 12, seed: 1)
        #expect(s.inputs.shape == [10, 12, 2])
        for i in 0..<10 {
            var marked = 0.0 as Float, markers = 0
            for t in 0..<12 where s.inputs[i, t, 1] == 1 { marked += s.inputs[i, t, 0]; markers += 1 }
            #expect(markers == 2 && s.targets[flat: i] == (marked > 1 ? 1 : 0))
        }
    }
}
