import CohortData
import CohortTraining
import CohortNN
import CohortTensor
import Foundation
import Logging
import ZeroMQ

/// A worker process: connects a DEALER to the coordinator's ROUTER, says HELLO, then runs the
/// forward and backward passes of the micro-batches it is given, along the gradient tree.
package final class Worker {
    package struct Options: Sendable {
        package var endpoint: String
        package var threads: Int
        /// The dataset this worker holds (from its own config), so tasks can send indices instead
        /// of samples when it is the coordinator's.
        package var localData: Dataset?
        /// Exit when this process (the coordinator that spawned us) is gone.
        package var parentPID: Int32?
        /// Well below the coordinator's heartbeat timeout, so a busy machine is not taken for dead.
        var heartbeatInterval: Double = 0.25
        /// Exit after this long without a word from the coordinator.
        package var coordinatorTimeout: Double = 60
        package var maxMessageBytes: Int64 = 1 << 30
        /// CURVE: the coordinator's public key, and this worker's key pair (an ephemeral one
        /// when nil; a coordinator with an allow-list refuses it).
        package var serverKey: String?
        package var curve: CurveKeyPair?
        /// The run's token, for a coordinator bound to plain tcp (see `RunToken`).
        package var token: String?

        package init(endpoint: String, threads: Int, localData: Dataset? = nil, parentPID: Int32? = nil) {
            self.endpoint = endpoint; self.threads = threads; self.localData = localData; self.parentPID = parentPID
        }
    }

    /// Why the worker stopped.
    package enum Exit: Equatable, Sendable {
        case shutdown
        case refused(String)
        case coordinatorLost(String)
        /// This worker cannot go on (a sample its model cannot take); the coordinator was told.
        case failed(String)
        /// The run computes with another OpenBLAS kernel family: restart with it (BLASMachine.reexec).
        case rejoinWithBLAS(String)
    }

    let options: Options
    let logger: Logger
    var runID: UInt64?
    var gradient: MicroBatchGradient?
    var seed: UInt64 = 0
    var parameters: [Tensor] = []
    var shapes: [[Int]] = []
    var weightsVersion: UInt64 = 0
    /// How gradients and weights travel in chunks (set by WELCOME).
    var streamLayout = StreamLayout(shapes: [])
    /// The next weights, arriving chunk by chunk while the coordinator updates; used once whole
    /// and a task asks for their version.
    var nextWeights: IncomingWeights?
    /// The next task's first layer, computed while the next weights arrive (`Worker+Ahead.swift`).
    var ahead: AheadOfTask?
    /// A task whose weights are still on their way (down the relay chain).
    var parkedTask: (task: TaskMessage, message: Message, step: UInt64)?
    /// Relaying (`Worker+Relay.swift`): this worker's relay socket, its DEALERs to peers, the
    /// run's relay secret, where the next weights' chunks go, and the current relay job.
    var relaySocket: ZMQSocket?
    var peerSockets: [RelayPeer: ZMQSocket] = [:]
    var relaySecret: UInt64 = 0
    var forwardWeightsTo: RelayPeer?
    var relayJob: RelayJob?
    var earlyChildMessages: [(UInt64, ChildMessage)] = []
    /// Connections to peers whose handshake has not been seen yet (`checkPeers`).
    var peerWatch: [RelayPeer: PeerWatch] = [:]
    var usesLocalData = false
    var localData: Dataset? { options.localData }
    /// What the model and loss can take (checked on every sample before it is computed), and
    /// the first problem found, which ends this worker.
    var sampleCheck: SampleCheck?
    var failure: String?
    /// The threads that compute a task's micro-batches.
    let leafThreads: LeafThreads
    var dropLog = DropLog()
    var sharedWeights: SharedMemory?
    var sharedResults: SharedMemory?
    var resultSlots = 0
    /// On the coordinator's machine: TASKs and RESULTs through shared memory (`LocalMailbox`).
    var mailbox: LocalMailbox?
    var coordinatorBell: Doorbell?
    var lastHeard = Date()
    var lastSent = Date.distantPast

    package init(options: Options, logger: Logger) {
        self.options = options
        self.logger = logger
        leafThreads = LeafThreads(count: options.threads)
    }

    package func run() throws -> Exit {
        // Threads compute whole micro-batches, each with one BLAS thread: a threaded sgemm would
        // add in another order, and the weights would depend on the machine's core count.
        BLAS.setThreads(1)
        if let localData {
            logger.info("holds dataset \(localData.name) (\(localData.count) samples, fingerprint \(localData.fingerprint.prefix(12))…)")
        }
        let context = try ZMQContext()
        let socket = try ZMQSocket(context, .dealer)
        defer { socket.close() }
        try socket.setMaximumMessageSize(options.maxMessageBytes)
        try socket.setImmediate()
        if let serverKey = options.serverKey {
            try socket.makeCurveClient(try options.curve ?? CurveKeyPair.generate(), serverKey: serverKey)
        }
        var monitor: ZMQMonitor? = try ZMQMonitor(socket)
        defer { monitor = nil }
        var reportedHandshakeFailure = false
        try socket.connect(options.endpoint)
        let relay = try openRelaySocket(context)
        defer {
            relaySocket?.close()
            for peer in peerSockets.values { peer.close() }
        }
        if let exit = try sayHello(socket, monitor: monitor!, relay: relay) { return exit }
        logger.info("connected to \(options.endpoint), said hello")
        // From now on a send that cannot go out for this long means the coordinator is gone.
        try socket.setSendTimeout(options.coordinatorTimeout)
        while true {
            if let parent = options.parentPID, getppid() != parent {
                return .coordinatorLost("the coordinator process \(parent) is gone")
            }
            if Date().timeIntervalSince(lastHeard) > options.coordinatorTimeout {
                return .coordinatorLost("no word from the coordinator for \(Int(options.coordinatorTimeout)) s")
            }
            for event in monitor?.poll() ?? [] where event.isHandshakeFailure {
                // ZAP's 400: the coordinator does not know our key. Retrying will not help.
                if event.isAuthenticationFailure {
                    return .refused("the coordinator refused this worker's CURVE key (ZAP status \(event.value))")
                }
                if !reportedHandshakeFailure {
                    logger.warning("the CURVE handshake with \(event.endpoint) failed; is --server-key the coordinator's public key?")
                    reportedHandshakeFailure = true
                }
            }
            try heartbeatIfDue(socket)
            if let exit = try takeNextMessage(socket) { return exit }
        }
    }

    /// Waits a heartbeat interval for a message, from the coordinator or (relaying) another
    /// worker, and handles it; returns an exit when the worker should stop.
    func takeNextMessage(_ socket: ZMQSocket) throws -> Exit? {
        if !peerWatch.isEmpty { try checkPeers(socket) }
        guard let next = try nextFrames(socket) else { return nil }
        do {
            if next.fromPeer {
                try handlePeer(next.frames, socket: socket)
                return nil
            }
            lastHeard = Date()
            let message: Message
            do { message = try Message.parse(next.frames[...]) } catch {
                drop("malformed message: \(error)")
                return nil
            }
            if let exit = try handle(message, socket: socket) { return exit }
        } catch let error as ZMQError where error.isTimeout {
            return lastWords(socket, error: error)
        }
        if let failure {
            // The same samples would fail on any worker: say so, and let the coordinator stop.
            try send(socket, .failure, step: 0, body: FailureMessage(reason: failure).encode())
            return .failed(failure)
        }
        return nil
    }

    /// Handles one message; returns an exit when the worker should stop.
    func handle(_ message: Message, socket: ZMQSocket) throws -> Exit? {
        let header = message.header
        if header.kind == .shutdown {
            let shutdown = try? ShutdownMessage.decode(message)
            if shutdown?.refused == true { return .refused(shutdown?.reason ?? "refused") }
            if let family = shutdown?.rejoinWithBLAS, !family.isEmpty {
                logger.info("the run computes with the \(family) BLAS kernels: restarting with them")
                return .rejoinWithBLAS(family)
            }
            logger.info("shutdown: \(shutdown?.reason ?? "")")
            return .shutdown
        }
        guard header.version == Wire.version else { drop("protocol version \(header.version)"); return nil }
        if header.kind == .welcome {
            do { try welcome(message) } catch { drop("bad welcome: \(error)") }
            return nil
        }
        guard let runID, header.runID == runID else { drop("\(header.kind) for run \(header.runID) before or outside our run"); return nil }
        do {
            switch header.kind {
            case .weights:
                let weights = try WeightsMessage.decode(message)
                if weights.shared {
                    guard let shm = sharedWeights else { throw ProtocolError("shared weights, but no shared memory was set up") }
                    parameters = shm.tensors(at: 0, shapes: shapes)  // read in place, never written here
                } else {
                    parameters = try PackedTensors.unpack(message.tensors[0], shapes: shapes)
                }
                weightsVersion = weights.version
                nextWeights = nil
                ahead = nil
                try runParkedTask(socket)
            case .weightsChunk:
                try takeWeightsChunk(message, socket: socket)
            case .task:
                try runTask(try TaskMessage.decode(message), message: message, step: header.step, socket: socket)
            case .heartbeat:
                break
            default:
                drop("unexpected \(header.kind) from the coordinator")
            }
        } catch let error as ProtocolError {
            drop(error.description)
        }
        return nil
    }

    func welcome(_ message: Message) throws {
        let w = try Welcome.decode(message)
        guard message.tensors.count == 1 else { throw ProtocolError("welcome needs one weights frame") }
        let gradient: MicroBatchGradient
        do { gradient = try w.spec.makeGradient() } catch { throw ProtocolError("the model does not build: \(error)") }
        let expected = gradient.model.parameterSpecs.map(\.spec.shape)
        guard expected == w.shapes else { throw ProtocolError("weights of shapes \(w.shapes) for a model of \(expected)") }
        shapes = w.shapes
        streamLayout = StreamLayout(shapes: w.shapes, dtype: w.spec.wireDType)
        relaySecret = w.relaySecret
        parameters = try PackedTensors.unpack(message.tensors[0], shapes: w.shapes)
        self.gradient = gradient
        sampleCheck = SampleCheck(model: gradient.model, loss: gradient.loss)
        seed = w.seed
        weightsVersion = w.weightsVersion
        runID = message.header.runID
        usesLocalData = !w.sendsSamples
        if !w.sharedWeights.isEmpty {
            let floats = w.shapes.reduce(0) { $0 + $1.reduce(1, *) }
            sharedWeights = try SharedMemory(path: w.sharedWeights, floats: floats, create: false)
            sharedResults = try SharedMemory(path: w.sharedResults, floats: floats * w.resultSlots, create: false)
            resultSlots = w.resultSlots
        }
        if !w.mailbox.isEmpty {
            // On the coordinator's machine: no relaying.
            relaySocket?.close()
            relaySocket = nil
            mailbox = try LocalMailbox(path: w.mailbox, create: false)
            coordinatorBell = try Doorbell(path: w.coordinatorBell, create: false)
        }
        if usesLocalData && localData?.fingerprint != w.datasetFingerprint {
            throw ProtocolError("told to use local data, but ours differs from the coordinator's")
        }
        // The samples this worker will read itself must fit the model as well.
        if usesLocalData, let data = localData, let (sample, problem) = sampleCheck?.firstProblem(inputs: data.inputs, targets: data.targets) {
            failure = "its own data (\(data.name)) sample \(sample): \(problem)"
        }
        let text = "welcome: worker \(w.workerID), run \(message.header.runID), \(parameters.count) parameter tensors, " +
            (w.blasFamily.isEmpty ? "" : "\(w.blasFamily) BLAS kernels, ") +
            (usesLocalData ? "local data" : "samples sent with each task") + (sharedResults != nil ? ", shared memory" : "")
        logger.info("\(text)")
    }

    func runTask(_ task: TaskMessage, message: Message, step: UInt64, socket: ZMQSocket) throws {
        guard let gradient else { throw ProtocolError("task before welcome") }
        if task.weightsVersion != weightsVersion, let shm = sharedWeights {
            // On the coordinator's machine a newer version comes with the task: it is in the
            // shared file (written while we were idle), read in place and never written here.
            parameters = shm.tensors(at: 0, shapes: shapes)
            weightsVersion = task.weightsVersion
        }
        parkedTask = nil
        relayJob = nil  // a new task: the coordinator gave up on the last one
        forwardWeightsTo = task.relay.forwardWeights
        // Connect now, so the connections are up by the time the first chunks go.
        for peer in [task.relay.forwardWeights, task.relay.upstream].compactMap({ $0 }) { _ = try peerSocket(peer) }
        if task.weightsVersion != weightsVersion, let next = nextWeights, next.isWhole(for: task) {
            // Streamed while we were idle: every chunk is here.
            parameters = next.tensors
            weightsVersion = next.version
            nextWeights = nil
        }
        if task.weightsVersion != weightsVersion, task.weightsVersion > weightsVersion || weightsVersion == .max, sharedWeights == nil {
            // Its weights are still coming down the relay chain (or the coordinator's whole
            // WEIGHTS, if the chain broke): it runs when they are here.
            parkedTask = (task, message, step)
            return
        }
        guard task.weightsVersion == weightsVersion else {
            throw ProtocolError("task for weights \(task.weightsVersion), we hold \(weightsVersion)")
        }
        let firstLayerOutputs = takeAhead(for: task)
        if !firstLayerOutputs.isEmpty { logger.debug("step \(step): task \(task.taskID) starts from its first layer computed ahead") }
        expectNextLeaves(of: task)
        let start = Date()
        let tree = GradientTree(leafCount: task.leafCount, precision: streamLayout.dtype)
        let ranges = tree.blocks(covering: task.range)
        let shared = sharedResults != nil && task.sharedSlot >= 0 && task.sharedSlot + ranges.count <= resultSlots
        let firstWeightRows = streamsFirstWeightRows(task, shared: shared, gradient: gradient)
        if firstWeightRows != nil { logger.debug("step \(step): task \(task.taskID) sends its first weight's gradient in row ranges") }
        let (sums, blocks) = try computeBlocks(ranges, of: task, tree: tree, message: message, step: step, gradient: gradient,
                                               shared: shared, deferring: firstWeightRows, firstLayerOutputs: firstLayerOutputs,
                                               socket: socket)
        var result = ResultMessage(taskID: task.taskID, blocks: blocks, computeSeconds: Date().timeIntervalSince(start), shared: shared,
                                   streamed: !shared)
        result.peakResidentBytes = PeakMemory.residentBytes()
        logger.debug("step \(step): task \(task.taskID), micro-batches \(task.range) in \(String(format: "%.2f", result.computeSeconds * 1000)) ms")
        if !task.relay.children.isEmpty || task.relay.upstream != nil {
            let own = Dictionary(uniqueKeysWithValues: zip(ranges, zip(sums, blocks).map { sum, block in
                GradientSum(gradients: sum, lossSum: block.lossSum, samples: block.samples, correct: block.correct)
            }))
            try startRelayJob(RelayJob(task: task, step: step, own: own, shapes: shapes, computeSeconds: result.computeSeconds,
                                          precision: tree.precision), socket: socket)
            return
        }
        try send(socket, .result, step: step, body: result.encode())
        if !shared {
            let rows = firstWeightRows.map { (plan: $0, blocks: ranges, tree: tree) }
            try streamGradients(sums, task: task.taskID, step: step, socket: socket, firstWeightRows: rows)
        }
    }

    /// The samples a task carries (two frames per leaf), copied out before the frames go; none
    /// when this worker reads its own copy of the data (then the indices are checked).
    func samplesSent(with task: TaskMessage, message: Message) throws -> [(Tensor, Tensor)] {
        if usesLocalData {
            if let data = localData, let bad = task.leaves.joined().first(where: { $0 < 0 || $0 >= data.count }) {
                throw ProtocolError("sample index \(bad) outside the dataset of \(data.count)")
            }
            return []
        }
        guard task.sampleShapes.count == task.leaves.count, message.tensors.count == 2 * task.leaves.count else {
            throw ProtocolError("task without the samples this worker needs")
        }
        var sent: [(Tensor, Tensor)] = []
        for (i, shapes) in task.sampleShapes.enumerated() {
            let x = try PackedTensors.unpack(message.tensors[2 * i], shapes: [shapes.inputs])[0]
            let y = try PackedTensors.unpack(message.tensors[2 * i + 1], shapes: [shapes.targets])[0]
            guard x.shape.first == task.leaves[i].count, y.shape.first == task.leaves[i].count else {
                throw ProtocolError("leaf \(i) has \(task.leaves[i].count) indices but \(x.shape.first ?? 0) samples")
            }
            if let (sample, problem) = sampleCheck?.firstProblem(inputs: x, targets: y, indices: task.leaves[i]) {
                failure = "sample \(sample) sent with task \(task.taskID): \(problem)"
                throw ProtocolError(failure!)
            }
            sent.append((x, y))
        }
        return sent
    }

}
