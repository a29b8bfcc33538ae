import CohortNN
import CohortTensor
import CohortTraining
import Foundation
import ZeroMQ

/// The step: the micro-batches go out to the live workers in contiguous ranges (with the
/// weights, to a worker that lacks them), the tree blocks come back, and the work of a worker
/// that dies is cut again along the same tree and given to the others.
extension Coordinator {
    /// A task sent and not yet answered.
    struct Outstanding {
        let worker: UInt32
        let range: Range<Int>
        let sharedSlot: Int
        let sent: Date
        /// After this the task goes to another worker, and this one counts as stalled.
        let deadline: Date
        /// The relay group it belongs to (the task id of the group's root, whose result covers
        /// the group's leaves), or nil.
        var group: UInt64? = nil
    }

    /// One step's bookkeeping: what was asked of whom, and what has come back.
    struct StepExchange {
        let task: StepTask
        let tree: GradientTree
        /// The step, which is also the version of the weights it runs on.
        let version: UInt64
        var known: [Range<Int>: GradientSum] = [:]
        var outstanding: [UInt64: Outstanding] = [:]
        var covered = 0
        /// Streamed RESULTs whose chunks are still coming, by task.
        var incoming: [UInt64: IncomingResult] = [:]
        /// The update that takes the gradient chunk by chunk, when this step streams.
        var stream: StreamedUpdate?
        /// Weights chunks of the next version sent to each worker this step (or forwarded to it
        /// down the relay chain).
        var chunksSent: [UInt32: Int] = [:]
        /// The generation of the next weights' chunks sent so far (`StreamedUpdate.generation`).
        var chunkGeneration: UInt32 = 0
        /// This step's relay chain for the next weights, by worker id (empty: none).
        var chain: [UInt32] = []
        /// Relays are set up once, with the step's first assignment; work dealt out again
        /// (a worker died) goes without them.
        var relaysDealt = false
    }

    /// A RESULT (or a GRADIENT CHUNK) as it arrived, with the worker it came from (or why it
    /// could not be read).
    struct ResultFrom {
        let worker: WorkerState
        let message: Message
        let result: Result<ResultMessage, ProtocolError>
    }

    package func compute(_ task: StepTask, tree: GradientTree) throws -> [Range<Int>: GradientSum] {
        try compute(task, tree: tree, stream: nil)
    }

    func compute(_ task: StepTask, tree: GradientTree, stream: StreamedUpdate?) throws -> [Range<Int>: GradientSum] {
        let computeStart = Date()
        defer { stepExchangeSeconds = Date().timeIntervalSince(computeStart) }
        beginStep(task)
        var exchange = StepExchange(task: task, tree: tree, version: UInt64(task.step))
        exchange.stream = stream
        try assign(tree.root, in: &exchange)
        while exchange.covered < tree.leafCount {
            let localOnly = exchange.outstanding.values.allSatisfy { workers[$0.worker]?.mailbox != nil }
            try pumpAll(timeout: 0.25, localOnly: localOnly) { from in try collect(from, into: &exchange) }
            if try !relaysFailed(&exchange) { expireDeadlines(exchange) }
            // Work held by workers that died (or stalled, or answered wrongly) goes to the
            // others, cut along the same tree.
            for (id, job) in exchange.outstanding where workers[job.worker]?.alive != true {
                guard exchange.outstanding[id] != nil else { continue }  // voided with its relay group
                let range = job.group.map { voidGroup($0, in: &exchange) } ?? job.range
                exchange.outstanding[id] = nil
                exchange.incoming[id] = nil
                breakChain(at: job.worker, in: &exchange)
                logger.debug("step \(task.step): micro-batches \(range) of dead worker \(job.worker) go to the others")
                try assign(range, in: &exchange)
            }
            advance(&exchange)
        }
        finishStream(&exchange)
        return exchange.known
    }

    /// A worker that holds a task past its deadline while still sending heartbeats has stalled:
    /// it is set aside (its tasks then go to the others) until it answers again.
    func expireDeadlines(_ exchange: StepExchange) {
        let now = Date()
        for job in exchange.outstanding.values where now > job.deadline {
            guard let worker = workers[job.worker], worker.alive else { continue }
            worker.stalled = true
            markDead(worker, because: "it did not answer its task (micro-batches \(job.range)) within " +
                     String(format: "%.1f s", job.deadline.timeIntervalSince(job.sent)))
        }
    }

