import CohortData
import CohortExperiment
import CohortNN
import CohortTensor
import Foundation
import Logging
import ZeroMQ

/// The coordinator's side of the distributed step: a ROUTER socket, the worker pool, and the
/// executor that hands each step's micro-batches to the workers and collects the tree blocks.
/// The Trainer does the rest (tree sum, ÷ B, clip, update), exactly as in one process.
public final class Coordinator: GradientExecutor {
    public struct Options: Sendable {
        public var endpoint: String
        public var heartbeatTimeout: Double = 10
        public var heartbeatInterval: Double = 1
        public var maxMessageBytes: Int64 = 1 << 30
        /// Offer /dev/shm to workers on this machine.
        public var sharedMemory = true
        /// CURVE: the coordinator's key pair, and the public keys of the workers allowed in.
        /// Without it the transport is plain ZeroMQ (fine for ipc:// and loopback).
        public var curve: CurveKeyPair?
        public var authorizedKeys: [String] = []
        public init(endpoint: String) { self.endpoint = endpoint }
    }

    final class WorkerState {
        let id: UInt32
        let identity: [UInt8]
        let hello: Hello
        let sendsSamples: Bool
        var lastSeen = Date()
        var alive = true
        var weightsVersion: UInt64 = .max
        var computeSeconds = 0.0
        var stepComputeSeconds = 0.0
        var tasks = 0
        /// Gradient slots in shared memory, for a worker on this machine.
        var results: SharedMemory?
        var usesSharedWeights: Bool { results != nil }
        /// Result slots handed out in the current step.
        var slotsUsed = 0

        init(id: UInt32, identity: [UInt8], hello: Hello, sendsSamples: Bool) {
            self.id = id; self.identity = identity; self.hello = hello; self.sendsSamples = sendsSamples
        }
    }

    struct Outstanding {
        let worker: UInt32
        let range: Range<Int>
        let sharedSlot: Int
    }

    let experiment: Experiment
    let options: Options
    let logger: Logger
    let context: ZMQContext
    let socket: ZMQSocket
    let authenticator: CurveAuthenticator?
    /// With CURVE: handshakes that failed before the ZAP handler was asked (a worker without
    /// CURVE, or with another server key), counted and reported sparingly.
    let monitor: ZMQMonitor?
    var failedHandshakes = 0
    public let endpoint: String
    public let runID: UInt64
    var workers: [UInt32: WorkerState] = [:]
    var nextWorkerID: UInt32 = 1
    var nextTaskID: UInt64 = 1
    /// The current weights, and their packed single-buffer form, made only when a worker needs
    /// frames (workers on this machine read the shared file instead).
    /// Between steps they are released (see `prepareUpdate`), and the packed copy or the
    /// shared file holds the current version for a worker that joins.
    var parameters: [Tensor]
    var packedCache: PackedTensors?
    var weights: PackedTensors {
        if let packedCache { return packedCache }
        let packed = PackedTensors(parameters.isEmpty ? sharedWeights!.tensors(at: 0, shapes: shapes) : parameters)
        packedCache = packed
        return packed
    }
    let shapes: [[Int]]
    let parameterFloats: Int
    var weightsVersion: UInt64 = 0
    public private(set) var droppedMessages = 0
    var bytesSent = 0, bytesReceived = 0
    var stepBytesSent = 0, stepBytesReceived = 0, stepBroadcastSeconds = 0.0, stepExchangeSeconds = 0.0
    var lastHeartbeatSent = Date.distantPast
    /// Local worker processes, watched so a crash is noticed at once.
    public var localProcesses: LocalWorkers?
    /// Weights for workers on this machine, written once per step (nil until one joins).
    var sharedWeights: SharedMemory?
    var sharedWeightsVersion: UInt64 = .max
    let machineID = SharedMemory.machineID
    static let resultSlots = 4

    public init(experiment: Experiment, options: Options, logger: Logger) throws {
        self.experiment = experiment
        self.options = options
        self.logger = logger
        context = try ZMQContext()
        socket = try ZMQSocket(context, .router)
        try socket.setMaximumMessageSize(options.maxMessageBytes)
        // Fail loudly instead of silently dropping a message to a worker that has gone.
        try socket.setRouterMandatory()
        if let curve = options.curve {
            // The ZAP handler must be in place before the first handshake.
            authenticator = try CurveAuthenticator(context: context, authorized: options.authorizedKeys)
            try socket.makeCurveServer(curve)
            monitor = try ZMQMonitor(socket)
        } else {
            authenticator = nil
            monitor = nil
        }
        try socket.bind(options.endpoint)
        endpoint = try socket.lastEndpoint
        var random = SystemRandomNumberGenerator()
        runID = random.next()
        SharedMemory.removeOrphans()
        parameters = experiment.initialParameters
        shapes = parameters.map(\.shape)
        parameterFloats = parameters.reduce(0) { $0 + $1.count }
    }

