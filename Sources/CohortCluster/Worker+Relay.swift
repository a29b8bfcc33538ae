import CohortTensor
import CohortTraining
import Foundation
import ZeroMQ

/// A worker across the network as a relay (see `RelayPlan`): it forwards the next weights'
/// chunks down the chain as they arrive, and adds its children's gradient blocks to its own,
/// chunk by chunk along the tree, before sending the sum on. The coordinator's link then
/// carries one copy of the weights and fewer gradients, and the additions are the tree's.
///
/// Other workers reach it on its relay socket (a ROUTER it binds at start, CURVE when the run
/// uses CURVE); it reaches them through a DEALER per peer. A message there must carry the run's
/// id and relay secret (from WELCOME), which only the run's workers know.
extension Worker {
    /// Binds the relay socket on the address this machine uses to reach the coordinator, when
    /// that is tcp (a worker on the coordinator's machine, reached by ipc, relays nothing).
    func openRelaySocket(_ context: ZMQContext) throws -> RelayPeer? {
        guard let ip = RelayAddress.local(toward: options.endpoint) else { return nil }
        let socket = try ZMQSocket(context, .router)
        try socket.setMaximumMessageSize(options.maxMessageBytes)
        var key = ""
        if options.serverKey != nil {
            let pair = try CurveKeyPair.generate()
            try socket.makeCurveServer(pair)
            key = pair.publicKey
        }
        try socket.bind("tcp://\(ip):*")
        relaySocket = socket
        return RelayPeer(endpoint: try socket.lastEndpoint, serverKey: key)
    }

    /// The DEALER to `peer`, connected once and kept, and watched until its handshake is done.
    func peerSocket(_ peer: RelayPeer) throws -> ZMQSocket {
        if let socket = peerSockets[peer] { return socket }
        let socket = try ZMQSocket(relaySocket!.context, .dealer)
        peerWatch[peer] = PeerWatch(monitor: try ZMQMonitor(socket), since: Date())
        // Not ZMQ_IMMEDIATE: what is sent before the connection is up waits in its pipe
        // (up to the high-water mark) instead of failing.
        try socket.setSendTimeout(options.coordinatorTimeout)
        if !peer.serverKey.isEmpty { try socket.makeCurveClient(try CurveKeyPair.generate(), serverKey: peer.serverKey) }
        try socket.connect(peer.endpoint)
        peerSockets[peer] = socket
        return socket
    }

    /// A peer that has not completed its handshake `relayPatience` seconds after we connected
    /// cannot be reached from here: the coordinator is told once, and stops relaying.
    func checkPeers(_ socket: ZMQSocket) throws {
        for (peer, watch) in peerWatch {
            if watch.monitor.poll().contains(where: \.isHandshakeSuccess) {
                peerWatch[peer] = nil
            } else if Date().timeIntervalSince(watch.since) > Self.relayPatience {
                peerWatch[peer] = nil
                logger.warning("cannot reach the relay socket of another worker at \(peer.endpoint); telling the coordinator")
                try send(socket, .relayUnreachable, step: 0, body: RelayUnreachableMessage(endpoint: peer.endpoint).encode())
            }
        }
    }

    /// Seconds a connection to another worker may take (a handshake on a LAN takes milliseconds).
    static let relayPatience = 2.0

    /// A message on the relay socket: checked (this run, the secret), then a weights chunk from
    /// upstream, or a child's result or gradient chunk.
    func handlePeer(_ frames: [ZMQFrame], socket: ZMQSocket) throws {
        guard frames.count >= 3, let runID else { drop("relay: \(frames.count) frames before welcome"); return }
        let message: Message
        do { message = try Message.parse(frames[1...]) } catch { drop("relay: \(error)"); return }
        guard message.header.runID == runID, message.header.version == Wire.version else { drop("relay: another run"); return }
        do {
            switch message.header.kind {
            case .weightsChunk:
                try takeWeightsChunk(message, socket: socket, fromPeer: true)
            case .result:
                let result = try ResultMessage.decode(message)
                guard result.secret == relaySecret, result.streamed else { throw ProtocolError("a child's result without the run's secret") }
                takeChildMessage(.result(result), taskID: result.taskID, socket: socket)
            case .gradientChunk:
                let chunk = try GradientChunkMessage.decode(message, layout: streamLayout)
                guard chunk.secret == relaySecret else { throw ProtocolError("a gradient chunk without the run's secret") }
                takeChildMessage(.chunk(chunk, message.tensors[0].bytes), taskID: chunk.taskID, socket: socket)
            default:
                drop("relay: unexpected \(message.header.kind)")
            }
        } catch let error as ProtocolError {
            drop("relay: \(error)")
        }
    }