    /// How long a task of `leaves` micro-batches may take: `taskDeadlineMultiple` times the
    /// median time per micro-batch of recent tasks, and never less than the floor.
    func deadline(forLeaves leaves: Int) -> Double {
        guard !leafSeconds.isEmpty else { return max(options.taskDeadlineFloor, options.heartbeatTimeout) }
        let median = leafSeconds.sorted()[leafSeconds.count / 2]
        return max(options.taskDeadlineFloor, options.taskDeadlineMultiple * median * Double(leaves))
    }

    /// The step again, checking every block as it arrives (see `GradientExecutor.recompute`).
    package func recompute(_ task: StepTask, tree: GradientTree) throws -> [Range<Int>: GradientSum] {
        careful = true
        defer { careful = false }
        logger.warning("step \(task.step + 1): the loss or gradient is not finite; computing the step again, checking every block")
        return try compute(task, tree: tree)
    }

    /// A block whose numbers are not finite is computed here too: if that gives finite numbers,
    /// the worker is faulty (dropped, and the honest block used); if not, the step itself
    /// diverged, and the block stands.
    func checked(_ block: Range<Int>, _ sum: GradientSum, from worker: WorkerState, in exchange: StepExchange) -> GradientSum {
        guard careful, !sum.isFinite else { return sum }
        let task = exchange.task, tree = exchange.tree
        let dataset = setup.dataset
        let work = LeafThreads.Work(gradient: setup.gradient, parameters: task.parameters, seed: setup.seed, step: task.step)
        let own = ownLeaves.blocks(of: block, in: tree, work: work) { _, k, assembler in
            let indices = task.microBatches[k]
            let (x, y) = assembler.assemble(indices, from: dataset)
            return (x, y, indices)
        }[block]!
        guard own.isFinite else { return sum }
        worker.faulty = true
        markDead(worker, because: "it sent numbers that are not finite for micro-batches \(block), which computing them here does not give")
        trySend(worker, .shutdown, step: 0, body: ShutdownMessage(reason: "your results were not reproducible; dropped", refused: true).encode())
        return own
    }

    /// Resets the step's counters and takes the task's weights as the current version.
    func beginStep(_ task: StepTask) {
        stepBytesSent = 0; stepBytesReceived = 0; stepBroadcastSeconds = 0
        for worker in workers.values { worker.stepComputeSeconds = 0; worker.slotsUsed = 0 }
        let version = UInt64(task.step)
        if version != weightsVersion || task.step == 0 || parameters.isEmpty {
            parameters = task.parameters
            packedCache = nil
            weightsVersion = version
        }
    }

    /// Deals `range` out to the live workers, one contiguous part each.
    func assign(_ range: Range<Int>, in exchange: inout StepExchange) throws {
        let pool = try liveWorkersOrWait()
        broadcastWeights(to: pool, step: exchange.version)
        if range == exchange.tree.root, try assignWithRelays(pool, in: &exchange) { return }
        for (worker, part) in zip(pool, GradientTree.parts(of: range, count: pool.count)) {
            sendTask(part, to: worker, in: &exchange)
        }
    }

    /// The live workers; when everyone has died, waits up to a heartbeat timeout for one to join.
    func liveWorkersOrWait() throws -> [WorkerState] {
        var pool = liveWorkers
        while pool.isEmpty {
            logger.warning("no live workers; waiting for one to join at \(endpoint)")
            let deadline = Date().addingTimeInterval(max(options.heartbeatTimeout, 5))
            while liveWorkers.isEmpty && Date() < deadline { try pump(timeout: 0.2) { _ in } }
            pool = liveWorkers
            if pool.isEmpty { throw ClusterError("all workers are gone") }
        }
        return pool
    }

    /// Brings the workers of `pool` that hold older weights up to date: the shared file for
    /// workers on this machine (a task with a newer version tells them), frames for the others.
    func broadcastWeights(to pool: [WorkerState], step: UInt64) {
        let broadcastStart = Date()
        let stale = pool.filter { $0.weightsVersion != weightsVersion }
        if let shm = sharedWeights, sharedWeightsVersion != weightsVersion, stale.contains(where: \.usesSharedWeights) {
            // Workers are idle now (all results are in), so the shared weights can change.
            shm.write(parameters, at: 0)
            sharedWeightsVersion = weightsVersion
        }
        for worker in stale where !worker.usesSharedWeights {
            trySend(worker, .weights, step: step, body: WeightsMessage(version: weightsVersion).encode(),
                    tensors: [.zeroCopy(weights.bytes, owner: weights)])
        }
        for worker in stale { worker.weightsVersion = weightsVersion }
        stepBroadcastSeconds += Date().timeIntervalSince(broadcastStart)
    }

