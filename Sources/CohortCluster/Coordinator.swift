import CohortData
import CohortNN
import CohortTensor
import CohortTraining
import Foundation
import Logging
import ZeroMQ

/// The coordinator's side of the distributed step: a ROUTER socket, the worker pool, and the
/// executor that hands each step's micro-batches to the workers and collects the tree blocks.
/// The Trainer does the rest (tree sum, ÷ B, clip, update), exactly as in one process.
///
/// Its roles live in files of their own: `Coordinator+Membership.swift` (joins, heartbeats,
/// deaths, CURVE reports), `Coordinator+Step.swift` (tasks out, results in) and
/// `Coordinator+Metrics.swift`.
package final class Coordinator: GradientExecutor {
    /// How the coordinator listens and watches its workers. These are the defaults of a run:
    /// the config's `cluster` section and `cohort train`'s flags only override them.
    package struct Options: Sendable {
        package var endpoint: String
        /// Seconds of silence after which a worker is declared dead and its work reassigned.
        package var heartbeatTimeout: Double = 10
        var heartbeatInterval: Double = 1
        /// Largest message accepted (ZMQ_MAXMSGSIZE), checked before allocation.
        package var maxMessageBytes: Int64 = 1 << 30
        /// Offer /dev/shm to workers on this machine.
        package var sharedMemory = true
        /// A task's deadline: this many times the median time per micro-batch of recent tasks,
        /// and never less than the floor (seconds).
        package var taskDeadlineMultiple: Double = 10
        package var taskDeadlineFloor: Double = 5
        /// CURVE: the coordinator's key pair, and the public keys of the workers allowed in.
        /// Without it the transport is plain ZeroMQ (fine for ipc:// and loopback).
        package var curve: CurveKeyPair?
        package var authorizedKeys: [String] = []
        /// The run's token (plain tcp binds): a HELLO without it is refused.
        package var token: String?
        /// Workers taken at most; further HELLOs are refused.
        package var maxWorkers = 64
        /// The OpenBLAS kernel family of every worker (BLASFamily); nil chooses it at start.
        package var blasKernel: BLASFamily?
        /// Workers across the network relay weights and gradients for each other (`RelayTopology`).
        /// Off where they cannot reach each other; on, it also turns itself off the first time a
        /// relayed task misses its deadline.
        package var relays = true
        /// How micro-batches are dealt when workers relay (`Dealing`): measured, even, or along the tree.
        package var dealing = Dealing.auto
        package init(endpoint: String) { self.endpoint = endpoint }
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
        /// The most resident memory its results have reported, in bytes (0: none yet).
        var peakResidentBytes: UInt64 = 0
        var stepComputeSeconds = 0.0
        var tasks = 0
        /// Gradient slots in shared memory, for a worker on this machine.
        var results: SharedMemory?
        var usesSharedWeights: Bool { results != nil }
        /// Across the network, with a relay socket: it can relay for others (`RelayTopology`).
        var canRelay: Bool { !usesSharedWeights && hello.relay != nil }
        /// TASK and RESULT messages through shared memory, for a worker on this machine.
        var mailbox: LocalMailbox?
        /// Result slots handed out in the current step.
        var slotsUsed = 0
        /// It sent a result that recomputing did not reproduce, or one that could not be used:
        /// dropped for good.
        var faulty = false
        /// It missed a task's deadline while sending heartbeats: set aside until it answers.
        var stalled = false

        init(id: UInt32, identity: [UInt8], hello: Hello, sendsSamples: Bool) {
            self.id = id; self.identity = identity; self.hello = hello; self.sendsSamples = sendsSamples
        }
    }

    let setup: TrainingSetup
    let options: Options
    let logger: Logger
    let context: ZMQContext
    let socket: ZMQSocket
    let authenticator: CurveAuthenticator?
    /// With CURVE: handshakes that failed before the ZAP handler was asked (a worker without
    /// CURVE, or with another server key), counted and reported sparingly.
    let monitor: ZMQMonitor?
    var failedHandshakes = 0
    package let endpoint: String
    let runID: UInt64
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
    /// How gradients and weights are cut into chunks for workers across a network.
    let streamLayout: StreamLayout
    /// Shown by workers to each other's relay sockets (sent in WELCOME).
    let relaySecret = UInt64.random(in: 1...UInt64.max)
    /// The relay chain that carried the current weights, in order (see `relayLost`).
    var lastWeightsChain: (version: UInt64, workers: [UInt32])?
    /// The generation of streamed chunks that made a version of the weights (TASKs name it).
    var streamedGeneration: (version: UInt64, generation: UInt32)?
    /// Relaying failed once in this run (see `relaysFailed`): no more of it.
    var relaysOff = false
    /// Times the two dealings on the run's first relayed steps (`cluster.dealing: auto`).
    var dealingTuner = DealingTuner()
    /// How the last step whose dealing could differ was dealt (for summary.json).
    var lastDealing: Dealing?
    /// A worker said it cannot reach another's relay socket (why), not yet acted on.
    var relaysUnreachable: String?
    var weightsVersion: UInt64 = 0
    var dropLog = DropLog()
    var bytesSent = 0, bytesReceived = 0
    var stepBytesSent = 0, stepBytesReceived = 0, stepBroadcastSeconds = 0.0, stepExchangeSeconds = 0.0
    var lastHeartbeatSent = Date.distantPast
    /// Local worker processes, watched so a crash is noticed at once.
    package var localProcesses: LocalWorkers?
    /// Weights for workers on this machine, written once per step (nil until one joins).
    var sharedWeights: SharedMemory?
    /// Rung by local workers when they leave a RESULT in their mailbox (nil until one joins).
    var bell: Doorbell?
    var sharedWeightsVersion: UInt64 = .max
    let machineID = SharedMemory.machineID
    static let resultSlots = 4
    /// Seconds per micro-batch of the last tasks, for their deadlines.
    var leafSeconds: [Double] = []
    /// On the careful path (`recompute`) every block is checked as it arrives.
    var careful = false
    /// Micro-batches the coordinator computes itself, to check a worker's block.
    lazy var ownLeaves = LeafThreads(count: 1)
    /// The run's OpenBLAS kernel family (a BLASFamily name): pinned, or chosen at start.
    package var blasFamily: String?
    /// Shared memory of workers sent away to restart with that family: kept until the run ends,
    /// as their WELCOME may still be read.
    var retiredSharedMemory: [SharedMemory] = []

    package init(setup: TrainingSetup, options: Options, logger: Logger) throws {
        self.setup = setup
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
        // What workers compute on, as `Trainer.nextTask` gives it.
        parameters = setup.spec.wireDType.working(setup.initialParameters)
        shapes = parameters.map(\.shape)
        parameterFloats = parameters.reduce(0) { $0 + $1.count }
        streamLayout = StreamLayout(shapes: shapes, dtype: setup.spec.wireDType)
        blasFamily = options.blasKernel?.rawValue
    }

    deinit { close() }

    /// Closes the sockets and waits (up to their linger, 1 s) until what they queued has gone
    /// out: a SHUTDOWN queued just before the process exits would otherwise never leave, and
    /// its worker would wait for its own timeout.
    package func close() {
        monitor?.close()
        socket.close()
        authenticator?.stop()
        context.terminate()
    }

    var liveWorkers: [WorkerState] { workers.values.filter(\.alive).sorted { $0.id < $1.id } }
    var liveWorkerCount: Int { liveWorkers.count }

    // MARK: sending

    @discardableResult
    func send(to identity: [UInt8], _ kind: MessageKind, step: UInt64, body: [UInt8], tensors: [OutgoingFrame] = []) throws -> Int {
        let n = try socket.send([.bytes(identity)] + Message.frames(kind: kind, runID: runID, step: step, body: body, tensors: tensors))
        bytesSent += n; stepBytesSent += n
        return n
    }

    /// Sends to a worker; a worker that has gone is marked dead instead of failing the run.
    /// A worker with a mailbox is woken for it, as it sleeps on its doorbell rather than the socket.
    func trySend(_ worker: WorkerState, _ kind: MessageKind, step: UInt64, body: [UInt8], tensors: [OutgoingFrame] = []) {
        do { try send(to: worker.identity, kind, step: step, body: body, tensors: tensors) } catch {
            markDead(worker, because: "send failed: \(error)")
        }
        worker.mailbox?.workerBell.ring()
    }

    /// Counts and (sparingly) logs a message that is not used; `kind` groups the log lines.
    func drop(_ why: String, kind: String = "unusable message") {
        dropLog.record(kind: kind, why, logger: logger)
    }

    var droppedMessages: Int { dropLog.total }
}
