@testable import CohortCluster
@testable import CohortExperiment
import CohortTestSupport
import Foundation
import Testing
import ZeroMQ

/// What a peer, a diverging run or a careless launch may do to a run: each ends in a clear
/// message or in the bytes of an undisturbed run, never in a trap, a stall or poisoned weights.
@Suite(.serialized) struct HardeningTests {
    static let steps = ["--set", "training.steps=30", "--set", "evaluation.at_end=false", "--set", "cluster.heartbeat_timeout=2",
                        "--set", "cluster.task_timeout=1"]

    /// A reference run with one local worker, and the same run joined by a misbehaving fake.
    func runWith(_ mode: FakeWorker.Mode) throws -> (reference: [String: Data], run: [String: Data], log: String, seconds: Double, fake: FakeWorker) {
        let dir = temporaryDirectory()
        let reference = dir.appendingPathComponent("reference").path
        try runReference(reference, Self.steps)
        let run = dir.appendingPathComponent("run").path
        let endpoint = "ipc://\(dir.path)/coordinator.ipc"
        let start = Date()
        let coordinator = try startCohort(["train", "configs/mnist-mlp.yaml", "--workers", "1", "--bind", endpoint, "--run-dir", run,
                                           "--set", "cluster.min_workers=2"] + Self.steps, log: dir.appendingPathComponent("log"))
        let fake = FakeWorker(endpoint: endpoint, mode: mode)
        fake.start()
        coordinator.waitUntilExit()
        let seconds = Date().timeIntervalSince(start)
        fake.wait(seconds: 5)
        let log = (try? String(contentsOf: dir.appendingPathComponent("log"), encoding: .utf8)) ?? ""
        #expect(coordinator.terminationStatus == 0, "\(log)")
        return (try tensorBytes("\(reference)/final.safetensors"), try tensorBytes("\(run)/final.safetensors"), log, seconds, fake)
    }

    /// A worker answering with NaN gradients: the step is computed again, the bad block is
    /// computed by the coordinator, the worker is dropped, and the weights are unchanged.
    @Test func aWorkerSendingNaNIsCaughtAndDropped() throws {
        let (reference, run, log, _, fake) = try runWith(.nan)
        #expect(fake.tasksSeen >= 1)
        #expect(run == reference, "\(log)")
        #expect(log.contains("not finite") && log.contains("is dead"), "\(log)")
    }

    /// A worker that keeps its heartbeats but never answers: its task goes to another worker
    /// at the deadline (here the floor, 1 s), not after a 45 s wait.
    @Test func aStalledWorkerMissesItsDeadline() throws {
        let (reference, run, log, seconds, fake) = try runWith(.silent)
        #expect(fake.tasksSeen >= 1)
        #expect(run == reference)
        #expect(log.contains("did not answer its task"), "\(log)")
        #expect(seconds < 20, "the run took \(seconds) s")
    }

    /// A worker answering with blocks it was not asked for: reassigned at once.
    @Test func aWrongRangeIsReassignedAtOnce() throws {
        let (reference, run, log, seconds, _) = try runWith(.wrongRange)
        #expect(run == reference)
        #expect(log.contains("could not be used"), "\(log)")
        #expect(seconds < 20)
    }