    /// Sends the leaves `part` to `worker`: their sample indices, and the samples themselves
    /// when it lacks the dataset.
    func sendTask(_ part: Range<Int>, to worker: WorkerState, in exchange: inout StepExchange, id: UInt64? = nil,
                  relay: RelayPlan = RelayPlan(), group: UInt64? = nil) {
        let id = id ?? nextTaskID
        nextTaskID = max(nextTaskID, id + 1)
        let leaves = part.map { exchange.task.microBatches[$0] }
        var message = TaskMessage(taskID: id, weightsVersion: weightsVersion, leafCount: exchange.tree.leafCount,
                                  first: part.lowerBound, leaves: leaves, sampleShapes: [])
        message.relay = relay
        if relay.forwardWeights == nil, let i = exchange.chain.firstIndex(of: worker.id), i + 1 < exchange.chain.count {
            // Dealt more work mid-step: it still forwards the next weights down the chain.
            message.relay.forwardWeights = workers[exchange.chain[i + 1]]?.hello.relay
        }
        if let streamed = streamedGeneration, streamed.version == weightsVersion { message.weightsGeneration = streamed.generation }
        if exchange.stream != nil, !careful, !worker.usesSharedWeights, !worker.sendsSamples,
           let next = exchange.task.nextMicroBatches, next.count == exchange.tree.leafCount {
            // The next weights will stream to it: it can start on these leaves' next samples.
            message.nextLeaves = part.map { next[$0] }
        }
        var frames: [OutgoingFrame] = []
        if worker.sendsSamples {
            for indices in leaves {
                let (x, y) = setup.dataset.batch(indices)
                message.sampleShapes.append((x.shape, y.shape))
                let px = PackedTensors([x]), py = PackedTensors([y])
                frames += [.zeroCopy(px.bytes, owner: px), .zeroCopy(py.bytes, owner: py)]
            }
        }
        // Distinct shared slots for every task of this step (a worker may get a dead worker's
        // share too); frames when its slots run out.
        let blockCount = exchange.tree.blocks(covering: part).count
        if worker.results != nil && worker.slotsUsed + blockCount <= Self.resultSlots {
            message.sharedSlot = worker.slotsUsed
            worker.slotsUsed += blockCount
        }
        let now = Date()
        // A relay reports its children's leaves with its own; its deadline allows for them all.
        let reported = relay.upstream == nil ? message.mergedRange : part
        exchange.outstanding[id] = Outstanding(worker: worker.id, range: reported, sharedSlot: message.sharedSlot, sent: now,
                                               deadline: now.addingTimeInterval(deadline(forLeaves: message.mergedRange.count)),
                                               group: group)
        worker.tasks += 1
        logger.debug("step \(exchange.version): task \(id), micro-batches \(part) to worker \(worker.id)\(worker.sendsSamples ? " with their samples" : "")")
        let body = message.encode()
        if !frames.isEmpty || !postTask(body, to: worker, step: exchange.version) {
            trySend(worker, .task, step: exchange.version, body: body, tensors: frames)
        }
    }

    /// Takes in a RESULT: checks it answers an outstanding task with exactly that task's tree
    /// blocks, then borrows its gradients (from the frames or the shared slots) for the tree sum.
    /// A result that cannot be used (unreadable, for a task not given, other blocks than the
    /// task's) means a faulty worker: dropped, so its tasks go to the others at once.
    func collect(_ from: ResultFrom, into exchange: inout StepExchange) throws {
        do {
            if from.message.header.kind == .gradientChunk {
                try takeChunk(from, into: &exchange)
            } else {
                try take(from, into: &exchange)
            }
        } catch let error as ProtocolError {
            drop("result from worker \(from.worker.id): \(error)", kind: "unusable result")
            from.worker.faulty = true
            markDead(from.worker, because: "its result could not be used (\(error))")
        }
    }

