import CohortTensor
import CohortTraining
import Foundation

/// The streamed step, for runs with workers across a network: their gradients come up chunk by
/// chunk (GRADIENT CHUNK), each chunk is summed along the tree and updated as soon as every
/// block has sent it (`StreamedUpdate`), and the new weights go down chunk by chunk (WEIGHTS
/// CHUNK) while later chunks still come up. Workers on this machine are unchanged: their results
/// are in shared memory, whole, and they read the next weights from the shared file.
extension Coordinator {
    /// A streamed RESULT whose chunks are still arriving.
    struct IncomingResult {
        let worker: UInt32
        let result: ResultMessage
        /// Per block, its gradients, filled chunk by chunk.
        var sums: [[Tensor]]
        /// Per block, which chunks have arrived.
        var arrived: [[Bool]]
        var missing: Int

        init(worker: UInt32, result: ResultMessage, shapes: [[Int]], chunkCount: Int) {
            self.worker = worker; self.result = result
            sums = result.blocks.map { _ in shapes.map { Tensor(uninitializedShape: $0) } }
            arrived = result.blocks.map { _ in Array(repeating: false, count: chunkCount) }
            missing = result.blocks.count * chunkCount
        }
    }

    /// Streams when some live worker is across a network (it gets frames, not the shared file):
    /// on one machine there is nothing to overlap, and the plain step writes the weights in place.
    package func streamsUpdates() -> Bool { liveWorkers.contains { !$0.usesSharedWeights } }

    package func compute(_ task: StepTask, tree: GradientTree, streaming stream: StreamedUpdate) throws -> [Range<Int>: GradientSum] {
        precondition(stream.layout == streamLayout, "the stream's layout is not the run's")
        return try compute(task, tree: tree, stream: stream)
    }

    /// A GRADIENT CHUNK: checked against its task (outstanding, streamed, from this worker), its
    /// block and chunk (in range, not seen before) and its size, then copied into place. The
    /// last one completes the task.
    func takeChunk(_ from: ResultFrom, into exchange: inout StepExchange) throws {
        let chunk = try GradientChunkMessage.decode(from.message, layout: streamLayout)
        guard let job = exchange.outstanding[chunk.taskID], job.worker == from.worker.id,
              var incoming = exchange.incoming[chunk.taskID] else {
            drop("gradient chunk for a task that is not outstanding (late or reassigned)", kind: "late result")
            return
        }
        guard chunk.block < incoming.sums.count else { throw ProtocolError("chunk for block \(chunk.block) of \(incoming.sums.count)") }
        guard !incoming.arrived[chunk.block][chunk.chunk] else { throw ProtocolError("chunk \(chunk.chunk) of block \(chunk.block) twice") }
        from.message.tensors[0].withUnsafeBytes { streamLayout.scatter(chunk.chunk, from: $0, into: incoming.sums[chunk.block]) }
        incoming.arrived[chunk.block][chunk.chunk] = true
        incoming.missing -= 1
        if incoming.missing > 0 {
            exchange.incoming[chunk.taskID] = incoming
            return
        }
        exchange.incoming[chunk.taskID] = nil
        finishTask(incoming.result, gradients: incoming.sums, job: job, from: from.worker, in: &exchange)
    }

    /// Sums every chunk that every block has sent, updates what may be updated, and sends it on.
    func advance(_ exchange: inout StepExchange) {
        guard let stream = exchange.stream, !careful else { return }
        while let c = stream.nextToSum {
            let summed = stream.sum(chunk: c, tree: exchange.tree) { node in
                if let block = exchange.known[node] { return block.gradients }
                for incoming in exchange.incoming.values {
                    if let b = incoming.result.blocks.firstIndex(where: { $0.range == node }), incoming.arrived[b][c] {
                        return incoming.sums[b]
                    }
                }
                return nil
            }
            if !summed { break }
        }
        let ready = stream.applyReady()
        if stream.generation != exchange.chunkGeneration {
            // Updated again (the step was clipped after all): the chunks sent are void.
            exchange.chunkGeneration = stream.generation
            exchange.chunksSent = [:]
        }
        for c in ready { sendWeightsChunk(c, of: stream, in: &exchange) }
    }

    /// After the last block: the rest of the stream (all of it, with clip_norm), and the workers
    /// that now hold every chunk of the next weights are counted as holding them, unless the
    /// trainer rolls the step back (then they get the whole weights again).
    func finishStream(_ exchange: inout StepExchange) {
        guard let stream = exchange.stream, !careful else { return }
        advance(&exchange)
        guard stream.allApplied else { return }
        let next = exchange.version + 1
        // A chain member counts only if every member before it is still alive to forward.
        let chain = exchange.chain.prefix { workers[$0]?.alive == true }
        if chain.count < exchange.chain.count { breakChain(at: exchange.chain[chain.count], in: &exchange) }
        let holders = exchange.chunksSent.filter { $0.value == streamLayout.chunkCount }.compactMap { workers[$0.key] }.filter(\.alive)
        for worker in holders { worker.weightsVersion = next }
        lastWeightsChain = exchange.chain.isEmpty ? nil : (next, exchange.chain)
        streamedGeneration = (next, stream.generation)
        stream.onRollBack = { [holders] in
            for worker in holders where worker.weightsVersion == next { worker.weightsVersion = .max }
        }
    }

    /// Chunk `c` of the next weights to every live worker across the network. One that missed
    /// an earlier chunk (it joined, or came back) gets the whole weights before its next task.
    func sendWeightsChunk(_ c: Int, of stream: StreamedUpdate, in exchange: inout StepExchange) {
        let targets = liveWorkers.filter { !$0.usesSharedWeights && exchange.chunksSent[$0.id, default: 0] == c }
        guard !targets.isEmpty else { return }
        let start = Date()
        let body = WeightsChunkMessage(version: exchange.version + 1, chunk: c, chunkCount: streamLayout.chunkCount,
                                       secret: relaySecret, generation: stream.generation).encode()
        let bytes = streamLayout.bytes(ofChunk: c, of: stream.next)
        for worker in targets {
            // Down the relay chain, only its first worker gets it from here.
            if exchange.chain.dropFirst().contains(worker.id) {
                exchange.chunksSent[worker.id] = c + 1
                continue
            }
            trySend(worker, .weightsChunk, step: exchange.version + 1, body: body, tensors: [.bytes(bytes)])
            exchange.chunksSent[worker.id] = c + 1
        }
        stepBroadcastSeconds += Date().timeIntervalSince(start)
    }
}
