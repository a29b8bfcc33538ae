import CohortTensor
import CohortTraining
import ZeroMQ

/// A worker across the network: its gradients go up chunk by chunk, and the next weights come
/// down chunk by chunk while it is idle (see `Coordinator+Stream.swift`).
extension Worker {
    /// The blocks' gradients chunk by chunk, every block's chunk c before chunk c + 1: the
    /// coordinator sums and updates chunk c while the next ones are on the wire.
    ///
    /// With `firstWeightRows`, the sums hold no first weight gradient yet: the rows each chunk
    /// needs are summed just before it goes, while the earlier chunks are on the wire.
    func streamGradients(_ sums: [[Tensor]], task: UInt64, step: UInt64, socket: ZMQSocket,
                         firstWeightRows rows: (plan: FirstWeightRows, blocks: [Range<Int>], tree: GradientTree)? = nil) throws {
        var sums = sums
        if let rows {
            for b in sums.indices { sums[b][0] = Tensor(uninitializedShape: [rows.plan.out, rows.plan.columns]) }
        }
        let count = streamLayout.chunkCount
        for c in 0..<count {
            if let rows {
                rows.plan.fill(rows.plan.rowsBeforeChunk[c], of: rows.blocks, tree: rows.tree, into: sums.map { $0[0] })
            }
            for (b, gradients) in sums.enumerated() {
                let body = GradientChunkMessage(taskID: task, block: b, chunk: c, chunkCount: count).encode()
                try send(socket, .gradientChunk, step: step, body: body, tensors: [.bytes(streamLayout.bytes(ofChunk: c, of: gradients))])
            }
        }
    }

    /// A WEIGHTS CHUNK of the next version (from the coordinator, or from upstream in the relay
    /// chain): forwarded down the chain, then put in its place; a task waiting for these weights
    /// runs once they are whole.
    func takeWeightsChunk(_ message: Message, socket: ZMQSocket, fromPeer: Bool = false) throws {
        let chunk = try WeightsChunkMessage.decode(message, layout: streamLayout)
        if fromPeer && chunk.secret != relaySecret { throw ProtocolError("a weights chunk without the run's secret") }
        guard chunk.version > weightsVersion || weightsVersion == .max else {
            throw ProtocolError("weights chunk of version \(chunk.version), we hold \(weightsVersion)")
        }
        forwardWeightsChunk(message, step: message.header.step)
        if let next = nextWeights, next.version == chunk.version, chunk.generation < next.generation { return }  // void
        if nextWeights?.version != chunk.version || nextWeights?.generation != chunk.generation {
            nextWeights = IncomingWeights(version: chunk.version, generation: chunk.generation, shapes: shapes,
                                          chunkCount: streamLayout.chunkCount)
        }
        message.tensors[0].withUnsafeBytes { streamLayout.scatter(chunk.chunk, from: $0, into: nextWeights!.tensors) }
        nextWeights!.arrived[chunk.chunk] = true
        advanceAhead()
        try runParkedTask(socket)
    }

    /// The plan for a task whose first weight gradient can go row range by row range
    /// (`FirstWeightRows`): a task whose float32 gradients go straight up the network, not into
    /// shared memory nor through a relay (which adds its children's chunks as they come).
    ///
    /// Not in bfloat16: its chunks take half the link's time while their rows cost the same. On
    /// the 2-core bench machine (the MLP on 2 simulated hosts, alternating runs) the rows made
    /// bfloat16's median step 8% longer (7 runs) and float32's 3% shorter (8 runs).
    func streamsFirstWeightRows(_ task: TaskMessage, shared: Bool, gradient: MicroBatchGradient) -> FirstWeightRows? {
        guard !shared, streamLayout.dtype == .fp32, task.relay.children.isEmpty, task.relay.upstream == nil else { return nil }
        return FirstWeightRows(model: gradient.model, layout: streamLayout, leaves: task.range, leafRows: task.leaves.map(\.count),
                               threads: leafThreads.count)
    }

    /// Runs the task that waited for its weights, if they are here now.
    func runParkedTask(_ socket: ZMQSocket) throws {
        guard let parked = parkedTask else { return }
        guard parked.task.weightsVersion == weightsVersion || nextWeights?.isWhole(for: parked.task) == true else { return }
        parkedTask = nil
        try runTask(parked.task, message: parked.message, step: parked.step, socket: socket)
    }
}

/// Weights of one version, arriving chunk by chunk.
struct IncomingWeights {
    let version: UInt64
    let generation: UInt32
    let tensors: [Tensor]
    var arrived: [Bool]

    init(version: UInt64, generation: UInt32, shapes: [[Int]], chunkCount: Int) {
        self.version = version
        self.generation = generation
        tensors = shapes.map { Tensor(uninitializedShape: $0) }
        arrived = Array(repeating: false, count: chunkCount)
    }

    var isWhole: Bool { !arrived.contains(false) }

    /// Whether these are the weights `task` asks for, every chunk of them.
    func isWhole(for task: TaskMessage) -> Bool {
        version == task.weightsVersion && generation == task.weightsGeneration && isWhole
    }
}