    /// A loss that becomes infinite: the run stops (exit 1) naming the step, and keeps its
    /// finite checkpoints; with on_nonfinite: skip the bad steps are dropped and the run ends.
    @Test func divergenceStopsOrSkips() throws {
        let dir = temporaryDirectory()
        let diverging = """
        name: diverge
        data: {name: inline, x: [[1, 2], [3, 4], [5, 6], [7, 8]], y: [[1], [2], [3], [4]]}
        model: {input: 2, layers: [{linear: {out: 8}}, {linear: {out: 1}}]}
        training: {loss: mse, batch_size: 4, steps: 200}
        optimizer: {lr: 1.0}
        checkpoint: {every_steps: 1, keep_last: 2}
        """
        let config = dir.appendingPathComponent("diverge.yaml")
        try diverging.write(to: config, atomically: true, encoding: .utf8)
        let run = dir.appendingPathComponent("run").path
        let stopped = try runCohort(["train", config.path, "--workers", "1", "--run-dir", run, "--quiet"])
        #expect(stopped.status == 1 && stopped.stderr.contains("diverged at step"), "\(stopped.stderr)")
        let kept = try FileManager.default.contentsOfDirectory(atPath: "\(run)/checkpoints").filter { $0.hasSuffix(".safetensors") }
        #expect(!kept.isEmpty, "rotation deleted every finite checkpoint")
        for name in kept {
            let entries = try Safetensors.read(path: "\(run)/checkpoints/\(name)").entries
            #expect(entries.allSatisfy { $0.tensor.scalars.allSatisfy(\.isFinite) }, "\(name)")
        }
        #expect(!FileManager.default.fileExists(atPath: "\(run)/final.safetensors"))
        // One sample so large that any step holding it overflows: skip those steps, keep going.
        let spiky = diverging.replacingOccurrences(of: "[[1, 2], [3, 4], [5, 6], [7, 8]]", with: "[[1, 2], [3, 4], [5, 6], [1e30, 1e30]]")
            .replacingOccurrences(of: "batch_size: 4, steps: 200", with: "batch_size: 1, steps: 40, on_nonfinite: skip")
            .replacingOccurrences(of: "lr: 1.0", with: "lr: 0.001")
        try spiky.write(to: config, atomically: true, encoding: .utf8)
        let skipping = dir.appendingPathComponent("skipping").path
        let skipped = try runCohort(["train", config.path, "--workers", "1", "--run-dir", skipping, "--quiet"])
        #expect(skipped.status == 0, "\(skipped.stderr)")
        let lines = try String(contentsOfFile: "\(skipping)/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        let skips = lines.filter { $0.contains("\"skipped\":true") }.count
        #expect(skips >= 3 && skips < 40, "\(skips) steps skipped")
        let weights = try Safetensors.read(path: "\(skipping)/final.safetensors").entries
        #expect(weights.allSatisfy { $0.tensor.scalars.allSatisfy(\.isFinite) })
    }

    /// Bad data stops the run before any worker starts, naming the file and the sample.
    @Test func dataErrorsAreFoundBeforeTheWorkersStart() throws {
        let dir = temporaryDirectory()
        let five = dir.appendingPathComponent("five.yaml")
        try String(contentsOf: packageRoot.appendingPathComponent("configs/mnist-mlp.yaml"), encoding: .utf8)
            .replacingOccurrences(of: "linear: {out: 10}", with: "linear: {out: 5}").write(to: five, atomically: true, encoding: .utf8)
        let fewOutputs = try runCohort(["train", five.path, "--run-dir", dir.appendingPathComponent("a").path])
        #expect(fewOutputs.status == 2 && fewOutputs.stderr.contains("train-labels-idx1-ubyte") && fewOutputs.stderr.contains("sample"),
                "\(fewOutputs.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("a").path))
        let cases: [(String, String)] = [
            ("data: {name: inline, x: [[0, 0], [1, 1]], y: [0, 1]}\nmodel: {input: 2, layers: [{linear: {out: 3}}]}\ntraining: {loss: bce_with_logits, batch_size: 2}",
             "3 target value(s)"),
            ("data: {name: inline, x: [[0, 0], [1, 1]], y: [0, 7]}\nmodel: {input: 2, layers: [{linear: {out: 2}}]}\ntraining: {loss: cross_entropy, batch_size: 2}",
             "sample 1: label 7"),
            ("data: {name: inline, x: [[1, 2], [3, 9]], y: [0, 1]}\nmodel: {input: 2, layers: [{embedding: {count: 5, dim: 3}}, flatten, {linear: {out: 2}}]}\ntraining: {loss: cross_entropy, batch_size: 2}",
             "sample 1: token id 9"),
        ]
        for (i, (text, expected)) in cases.enumerated() {
            let config = dir.appendingPathComponent("c\(i).yaml")
            try (text + "\noptimizer: {lr: 0.1}\n").write(to: config, atomically: true, encoding: .utf8)
            let result = try runCohort(["train", config.path, "--run-dir", dir.appendingPathComponent("r\(i)").path])
            #expect(result.status == 2 && result.stderr.contains(config.path) && result.stderr.contains(expected), "\(result.stderr)")
        }
        // A local worker that traps anyway (a failed precondition: SIGILL) stops the run with
        // what it said last, at once (exit 1), instead of losing worker after worker.
        // (Swift's backtracer would catch a SIGILL sent from outside and carry on; without it the
        // signal ends the worker as a real trap does.)
        let run = dir.appendingPathComponent("trap").path
        let coordinator = Process()
        coordinator.executableURL = try cohortExecutable()
        coordinator.arguments = ["train", "configs/mnist-mlp.yaml", "--workers", "2", "--run-dir", run, "--set", "training.steps=5000"]
        coordinator.currentDirectoryURL = packageRoot
        coordinator.environment = childEnvironment.merging(["SWIFT_BACKTRACE": "enable=no"]) { $1 }
        let logFile = dir.appendingPathComponent("trap.log")
        _ = FileManager.default.createFile(atPath: logFile.path, contents: nil)
        coordinator.standardOutput = try FileHandle(forWritingTo: logFile)
        coordinator.standardError = coordinator.standardOutput
        try coordinator.run()
        _ = waitForSteps(run, 20)
        let victim = try #require(workerProcesses(of: run).first)
        kill(victim, SIGILL)
        let start = Date()
        coordinator.waitUntilExit()
        let log = (try? String(contentsOf: dir.appendingPathComponent("trap.log"), encoding: .utf8)) ?? ""
        #expect(coordinator.terminationStatus == 1 && log.contains("crashed (signal 4)") && log.contains("worker-"), "\(log)")
        #expect(Date().timeIntervalSince(start) < 10)
    }

    /// Random and mutated frames sent at a coordinator during a real run: dropped and counted,
    /// never trusted; the run ends with the bytes of an undisturbed one.
    @Test func fuzzedFramesChangeNothing() throws {
        let dir = temporaryDirectory()
        let settings = ["--set", "training.steps=150", "--set", "evaluation.at_end=false", "--set", "cluster.task_timeout=1"]
        let reference = dir.appendingPathComponent("reference").path
        try runReference(reference, settings)
        let run = dir.appendingPathComponent("run").path
        let endpoint = "ipc://\(dir.path)/c.ipc"
        let coordinator = try startCohort(["train", "configs/mnist-mlp.yaml", "--workers", "1", "--bind", endpoint, "--run-dir", run] + settings,
                                          log: dir.appendingPathComponent("log"))
        _ = waitForSteps(run, 2)
        let context = try ZMQContext()
        var rng = SplitMix(state: 4)
        let hello = Message.frames(kind: .hello, runID: 0, step: 0, body: Hello(threads: 1, host: "fuzz", pid: 1, fingerprints: []).encode())
        let result = Message.frames(kind: .result, runID: 7, step: 3,
                                    body: ResultMessage(taskID: 5, blocks: [.init(range: 0..<2, lossSum: 1, samples: 2, correct: 1)], computeSeconds: 0).encode())
        func bytes(_ frame: OutgoingFrame) -> [UInt8] { if case .bytes(let b) = frame { return b }; return [] }
        for peerIndex in 0..<6 {
            // Several peers: each may be taken as a worker after a good-looking HELLO.
            let peer = try ZMQSocket(context, .dealer)
            try peer.connect(endpoint)
            for i in 0..<400 {
                let template = [hello, result][(peerIndex + i) % 2].map(bytes)
                var frames = template.map { mutate($0, using: &rng) }
                if i % 7 == 0 { frames = [Array((0..<Int.random(in: 0..<64, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) })] }
                if i % 11 == 0 { frames.append(contentsOf: frames) }
                try peer.send(frames.map { .bytes($0) })
            }
            peer.close()
        }
        coordinator.waitUntilExit()
        let log = (try? String(contentsOf: dir.appendingPathComponent("log"), encoding: .utf8)) ?? ""
        #expect(coordinator.terminationStatus == 0, "\(log)")
        #expect(try tensorBytes("\(run)/final.safetensors") == tensorBytes("\(reference)/final.safetensors"))
    }

    /// The private ipc directory is the user's alone (0700), and sockets of dead coordinators go.
    @Test func ipcSocketsLiveInAPrivateDirectory() throws {
        let base = temporaryDirectory().path
        let first = try Endpoints.privateIPC(base: base)
        let directory = URL(fileURLWithPath: String(first.dropFirst(6))).deletingLastPathComponent().path
        let mode = try FileManager.default.attributesOfItem(atPath: directory)[.posixPermissions] as? Int
        #expect(mode == 0o700)
        let stale = "\(directory)/2147483000-1.ipc"   // beyond any pid
        FileManager.default.createFile(atPath: stale, contents: nil)
        _ = try Endpoints.privateIPC(base: base)
        #expect(!FileManager.default.fileExists(atPath: stale))
    }

    /// A coordinator on plain tcp takes only workers with the run's token; max_workers refuses
    /// the rest; garbage is counted but logged only now and then.
    @Test func tokensCapsAndQuietDrops() throws {
        let dir = temporaryDirectory()
        let run = dir.appendingPathComponent("run").path
        let port = 30000 + Int(getpid() % 20000)
        let endpoint = "tcp://127.0.0.1:\(port)"
        let coordinator = try startCohort(["train", "configs/xor.yaml", "--workers", "1", "--bind", endpoint, "--run-dir", run,
                                           "--set", "cluster.min_workers=2", "--set", "cluster.max_workers=2", "--set", "training.steps=300"],
                                          log: dir.appendingPathComponent("log"))
        let stranger = try runCohort(["worker", "--connect", endpoint, "--timeout", "20"])
        #expect(stranger.status == 2 && stranger.stderr.contains("token"), "\(stranger.stderr)")
        // Garbage while the run waits: counted, logged sparingly.
        let context = try ZMQContext()
        let peer = try ZMQSocket(context, .dealer)
        try peer.connect(endpoint)
        for i in 0..<2000 { try peer.send([.bytes([UInt8(i % 256), 1, 2, 3])]) }
        _ = waitForFile("\(run)/workers/token")
        let friend = try startCohort(["worker", "--connect", endpoint, "--token-file", "\(run)/workers/token", "--timeout", "20"],
                                     log: dir.appendingPathComponent("friend.log"))
        _ = waitForSteps(run, 5)
        let third = try runCohort(["worker", "--connect", endpoint, "--token-file", "\(run)/workers/token", "--timeout", "20"])
        #expect(third.status == 2 && third.stderr.contains("max_workers"), "\(third.stderr)")
        coordinator.waitUntilExit(); friend.waitUntilExit()
        peer.close()
        let log = (try? String(contentsOf: dir.appendingPathComponent("log"), encoding: .utf8)) ?? ""
        #expect(coordinator.terminationStatus == 0 && friend.terminationStatus == 0, "\(log)")
        let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(run)/summary.json"))) as! [String: Any]
        #expect((summary["dropped_messages"] as? Int ?? 0) >= 2000)
        #expect(log.split(separator: "\n").filter { $0.contains("dropped") }.count < 20, "\(log)")
        let mode = try FileManager.default.attributesOfItem(atPath: "\(run)/workers/token")[.posixPermissions] as? Int
        #expect(mode == 0o600)
    }
}

/// Waits until a file exists (or 30 s pass).
func waitForFile(_ path: String) -> Bool {
    let deadline = Date().addingTimeInterval(30)
    while !FileManager.default.fileExists(atPath: path) && Date() < deadline { usleep(10_000) }
    return FileManager.default.fileExists(atPath: path)
}
