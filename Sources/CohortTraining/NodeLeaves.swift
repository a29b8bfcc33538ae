import CohortData
import CohortNN
import CohortTensor

/// The leaves of one tree node, computed in order on one thread.
///
/// When the model's first layer is a `Linear`, consecutive leaves are taken in groups that reach
/// `groupRows` rows (or the node's end): the group's samples are assembled together, and that
/// layer's forward pass runs once over all its rows (`MicroBatchGradient.firstLayerOutputs`),
/// which packs the layer's weights once instead of once per leaf. The bound keeps the memory of a large node's leaves
/// at that of a few. Each leaf's loss and backward pass still run on its own.
struct NodeLeaves {
    /// A group ends with the leaf that brings it to this many rows.
    static let groupRows = 512

    let node: Range<Int>
    let thread: Int
    let work: LeafThreads.Work
    let assemble: LeafThreads.Samples
    let stacks: Bool
    private var samples: [Int: (inputs: Tensor, targets: Tensor, indices: [Int])] = [:]
    private var firstLayer: [Int: Tensor] = [:]

    init(_ node: Range<Int>, thread: Int, work: LeafThreads.Work, samples: @escaping LeafThreads.Samples) {
        self.node = node; self.thread = thread; self.work = work; self.assemble = samples
        // Outputs computed ahead need no stacking.
        stacks = node.count > 1 && work.gradient.model.layers.first is Linear && work.firstLayerOutputs.isEmpty
    }

    /// Leaf k's gradient sum in `destination`.
    mutating func gradient(_ k: Int, destination: LeafDestination, assembler: inout BatchAssembler) -> GradientSum {
        if stacks && samples[k] == nil { stackGroup(from: k, assembler: &assembler) }
        let (x, y, indices) = samples.removeValue(forKey: k) ?? assemble(thread, k, &assembler)
        let context = ForwardContext(training: true, seed: work.seed, step: work.step, sampleIndices: indices)
        return work.gradient(parameters: work.parameters, inputs: x, targets: y, context: context,
                             destination: destination, firstLayerOutput: firstLayer.removeValue(forKey: k) ?? work.firstLayerOutputs[k],
                             deferringFirstWeight: work.deferredFirstWeights?.sink(forLeaf: k))
    }

    /// Assembles leaves k, k + 1, … of the node until they hold `groupRows` rows, and runs the first layer
    /// over them at once when that changes no bit.
    private mutating func stackGroup(from k: Int, assembler: inout BatchAssembler) {
        var group: [Int] = []
        var rows = 0
        for leaf in k..<node.upperBound {
            let taken = assemble(thread, leaf, &assembler)
            samples[leaf] = taken
            group.append(leaf)
            rows += taken.inputs.shape.first ?? 0
            if rows >= Self.groupRows { break }
        }
        guard let outputs = work.gradient.firstLayerOutputs(parameters: work.parameters,
                                                            inputs: group.map { samples[$0]!.inputs }) else { return }
        for (leaf, output) in zip(group, outputs) { firstLayer[leaf] = output }
    }
}