    func take(_ from: ResultFrom, into exchange: inout StepExchange) throws {
        let result = try from.result.get()
        guard let job = exchange.outstanding[result.taskID], job.worker == from.worker.id else {
            // Late (its task went to another worker at the deadline) or reassigned: the work is
            // done elsewhere. The answer shows the worker is back.
            drop("result for a task that is not outstanding (late or reassigned)", kind: "late result")
            return
        }
        let expected = exchange.tree.blocks(covering: job.range)
        guard result.blocks.map(\.range) == expected else {
            throw ProtocolError("blocks \(result.blocks.map(\.range)) do not cover \(job.range) as the tree requires")
        }
        if result.shared {
            guard from.worker.results != nil, job.sharedSlot >= 0 else {
                throw ProtocolError("gradients in shared memory that was not assigned to this task")
            }
        } else if !result.streamed && from.message.tensors.count != expected.count * shapes.count {
            throw ProtocolError("\(from.message.tensors.count) tensor frames for \(expected.count) blocks of \(shapes.count) parameters")
        }
        if result.streamed {
            // The gradients follow, chunk by chunk (`takeChunk`).
            exchange.incoming[result.taskID] = IncomingResult(worker: from.worker.id, result: result, shapes: shapes,
                                                              chunkCount: streamLayout.chunkCount)
            return
        }
        let floats = parameterFloats
        var sums: [[Tensor]] = []
        for b in result.blocks.indices {
            // Borrow the frames' (or the shared slots') memory: the tree sum adds into it in place.
            sums.append(try result.shared
                ? from.worker.results!.tensors(at: (job.sharedSlot + b) * floats, shapes: shapes)
                : shapes.indices.map { p in
                    try PackedTensors.unpack(from.message.tensors[b * shapes.count + p], shapes: [shapes[p]])[0]
                })
        }
        finishTask(result, gradients: sums, job: job, from: from.worker, in: &exchange)
    }

    /// A task's blocks are all here: they join the known sums (checked on the careful path).
    func finishTask(_ result: ResultMessage, gradients: [[Tensor]], job: Outstanding, from worker: WorkerState,
                    in exchange: inout StepExchange) {
        for (block, sums) in zip(result.blocks, gradients) {
            let sum = GradientSum(gradients: sums, lossSum: block.lossSum, samples: block.samples, correct: block.correct)
            exchange.known[block.range] = checked(block.range, sum, from: worker, in: exchange)
        }
        let expected = result.blocks.map(\.range)
        exchange.outstanding[result.taskID] = nil
        if job.group != nil {
            // The relay reports its children's compute and memory, which count as theirs.
            for (id, seconds, peak) in result.relayed {
                guard let member = exchange.outstanding[id], member.group == job.group, let computer = workers[member.worker] else { continue }
                computer.computeSeconds += seconds
                computer.stepComputeSeconds += seconds
                computer.peakResidentBytes = max(computer.peakResidentBytes, peak)
            }
            for (id, member) in exchange.outstanding where member.group == job.group { exchange.outstanding[id] = nil }
        }
        exchange.covered += job.range.count
        leafSeconds.append(Date().timeIntervalSince(job.sent) / Double(job.range.count))
        if leafSeconds.count > 64 { leafSeconds.removeFirst() }
        logger.debug("step \(exchange.version): task \(result.taskID) done by worker \(worker.id): blocks \(expected), \(String(format: "%.2f", result.computeSeconds * 1000)) ms\(result.shared ? " (shared memory)" : "")")
        worker.computeSeconds += result.computeSeconds
        worker.stepComputeSeconds += result.computeSeconds
        worker.peakResidentBytes = max(worker.peakResidentBytes, result.peakResidentBytes)
    }

    /// Drops this step's weights, so the trainer's update writes them in place, when a copy of
    /// them stays here for workers that join before the next step (the shared file, or the
    /// packed frames). When the shared file holds them, the trainer's weights move into it: the
    /// update then writes the next weights where local workers read them, and nothing is copied.
    /// (Workers are idle during the update: every result of the step is in.)
    package func prepareUpdate(of trainerParameters: inout [Tensor]) {
        let sharedIsCurrent = sharedWeights != nil && sharedWeightsVersion == weightsVersion
        if packedCache != nil || sharedIsCurrent { parameters = [] }
        if sharedIsCurrent, let shm = sharedWeights, !shm.holds(trainerParameters, at: 0) {
            trainerParameters = shm.tensors(at: 0, shapes: shapes)
        }
    }
}
