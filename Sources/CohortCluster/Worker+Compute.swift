import CohortData
import CohortNN
import CohortTensor
import CohortTraining
import Foundation
import ZeroMQ

/// A task's arithmetic on this worker: its micro-batches on the worker's threads, and the sums of
/// the tree blocks it reports (in shared-memory slots on the coordinator's machine).
extension Worker {
    /// The gradients and tallies of the task's tree blocks `ranges`, in order.
    func computeBlocks(_ ranges: [Range<Int>], of task: TaskMessage, tree: GradientTree, message: Message, step: UInt64,
                       gradient: MicroBatchGradient, shared: Bool, deferring firstWeightRows: FirstWeightRows? = nil,
                       firstLayerOutputs: [Int: Tensor] = [:], socket: ZMQSocket) throws -> (sums: [[Tensor]], blocks: [ResultMessage.Block]) {
        let sent = try samplesSent(with: task, message: message)
        // Float32 blocks of one or two leaves are computed straight into their slots.
        var slots: [Range<Int>: [Tensor]] = [:]
        if shared && tree.precision == .fp32 {
            for (i, block) in ranges.enumerated() where block.count <= 2 { slots[block] = slotTensors(task.sharedSlot + i) }
        }
        var known = computeLeaves(task, tree: tree, step: step, sent: sent, gradient: gradient, halves: shared, slots: slots,
                                  deferring: firstWeightRows, firstLayerOutputs: firstLayerOutputs, socket: socket)
        var blocks: [ResultMessage.Block] = []
        var sums: [[Tensor]] = []
        for block in ranges {
            // A block computed straight into its slot is there already.
            let inSlot = slots[block] != nil ? known.removeValue(forKey: block) : nil
            let sum = try inSlot ?? complete(block, of: tree, from: &known, sharedSlot: shared ? task.sharedSlot + blocks.count : nil)
            sums.append(sum.gradients)
            blocks.append(.init(range: block, lossSum: sum.lossSum, samples: sum.samples, correct: sum.correct))
        }
        return (sums, blocks)
    }

    /// The task's micro-batches on this worker's threads (one BLAS thread each): the tree blocks
    /// of each thread's part (as halves for a shared slot, whose last addition writes there). The
    /// first thread also keeps the heartbeats going.
    func computeLeaves(_ task: TaskMessage, tree: GradientTree, step: UInt64, sent: [(Tensor, Tensor)],
                       gradient: MicroBatchGradient, halves: Bool, slots: [Range<Int>: [Tensor]],
                       deferring firstWeightRows: FirstWeightRows?, firstLayerOutputs: [Int: Tensor],
                       socket: ZMQSocket) -> [Range<Int>: GradientSum] {
        let localData = usesLocalData ? localData : nil
        let heartbeat = Heartbeat { [self] in try? heartbeatIfDue(socket) }
        let work = LeafThreads.Work(gradient: gradient, parameters: parameters, seed: seed, step: Int(step),
                                    deferredFirstWeights: firstWeightRows, firstLayerOutputs: firstLayerOutputs) { thread in
            if thread == 0 { heartbeat.beat() }
        }
        return leafThreads.blocks(of: task.range, in: tree, halves: halves, slots: slots, work: work) { _, leaf, assembler in
            let indices = task.leaves[leaf - task.first]
            let (x, y) = localData.map { assembler.assemble(indices, from: $0) } ?? sent[leaf - task.first]
            return (x, y, indices)
        }
    }

    /// A closure that touches this worker's socket, called from the one thread that may.
    final class Heartbeat: @unchecked Sendable {
        let beat: () -> Void
        init(_ beat: @escaping () -> Void) { self.beat = beat }
    }

    /// One block of the task's result, added up from the blocks the threads found. With a shared
    /// slot the block's last addition writes straight into it (the coordinator reads it there).
    func complete(_ block: Range<Int>, of tree: GradientTree, from known: inout [Range<Int>: GradientSum],
                  sharedSlot: Int?) throws -> GradientSum {
        let missing: (Int) throws -> GradientSum = { leaf in throw ProtocolError("no thread computed micro-batch \(leaf)") }
        guard let sharedSlot, let sharedResults else { return try tree.sum(block, taking: &known, leaf: missing) }
        guard block.count > 1 else {
            let sum = try tree.sum(block, taking: &known, leaf: missing)
            sharedResults.write(sum.gradients, at: slotOffset(sharedSlot))
            return sum
        }
        let (l, r) = GradientTree.children(of: block)
        let left = try tree.sum(l, taking: &known, leaf: missing), right = try tree.sum(r, taking: &known, leaf: missing)
        return GradientSum.sum(left, right, into: slotTensors(sharedSlot), precision: tree.precision)
    }

    /// Where shared result slot `slot` starts, in floats.
    func slotOffset(_ slot: Int) -> Int { slot * shapes.reduce(0) { $0 + $1.reduce(1, *) } }

    /// Shared result slot `slot` as one tensor per parameter, over the shared memory itself.
    func slotTensors(_ slot: Int) -> [Tensor] { sharedResults!.tensors(at: slotOffset(slot), shapes: shapes) }
}