    deinit {
        monitor?.close()
        socket.close()
        authenticator?.stop()
    }

    var liveWorkers: [WorkerState] { workers.values.filter(\.alive).sorted { $0.id < $1.id } }
    public var liveWorkerCount: Int { liveWorkers.count }

    // MARK: joining

    /// Waits until `minimum` workers have joined, answering HELLOs.
    public func waitForWorkers(_ minimum: Int, timeout: Double) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while liveWorkerCount < minimum {
            guard Date() < deadline else {
                throw ClusterError("only \(liveWorkerCount) of \(minimum) workers joined within \(Int(timeout)) s at \(endpoint)")
            }
            try checkLocalProcesses()
            if let local = localProcesses, local.running == 0, liveWorkerCount < minimum, local.count > 0 {
                throw ClusterError("every local worker exited before joining; see their logs in \(local.logDirectory)")
            }
            try pump(timeout: 0.2) { _ in }
        }
    }

    func welcome(identity: [UInt8], message: Message) throws {
        guard message.header.version == Wire.version else {
            let reason = "protocol version \(message.header.version) refused: this coordinator speaks version \(Wire.version)"
            logger.warning("refused a worker: \(reason)")
            try send(to: identity, .shutdown, step: 0, body: ShutdownMessage(reason: reason, refused: true).encode())
            return
        }
        let hello = try Hello.decode(message)
        let sameData = hello.fingerprints.contains(experiment.dataset.fingerprint)
        let worker = WorkerState(id: nextWorkerID, identity: identity, hello: hello, sendsSamples: !sameData)
        nextWorkerID += 1
        workers[worker.id] = worker
        var welcome = Welcome(workerID: worker.id, modelSpec: experiment.config.workerSpec, seed: experiment.config.seed,
                              datasetFingerprint: experiment.dataset.fingerprint, sendsSamples: !sameData,
                              weightsVersion: weightsVersion, shapes: shapes)
        if options.sharedMemory && !machineID.isEmpty && hello.machineID == machineID {
            // Same machine: weights and gradients go through /dev/shm, the messages stay small.
            let floats = parameterFloats
            do {
                if sharedWeights == nil {
                    sharedWeights = try SharedMemory(path: "/dev/shm/cohort-\(getpid())-\(runID)-weights", floats: floats, create: true)
                }
                worker.results = try SharedMemory(path: "/dev/shm/cohort-\(getpid())-\(runID)-worker-\(worker.id)",
                                                  floats: floats * Self.resultSlots, create: true)
                welcome.sharedWeights = sharedWeights!.path
                welcome.sharedResults = worker.results!.path
                welcome.resultSlots = Self.resultSlots
            } catch {
                logger.notice("no shared memory for worker \(worker.id) (\(error)); it gets frames")
                worker.results = nil
            }
        }
        try send(to: identity, .welcome, step: 0, body: welcome.encode(), tensors: [.zeroCopy(weights.bytes, owner: weights)])
        worker.weightsVersion = weightsVersion
        let text = "worker \(worker.id) joined from \(hello.host) pid \(hello.pid), \(hello.threads) BLAS thread(s), " +
            (sameData ? "same dataset: indices only" : "no matching dataset: samples sent with each task")
        logger.info("\(text)")
    }

    // MARK: messages

    @discardableResult
    func send(to identity: [UInt8], _ kind: MessageKind, step: UInt64, body: [UInt8], tensors: [OutgoingFrame] = []) throws -> Int {
        let n = try socket.send([.bytes(identity)] + Message.frames(kind: kind, runID: runID, step: step, body: body, tensors: tensors))
        bytesSent += n; stepBytesSent += n
        return n
    }

    /// Sends to a worker; a worker that has gone is marked dead instead of failing the run.
    func trySend(_ worker: WorkerState, _ kind: MessageKind, step: UInt64, body: [UInt8], tensors: [OutgoingFrame] = []) {
        do { try send(to: worker.identity, kind, step: step, body: body, tensors: tensors) } catch {
            markDead(worker, because: "send failed: \(error)")
        }
    }

    func drop(_ why: String) {
        droppedMessages += 1
        logger.warning("dropped a message (\(droppedMessages) so far): \(why)")
    }

    /// Waits up to `timeout` seconds for messages, then handles every message that has arrived:
    /// joins, heartbeats, and results (passed to `results`). Liveness is checked on every call.
    func pump(timeout: Double, results: (ResultFrom) throws -> Void) throws {
        var wait = timeout
        while let frames = try socket.receive(timeout: wait) {
            wait = 0
            try handle(frames, results: results)
        }
        try heartbeatIfDue()
        try checkLocalProcesses()
        checkHeartbeats()
        reportHandshakes()
    }

    /// Adds a public key to the CURVE allow-list (for the local workers of this run).
    public func authorize(_ publicKey: String) { authenticator?.authorize(publicKey) }

    /// Logs the CURVE handshakes the ZAP handler refused (and, at debug level, those it accepted).
    func reportHandshakes() {
        for event in monitor?.poll() ?? [] where event.isHandshakeFailure && !event.isAuthenticationFailure {
            failedHandshakes += 1
            // A peer retries every fraction of a second; say it the first time and then rarely.
            if failedHandshakes == 1 || failedHandshakes % 100 == 0 {
                logger.warning("a connection failed the CURVE handshake (\(failedHandshakes) so far): a worker without --server-key, or with another coordinator's key")
            }
        }
        guard let authenticator else { return }
        for decision in authenticator.takeDecisions() {
            if decision.accepted {
                logger.debug("CURVE key \(decision.publicKey) from \(decision.address) accepted")
            } else if decision.publicKey.isEmpty {
                logger.warning("refused a connection from \(decision.address): it does not speak CURVE")
            } else {
                logger.warning("refused a connection from \(decision.address): its CURVE key \(decision.publicKey) is not authorized")
            }
        }
    }

    func handle(_ frames: [ZMQFrame], results: (ResultFrom) throws -> Void) throws {
        let size = frames.reduce(0) { $0 + $1.count }
        bytesReceived += size; stepBytesReceived += size
        guard frames.count >= 3 else { drop("\(frames.count) frames"); return }
        let identity = frames[0].bytes
        let message: Message
        do { message = try Message.parse(frames[1...]) } catch { drop("\(error)"); return }
        let worker = workers.values.first { $0.identity == identity }
        if message.header.kind == .hello {
            if let worker { markDead(worker, because: "said hello again") }
            do { try welcome(identity: identity, message: message) } catch { drop("bad hello: \(error)") }
            return
        }
        guard let worker else { drop("\(message.header.kind) from an unknown worker"); return }
        if !worker.alive && message.header.runID == runID {
            // Declared dead for silence but talking again (a long pause, a loaded machine): take it
            // back. Its old tasks went to others and their late results are dropped; it gets the
            // current weights before its next task.
            worker.alive = true
            worker.weightsVersion = .max
            logger.notice("worker \(worker.id) is back")
        }
        guard message.header.runID == runID, message.header.version == Wire.version else {
            drop("\(message.header.kind) for another run or protocol version"); return
        }
        worker.lastSeen = Date()
        switch message.header.kind {
        case .heartbeat: break
        case .result:
            do { try results(ResultFrom(worker: worker, message: message, result: try ResultMessage.decode(message))) } catch let error as ProtocolError {
                drop("result from worker \(worker.id): \(error)")
            }
        default: drop("unexpected \(message.header.kind) from worker \(worker.id)")
        }
    }

    struct ResultFrom {
        let worker: WorkerState
        let message: Message
        let result: ResultMessage
    }

    func heartbeatIfDue() throws {
        guard Date().timeIntervalSince(lastHeartbeatSent) >= options.heartbeatInterval else { return }
        lastHeartbeatSent = Date()
        for worker in liveWorkers { trySend(worker, .heartbeat, step: 0, body: []) }
    }

    func checkHeartbeats() {
        for worker in liveWorkers where Date().timeIntervalSince(worker.lastSeen) > options.heartbeatTimeout {
            markDead(worker, because: "silent for \(String(format: "%.1f", options.heartbeatTimeout)) s")
        }
    }

    func checkLocalProcesses() throws {
        guard let local = localProcesses else { return }
        for pid in local.reapExited() {
            if let worker = workers.values.first(where: { $0.hello.pid == Int(pid) && $0.alive }) {
                markDead(worker, because: "its process \(pid) exited")
            } else {
                logger.warning("local worker process \(pid) exited")
            }
        }
    }

    func markDead(_ worker: WorkerState, because reason: String) {
        guard worker.alive else { return }
        worker.alive = false
        logger.warning("worker \(worker.id) is dead (\(reason)); its micro-batches go to the others")
    }

    // MARK: the step

    public func compute(_ task: StepTask, tree: GradientTree) throws -> [Range<Int>: GradientSum] {
        let computeStart = Date()
        defer { stepExchangeSeconds = Date().timeIntervalSince(computeStart) }
        stepBytesSent = 0; stepBytesReceived = 0
        for worker in workers.values { worker.stepComputeSeconds = 0; worker.slotsUsed = 0 }
        let version = UInt64(task.step)
        if version != weightsVersion || task.step == 0 || parameters.isEmpty {
            parameters = task.parameters
            packedCache = nil
            weightsVersion = version
        }
        var known: [Range<Int>: GradientSum] = [:]
        var outstanding: [UInt64: Outstanding] = [:]
        var covered = 0

        func assign(_ range: Range<Int>) throws {
            var pool = liveWorkers
            while pool.isEmpty {
                // Everyone died: wait for a new worker to join, as long as a heartbeat timeout.
                logger.warning("no live workers; waiting for one to join at \(endpoint)")
                let deadline = Date().addingTimeInterval(max(options.heartbeatTimeout, 5))
                while liveWorkers.isEmpty && Date() < deadline { try pump(timeout: 0.2) { _ in } }
                pool = liveWorkers
                if pool.isEmpty { throw ClusterError("all workers are gone") }
            }
            let broadcastStart = Date()
            let stale = pool.filter { $0.weightsVersion != weightsVersion }
            if let shm = sharedWeights, sharedWeightsVersion != weightsVersion, stale.contains(where: \.usesSharedWeights) {
                // Workers are idle now (all results are in), so the shared weights can change.
                shm.write(parameters, at: 0)
                sharedWeightsVersion = weightsVersion
            }
            // Workers on this machine get nothing: a task with a newer weights version tells them
            // the shared file holds it.
            for worker in stale where !worker.usesSharedWeights {
                trySend(worker, .weights, step: version, body: WeightsMessage(version: weightsVersion).encode(),
                        tensors: [.zeroCopy(weights.bytes, owner: weights)])
            }
            for worker in stale { worker.weightsVersion = weightsVersion }
            stepBroadcastSeconds += Date().timeIntervalSince(broadcastStart)
            for (worker, part) in zip(pool, GradientTree.parts(of: range, count: pool.count)) {
                let id = nextTaskID
                nextTaskID += 1
                let leaves = part.map { task.microBatches[$0] }
                var message = TaskMessage(taskID: id, weightsVersion: weightsVersion, leafCount: tree.leafCount,
                                          first: part.lowerBound, leaves: leaves, sampleShapes: [])
                var frames: [OutgoingFrame] = []
                if worker.sendsSamples {
                    for indices in leaves {
                        let (x, y) = experiment.dataset.batch(indices)
                        message.sampleShapes.append((x.shape, y.shape))
                        let px = PackedTensors([x]), py = PackedTensors([y])
                        frames += [.zeroCopy(px.bytes, owner: px), .zeroCopy(py.bytes, owner: py)]
                    }
                }
                // Distinct shared slots for every task of this step (a worker may get a dead
                // worker's share too); frames when its slots run out.
                let blockCount = tree.blocks(covering: part).count
                if worker.results != nil && worker.slotsUsed + blockCount <= Self.resultSlots {
                    message.sharedSlot = worker.slotsUsed
                    worker.slotsUsed += blockCount
                }
                outstanding[id] = Outstanding(worker: worker.id, range: part, sharedSlot: message.sharedSlot)
                worker.tasks += 1
                trySend(worker, .task, step: version, body: message.encode(), tensors: frames)
            }
        }

        stepBroadcastSeconds = 0
        try assign(tree.root)
        while covered < tree.leafCount {
            try pump(timeout: 0.25) { from in
                guard let job = outstanding[from.result.taskID], job.worker == from.worker.id else {
                    drop("result for a task that is not outstanding (late or reassigned)")
                    return
                }
                let expected = tree.blocks(covering: job.range)
                guard from.result.blocks.map(\.range) == expected else {
                    throw ProtocolError("blocks \(from.result.blocks.map(\.range)) do not cover \(job.range) as the tree requires")
                }
                if from.result.shared {
                    guard from.worker.results != nil, job.sharedSlot >= 0 else {
                        throw ProtocolError("gradients in shared memory that was not assigned to this task")
                    }
                } else if from.message.tensors.count != expected.count * shapes.count {
                    throw ProtocolError("\(from.message.tensors.count) tensor frames for \(expected.count) blocks of \(shapes.count) parameters")
                }
                let floats = parameterFloats
                for (b, block) in from.result.blocks.enumerated() {
                    // Borrow the frames' (or the shared slots') memory: the tree sum adds into it in place.
                    let gradients = try from.result.shared
                        ? from.worker.results!.tensors(at: (job.sharedSlot + b) * floats, shapes: shapes)
                        : shapes.indices.map { p in
                            try PackedTensors.unpack(from.message.tensors[b * shapes.count + p], shapes: [shapes[p]])[0]
                        }
                    known[block.range] = GradientSum(gradients: gradients, lossSum: block.lossSum, samples: block.samples, correct: block.correct)
                }
                outstanding[from.result.taskID] = nil
                covered += job.range.count
                from.worker.computeSeconds += from.result.computeSeconds
                from.worker.stepComputeSeconds += from.result.computeSeconds
            }
            // Work held by workers that died goes to the survivors, cut along the same tree.
            for (id, job) in outstanding where workers[job.worker]?.alive != true {
                outstanding[id] = nil
                try assign(job.range)
            }
        }
        return known
    }

    /// Drops this step's weights, so the trainer's update writes them in place, when a copy of
    /// them stays here for workers that join before the next step (the shared file, or the
    /// packed frames). When the shared file holds them, the trainer's weights move into it: the
    /// update then writes the next weights where local workers read them, and nothing is copied.
    /// (Workers are idle during the update: every result of the step is in.)
    public func prepareUpdate(of trainerParameters: inout [Tensor]) {
        let sharedIsCurrent = sharedWeights != nil && sharedWeightsVersion == weightsVersion
        if packedCache != nil || sharedIsCurrent { parameters = [] }
        if sharedIsCurrent, let shm = sharedWeights, !shm.holds(trainerParameters, at: 0) {
            trainerParameters = shm.tensors(at: 0, shapes: shapes)
        }
    }

    public func stepMetrics() -> [(String, JSON)] {
        let perWorker: [JSON] = workers.values.sorted { $0.id < $1.id }.filter { $0.stepComputeSeconds > 0 }.map {
            .object([("id", .int(Int($0.id))), ("compute_s", .number($0.stepComputeSeconds))])
        }
        return [("workers", .array(perWorker)), ("live_workers", .int(liveWorkerCount)),
                ("broadcast_s", .number(stepBroadcastSeconds)), ("exchange_s", .number(stepExchangeSeconds)),
                ("bytes_sent", .int(stepBytesSent)), ("bytes_received", .int(stepBytesReceived))]
    }

    public func summaryMetrics(wallSeconds: Double) -> [(String, JSON)] {
        let all = workers.values.sorted { $0.id < $1.id }
        let perWorker: [JSON] = all.map {
            .object([("id", .int(Int($0.id))), ("host", .string($0.hello.host)), ("pid", .int($0.hello.pid)),
                     ("threads", .int($0.hello.threads)), ("tasks", .int($0.tasks)), ("compute_s", .number($0.computeSeconds)),
                     ("alive_at_end", .bool($0.alive)), ("samples_sent_with_tasks", .bool($0.sendsSamples))])
        }
        // Share of the run in which the workers were not computing: the price of distribution.
        let computing = all.map(\.computeSeconds).max() ?? 0
        return [("workers", .array(perWorker)), ("bytes_sent", .int(bytesSent)), ("bytes_received", .int(bytesReceived)),
                ("dropped_messages", .int(droppedMessages)),
                ("share_outside_worker_compute", .number(wallSeconds > 0 ? max(0, 1 - computing / wallSeconds) : 0))]
    }

    /// Tells every worker to stop and waits briefly for local ones to exit.
    public func shutdown(reason: String) {
        // Dead ones too: a worker taken for dead may only have been paused, and would otherwise
        // wait for its own timeout.
        for worker in workers.values {
            _ = try? send(to: worker.identity, .shutdown, step: 0, body: ShutdownMessage(reason: reason, refused: false).encode())
        }
        localProcesses?.waitForExit(timeout: 5)
    }
}

public struct ClusterError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Endpoints whose traffic cannot leave this machine, where plain ZeroMQ is acceptable.
public enum Endpoints {
    public static func isLoopback(_ endpoint: String) -> Bool {
        if endpoint.hasPrefix("ipc://") || endpoint.hasPrefix("inproc://") { return true }
        guard endpoint.hasPrefix("tcp://") else { return false }
        var host = String(endpoint.dropFirst(6))
        if host.hasPrefix("["), let close = host.firstIndex(of: "]") {
            host = String(host[host.index(after: host.startIndex)..<close])
        } else if let colon = host.lastIndex(of: ":") {
            host = String(host[..<colon])
        }
        // A "tcp://eth0;…" source form or an interface name is not loopback unless it is "lo".
        return host == "localhost" || host == "::1" || host == "lo" || host.hasPrefix("127.")
    }
}
