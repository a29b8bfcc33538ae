import Foundation
import ZeroMQ

/// Membership: workers join (HELLO → WELCOME), prove they live (heartbeats both ways), die
/// (silence, a failed send, their process exiting) and come back; CURVE refusals are reported.
extension Coordinator {
    /// Waits until `minimum` workers have joined, answering HELLOs.
    /// With `cluster.blas_kernel: auto`, the workers there at start decide the kernel family;
    /// those that loaded another one restart with it and are waited for again.
    package func waitForWorkers(_ minimum: Int, timeout: Double) throws {
        let deadline = Date().addingTimeInterval(timeout)
        repeat {
            try waitForLiveWorkers(minimum, until: deadline, timeout: timeout)
        } while try settleBLASFamily()
    }

    func waitForLiveWorkers(_ minimum: Int, until deadline: Date, timeout: Double) throws {
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
        if let family = blasFamily, let answer = blasAnswer(to: hello, family: family) {
            try send(to: identity, .shutdown, step: 0, body: answer.encode())
            return
        }
        if let refusal = admission(of: hello) {
            logger.warning("refused a worker from \(hello.host) pid \(hello.pid): \(refusal)")
            try send(to: identity, .shutdown, step: 0, body: ShutdownMessage(reason: refusal, refused: true).encode())
            return
        }
        let sameData = hello.fingerprints.contains(setup.dataset.fingerprint)
        let worker = WorkerState(id: nextWorkerID, identity: identity, hello: hello, sendsSamples: !sameData)
        nextWorkerID += 1
        workers[worker.id] = worker
        var welcome = Welcome(workerID: worker.id, blasFamily: blasFamily ?? "", spec: setup.spec, seed: setup.seed,
                              datasetFingerprint: setup.dataset.fingerprint, sendsSamples: !sameData,
                              weightsVersion: weightsVersion, shapes: shapes)
        welcome.relaySecret = relaySecret
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
                if bell == nil { bell = try Doorbell(path: "/dev/shm/cohort-\(getpid())-\(runID)-bell", create: true) }
                worker.mailbox = try LocalMailbox(path: "/dev/shm/cohort-\(getpid())-\(runID)-worker-\(worker.id)-mailbox", create: true)
                welcome.mailbox = worker.mailbox!.path
                welcome.coordinatorBell = bell!.path ?? ""
            } catch {
                logger.notice("no shared memory for worker \(worker.id) (\(error)); it gets frames")
                worker.results = nil
                worker.mailbox = nil
            }
        }
        try send(to: identity, .welcome, step: 0, body: welcome.encode(), tensors: [.zeroCopy(weights.bytes, owner: weights)])
        worker.weightsVersion = weightsVersion
        let text = "worker \(worker.id) joined from \(hello.host) pid \(hello.pid), \(hello.threads) thread(s), " +
            (sameData ? "same dataset: indices only" : "no matching dataset: samples sent with each task")
        logger.info("\(text)")
    }

    /// Why a worker may not join, or nil: a run bound to plain tcp takes only workers with its
    /// token; no run takes more than `maxWorkers` (300 HELLOs once stalled a run for 10 s).
    func admission(of hello: Hello) -> String? {
        if let token = options.token, !RunToken.equal(hello.token, token) {
            return hello.token.isEmpty ? "this run takes only workers with its token (cohort worker --token-file RUN_DIR/workers/token)"
                                       : "wrong run token"
        }
        if liveWorkerCount >= options.maxWorkers {
            return "the run has its \(options.maxWorkers) workers (cluster.max_workers)"
        }
        return nil
    }

    // MARK: messages

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
    package func authorize(_ publicKey: String) { authenticator?.authorize(publicKey) }

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

    /// `counted`: bytes that crossed the socket (not a mailbox's), for the traffic figures.
    func handle(_ frames: [ZMQFrame], counted: Bool = true, results: (ResultFrom) throws -> Void) throws {
        if counted {
            let size = frames.reduce(0) { $0 + $1.count }
            bytesReceived += size; stepBytesReceived += size
        }
        guard frames.count >= 3 else { drop("\(frames.count) frames", kind: "malformed frames"); return }
        let identity = frames[0].bytes
        let message: Message
        do { message = try Message.parse(frames[1...]) } catch { drop("\(error)", kind: "malformed message"); return }
        let worker = workers.values.first { $0.identity == identity }
        if message.header.kind == .hello {
            if let worker { markDead(worker, because: "said hello again") }
            do { try welcome(identity: identity, message: message) } catch { drop("bad hello: \(error)", kind: "bad hello") }
            return
        }
        guard let worker else { drop("\(message.header.kind) from an unknown worker", kind: "message from an unknown peer"); return }
        if worker.faulty {
            // Dropped for numbers an honest computation does not give: never taken back.
            return
        }
        if !worker.alive && message.header.runID == runID && (!worker.stalled || message.header.kind == .result) {
            // Declared dead for silence but talking again (a long pause, a loaded machine), or
            // answering after it stalled: take it back. Its old tasks went to others and their
            // late results are dropped; it gets the current weights before its next task. (A
            // stalled worker's heartbeats alone do not bring it back.)
            worker.alive = true
            worker.stalled = false
            worker.weightsVersion = .max
            logger.notice("worker \(worker.id) is back")
        }
        guard message.header.runID == runID, message.header.version == Wire.version else {
            drop("\(message.header.kind) for another run or protocol version", kind: "other run"); return
        }
        worker.lastSeen = Date()
        switch message.header.kind {
        case .heartbeat: break
        case .relayUnreachable:
            let endpoint = (try? RelayUnreachableMessage.decode(message))?.endpoint ?? "?"
            if !relaysOff && relaysUnreachable == nil { relaysUnreachable = "worker \(worker.id) cannot reach \(endpoint)" }
        case .failure:
            let reason = (try? FailureMessage.decode(message))?.reason ?? "no reason given"
            throw WorkerFailure(worker: "worker \(worker.id) (\(worker.hello.host), pid \(worker.hello.pid))", reason: reason)
        case .result:
            let result = Result { () throws(ProtocolError) in try ResultMessage.decodeChecked(message) }
            try results(ResultFrom(worker: worker, message: message, result: result))
        case .gradientChunk:
            try results(ResultFrom(worker: worker, message: message, result: .failure(ProtocolError("a gradient chunk, not a result"))))
        default: drop("unexpected \(message.header.kind) from worker \(worker.id)")
        }
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
        for (pid, crash) in local.reapExited() {
            // A trap (a failed precondition) would happen again on any worker given the same
            // micro-batch: stop with what the worker said last rather than lose worker after worker.
            if let crash {
                throw WorkerFailure(worker: "local worker \(pid)", reason: "crashed (\(crash)); its log ends:\n" + local.logTail(of: pid))
            }
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
        relayLost(worker)
    }

    /// Tells every worker to stop and waits briefly for local ones to exit.
    package func shutdown(reason: String) {
        // Dead ones too: a worker taken for dead may only have been paused, and would otherwise
        // wait for its own timeout.
        for worker in workers.values {
            do { try send(to: worker.identity, .shutdown, step: 0, body: ShutdownMessage(reason: reason, refused: false).encode()) } catch {
                logger.debug("no SHUTDOWN for worker \(worker.id): \(error)")
            }
        }
        localProcesses?.waitForExit(timeout: 5)
        waitUntilWorkersLeave(timeout: 2)
        close()
    }

    /// A worker reads its SHUTDOWN only if the connection outlives it: with ZMQ_IMMEDIATE,
    /// libzmq discards what a closed connection left unread, and the worker would wait for its
    /// own timeout. Each worker leaves once it has read it; a send to it then fails
    /// (EHOSTUNREACH, as the socket is ROUTER_MANDATORY).
    func waitUntilWorkersLeave(timeout: Double) {
        let deadline = Date().addingTimeInterval(timeout)
        var staying = liveWorkers
        while !staying.isEmpty && Date() < deadline {
            usleep(10_000)
            staying = staying.filter { (try? send(to: $0.identity, .heartbeat, step: 0, body: [])) != nil }
        }
    }
}