    /// A child's message goes to the relay job that expects it; one for a job not started yet
    /// (this worker is still computing, or its TASK is late) waits: up to eight blocks' worth of
    /// a step (the oldest go first, a voided job's).
    func takeChildMessage(_ message: ChildMessage, taskID: UInt64, socket: ZMQSocket) {
        guard let job = relayJob, job.children[taskID] != nil else {
            earlyChildMessages.append((taskID, message))
            let most = 8 * (streamLayout.chunkCount + 1)
            if earlyChildMessages.count > most { earlyChildMessages.removeFirst(earlyChildMessages.count - most) }
            return
        }
        do {
            try job.take(message, from: taskID, layout: streamLayout)
            try progressRelayJob(socket)
        } catch let error as ProtocolError {
            drop("relay: child task \(taskID): \(error)")
        } catch {
            drop("relay: \(error)")
        }
    }

    /// Starts the relay job of a task whose own blocks are computed, with any child messages
    /// that came early, and sends what it can.
    func startRelayJob(_ job: RelayJob, socket: ZMQSocket) throws {
        relayJob = job
        let early = earlyChildMessages
        earlyChildMessages = []
        for (taskID, message) in early where job.children[taskID] != nil {
            do { try job.take(message, from: taskID, layout: streamLayout) } catch let error as ProtocolError {
                drop("relay: child task \(taskID): \(error)")
            }
        }
        try progressRelayJob(socket)
    }

    /// Sends the job's RESULT once every child's has come, then each chunk that every child has
    /// sent, summed along the tree; upstream is a peer or the coordinator.
    func progressRelayJob(_ socket: ZMQSocket) throws {
        guard let job = relayJob else { return }
        let upstream = job.task.relay.upstream
        func sendUp(_ kind: MessageKind, _ body: [UInt8], _ tensors: [OutgoingFrame]) throws {
            if let upstream {
                try peerSocket(upstream).send(Message.frames(kind: kind, runID: runID ?? 0, step: job.step, body: body, tensors: tensors))
            } else {
                try send(socket, kind, step: job.step, body: body, tensors: tensors)
            }
        }
        if !job.resultSent {
            guard let result = job.mergedResult(secret: upstream == nil ? 0 : relaySecret) else { return }
            try sendUp(.result, result.encode(), [])
            job.resultSent = true
        }
        let count = streamLayout.chunkCount
        while job.chunksSent < count, job.hasChunk(job.chunksSent) {
            let c = job.chunksSent
            for (b, block) in job.outBlocks.enumerated() {
                let bytes = job.chunk(c, of: block, layout: streamLayout)
                let body = GradientChunkMessage(taskID: job.task.taskID, block: b, chunk: c, chunkCount: count,
                                                secret: upstream == nil ? 0 : relaySecret).encode()
                try sendUp(.gradientChunk, body, [.bytes(bytes)])
            }
            job.chunksSent += 1
        }
        if job.chunksSent == count { relayJob = nil }
    }

    /// Forwards a WEIGHTS CHUNK down the chain, as it came, when the last TASK says to.
    func forwardWeightsChunk(_ message: Message, step: UInt64) {
        guard let next = forwardWeightsTo else { return }
        let frames = Message.frames(kind: .weightsChunk, runID: runID ?? 0, step: step, body: message.body,
                                    tensors: message.tensors.map { .bytes($0.bytes) })
        do { try peerSocket(next).send(frames, wait: false) } catch {
            // A full queue or a peer that has gone: the coordinator sends it the whole weights.
            drop("relay: could not forward weights to \(next.endpoint): \(error)")
        }
    }
}

/// A connection to a peer, watched for its handshake.
struct PeerWatch {
    let monitor: ZMQMonitor
    let since: Date
}

/// What a child sends its relay.
enum ChildMessage {
    case result(ResultMessage)
    case chunk(GradientChunkMessage, [UInt8])
}

/// This worker's relay job for one task: its own blocks, its children's as they arrive, and
/// what has gone upstream.
final class RelayJob {
    struct Child {
        var range: Range<Int>
        var result: ResultMessage?
        var sums: [[Tensor]] = []
        var arrived: [[Bool]] = []
    }

    let task: TaskMessage
    let step: UInt64
    let tree: GradientTree
    let shapes: [[Int]]
    let computeSeconds: Double
    /// The blocks sent upstream: the tree's cover of the task's merged range.
    let outBlocks: [Range<Int>]
    var own: [Range<Int>: GradientSum]
    var children: [UInt64: Child]
    var resultSent = false
    var chunksSent = 0

    init(task: TaskMessage, step: UInt64, own: [Range<Int>: GradientSum], shapes: [[Int]], computeSeconds: Double,
         precision: WireDType) {
        self.task = task; self.step = step; self.own = own; self.shapes = shapes; self.computeSeconds = computeSeconds
        tree = GradientTree(leafCount: task.leafCount, precision: precision)
        outBlocks = tree.blocks(covering: task.mergedRange)
        children = Dictionary(uniqueKeysWithValues: task.relay.children.map { ($0.taskID, Child(range: $0.range)) })
    }

