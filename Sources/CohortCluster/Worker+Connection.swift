import Foundation
import ZeroMQ

/// The worker's side of the connection: saying HELLO, sending (never blocked for ever by a
/// coordinator that is gone), heartbeats, and the last words read after a failed send.
extension Worker {
    /// A send to the coordinator failed: at the end of a run it has sent SHUTDOWN and closed
    /// its socket, and the SHUTDOWN is waiting here; otherwise it is gone.
    func lastWords(_ socket: ZMQSocket, error: ZMQError) -> Exit {
        let deadline = Date().addingTimeInterval(1)
        while Date() < deadline, let frames = try? socket.receive(timeout: 0.1) {
            if let message = try? Message.parse(frames[...]), message.header.kind == .shutdown {
                let reason = (try? ShutdownMessage.decode(message))?.reason ?? ""
                logger.info("shutdown: \(reason)")
                return .shutdown
            }
        }
        return .coordinatorLost("cannot send to the coordinator at \(options.endpoint) (\(error))")
    }

    /// Says HELLO until a connection takes it. With ZMQ_IMMEDIATE the message waits for a
    /// completed handshake, so a coordinator that never answers, or one that wants CURVE from a
    /// plain worker, ends in a clear message instead of a send blocked for ever.
    func sayHello(_ socket: ZMQSocket, monitor: ZMQMonitor, relay: RelayPeer?) throws -> Exit? {
        let blas = BLASMachine.current
        var hello = Hello(threads: options.threads, host: ProcessInfo.processInfo.hostName, pid: Int(getpid()),
                          fingerprints: localData.map { [$0.fingerprint] } ?? [], machineID: SharedMemory.machineID,
                          token: options.token ?? "", blasLoaded: blas.loaded, blasRunnable: blas.runnable)
        hello.relay = relay
        let deadline = Date().addingTimeInterval(options.coordinatorTimeout)
        var handshakeFailed = false
        try socket.setSendTimeout(0.25)
        while true {
            do {
                try send(socket, .hello, step: 0, body: hello.encode())
                return nil
            } catch let error as ZMQError where error.isTimeout {}
            for event in monitor.poll() where event.isHandshakeFailure {
                if event.isAuthenticationFailure {
                    return .refused("the coordinator refused this worker's CURVE key (ZAP status \(event.value))")
                }
                handshakeFailed = true
            }
            if let parent = options.parentPID, getppid() != parent { return .coordinatorLost("the coordinator process \(parent) is gone") }
            guard Date() < deadline else { return .coordinatorLost(noConnection(handshakeFailed: handshakeFailed)) }
        }
    }

    /// Why no connection came about, with what to try.
    func noConnection(handshakeFailed: Bool) -> String {
        let seconds = Int(options.coordinatorTimeout)
        guard handshakeFailed else { return "no connection to the coordinator at \(options.endpoint) within \(seconds) s (is it running, and the address right?)" }
        if options.serverKey == nil {
            return "the coordinator at \(options.endpoint) refused the handshake for \(seconds) s: it may require CURVE " +
                "(give --server-key with its .key file, and --secret-key with this worker's key)"
        }
        return "the CURVE handshake with \(options.endpoint) failed for \(seconds) s: is --server-key the coordinator's public key?"
    }

    /// Counts and (sparingly) logs a message that is not used; `kind` groups the log lines.
    func drop(_ why: String, kind: String = "unusable message") {
        dropLog.record(kind: kind, why, logger: logger)
    }

    var droppedMessages: Int { dropLog.total }

    /// The next message from the coordinator, or nil after a heartbeat interval without one.
    /// With a mailbox the worker sleeps on its doorbell, which the coordinator rings for
    /// messages of either way; a ring with the box empty means a message on the socket, which
    /// may still be on its way.
    func nextFrames(_ socket: ZMQSocket) throws -> (frames: [ZMQFrame], fromPeer: Bool)? {
        if let relaySocket, mailbox == nil {
            // Across the network: the coordinator's socket and the relay socket, the
            // coordinator's first.
            let ready = try ZMQSocket.poll([socket, relaySocket], timeout: options.heartbeatInterval)
            if ready[0] { return (try socket.receiveNow(), false) }
            if ready[1] { return (try relaySocket.receiveNow(), true) }
            return nil
        }
        return try nextFrames(fromCoordinator: socket).map { ($0, false) }
    }

    func nextFrames(fromCoordinator socket: ZMQSocket) throws -> [ZMQFrame]? {
        guard let mailbox else { return try socket.receive(timeout: options.heartbeatInterval) }
        let seen = mailbox.workerBell.value
        if let frames = try takeFromMailbox(mailbox) { return frames }
        if let frames = try socket.receive(timeout: 0) { return frames }
        mailbox.workerBell.wait(seen: seen, timeout: options.heartbeatInterval)
        if let frames = try takeFromMailbox(mailbox) { return frames }
        // Rung with the box empty: a message by the socket (a TASK too large for the box, say)
        // is on its way; wait for it a little, returning as soon as it is here.
        return try socket.receive(timeout: mailbox.workerBell.value == seen ? 0 : 0.05)
    }

    func takeFromMailbox(_ mailbox: LocalMailbox) throws -> [ZMQFrame]? {
        do { return try mailbox.down.take() } catch {
            drop("mailbox: \(error)")
            return nil
        }
    }

    func send(_ socket: ZMQSocket, _ kind: MessageKind, step: UInt64, body: [UInt8], tensors: [OutgoingFrame] = [],
              wait: Bool = true) throws {
        let frames = Message.frames(kind: kind, runID: runID ?? 0, step: step, body: body, tensors: tensors)
        // A RESULT whose gradients are in shared memory goes through the mailbox when it is free.
        if kind == .result, tensors.isEmpty, let mailbox, let coordinatorBell, mailbox.up.post(frames) {
            coordinatorBell.ring()
            lastSent = Date()
            return
        }
        if wait, let parent = options.parentPID {
            // A local worker waits in short slices, so that a coordinator that has died (a
            // second Ctrl-C) is noticed at once, not after the whole send timeout. A message
            // is queued whole or not at all, so trying again is safe.
            let deadline = Date().addingTimeInterval(options.coordinatorTimeout)
            while let full = try Self.sendNow(frames, on: socket) {
                guard getppid() == parent, Date() < deadline else { throw full }
                usleep(500)
            }
        } else {
            try socket.send(frames, wait: wait)
        }
        lastSent = Date()
    }

    /// Queues a message if it can go at once; the EAGAIN error if it cannot yet.
    static func sendNow(_ frames: [OutgoingFrame], on socket: ZMQSocket) throws -> ZMQError? {
        do {
            try socket.send(frames, wait: false)
            return nil
        } catch {
            if error.isTimeout { return error }
            throw error
        }
    }

    func heartbeatIfDue(_ socket: ZMQSocket) throws {
        guard runID != nil, Date().timeIntervalSince(lastSent) >= options.heartbeatInterval else { return }
        // Never waits: a heartbeat that cannot go out now is skipped (the coordinator may have
        // just closed after its SHUTDOWN, which is waiting to be read); silence is what counts.
        do { try send(socket, .heartbeat, step: 0, body: [], wait: false) } catch let error as ZMQError where error.isTimeout {}
    }
}