    func take(_ message: ChildMessage, from taskID: UInt64, layout: StreamLayout) throws {
        guard var child = children[taskID] else { throw ProtocolError("not a child of this task") }
        switch message {
        case .result(let result):
            guard child.result == nil else { throw ProtocolError("a second result") }
            guard result.blocks.map(\.range) == tree.blocks(covering: child.range) else {
                throw ProtocolError("blocks \(result.blocks.map(\.range)) do not cover \(child.range)")
            }
            child.result = result
            child.sums = result.blocks.map { _ in shapes.map { Tensor(uninitializedShape: $0) } }
            child.arrived = result.blocks.map { _ in Array(repeating: false, count: layout.chunkCount) }
        case let .chunk(chunk, bytes):
            guard child.result != nil else { throw ProtocolError("a gradient chunk before its result") }
            guard chunk.block < child.sums.count, !child.arrived[chunk.block][chunk.chunk] else {
                throw ProtocolError("chunk \(chunk.chunk) of block \(chunk.block): out of range or twice")
            }
            bytes.withUnsafeBytes { layout.scatter(chunk.chunk, from: $0, into: child.sums[chunk.block]) }
            child.arrived[chunk.block][chunk.chunk] = true
        }
        children[taskID] = child
    }

    /// The merged RESULT (counts added along the tree), once every child's result is here.
    func mergedResult(secret: UInt64) -> ResultMessage? {
        var known = own.mapValues(Tally.init)
        for child in children.values {
            guard let result = child.result else { return nil }
            for block in result.blocks { known[block.range] = Tally(lossSum: block.lossSum, samples: block.samples, correct: block.correct) }
        }
        let blocks = outBlocks.map { node in
            let tally = tree.sum(node, known: known) { leaf in preconditionFailure("leaf \(leaf) of \(node) is nowhere") }
            return ResultMessage.Block(range: node, lossSum: tally.lossSum, samples: tally.samples, correct: tally.correct)
        }
        var result = ResultMessage(taskID: task.taskID, blocks: blocks, computeSeconds: computeSeconds, streamed: true, secret: secret)
        result.peakResidentBytes = PeakMemory.residentBytes()
        for (id, child) in children.sorted(by: { $0.value.range.lowerBound < $1.value.range.lowerBound }) {
            result.relayed += [(id, child.result!.computeSeconds, child.result!.peakResidentBytes)] + child.result!.relayed
        }
        return result
    }

    /// Whether every child has sent chunk `c` of every block.
    func hasChunk(_ c: Int) -> Bool {
        children.values.allSatisfy { $0.result != nil && $0.arrived.allSatisfy { $0[c] } }
    }

    /// Chunk `c` of out block `node`, summed along the tree from this worker's blocks and its children's.
    func chunk(_ c: Int, of node: Range<Int>, layout: StreamLayout) -> [UInt8] {
        let source: (Range<Int>) -> [Tensor]? = { range in
            if let block = self.own[range] { return block.gradients }
            for child in self.children.values {
                if let b = child.result?.blocks.firstIndex(where: { $0.range == range }) { return child.sums[b] }
            }
            return nil
        }
        return layout.encode(layout.floats(inChunk: c)) { out in
            var at = 0
            for j in layout.chunks[c] {
                let piece = layout.pieces[j]
                (out + at).update(from: tree.pieceSum(node, piece, source: source), count: piece.count)
                at += piece.count
            }
        }
    }
}

/// The address this machine uses toward a tcp endpoint (where other workers can reach it), or
/// nil when the endpoint is not tcp or cannot be resolved.
enum RelayAddress {
    static func local(toward endpoint: String) -> String? {
        guard endpoint.hasPrefix("tcp://"), let colon = endpoint.lastIndex(of: ":") else { return nil }
        var host = String(endpoint[endpoint.index(endpoint.startIndex, offsetBy: 6)..<colon])
        host = host.trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        guard let port = UInt16(endpoint[endpoint.index(after: colon)...]) else { return nil }
        var hints = addrinfo()
        hints.ai_family = AF_INET
        hints.ai_socktype = Int32(SOCK_DGRAM.rawValue)
        var found: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &found) == 0, let info = found else { return nil }
        defer { freeaddrinfo(found) }
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        // A UDP connect sends nothing: it only picks the route, and with it the local address.
        guard connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 else { return nil }
        var local = sockaddr_in(), length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &local) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        guard named == 0 else { return nil }
        var text = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
        var address = local.sin_addr
        guard inet_ntop(AF_INET, &address, &text, socklen_t(text.count)) != nil else { return nil }
        return String(cString: text)
    }
}
