@testable import CohortCluster
@testable import CohortExperiment
import CohortTestSupport
import Foundation
import Testing
@testable import ZeroMQ

/// Whole runs of `cohort train` with real worker processes.
@Suite(.serialized) struct ClusterRunTests {
    /// The same weights, bit for bit, from 1, 2 or 4 workers (one BLAS thread each).
    @Test func mnistMLPIsBitwiseIdenticalFor1And2And4Workers() throws {
        let dir = temporaryDirectory()
        var weights: [[String: Data]] = []
        // 1, 2 and 4 workers through shared memory, and 2 through message frames only.
        for (workers, shm) in [(1, true), (2, true), (4, true), (2, false)] {
            let run = dir.appendingPathComponent("w\(workers)-\(shm)").path
            let result = try runCohort(["train", "configs/mnist-mlp.yaml", "--workers", "\(workers)", "--run-dir", run, "--quiet",
                                        "--set", "training.steps=30", "--set", "cluster.threads_per_worker=1",
                                        "--set", "cluster.shared_memory=\(shm)"])
            #expect(result.status == 0, "\(result.stderr)")
            weights.append(try tensorBytes("\(run)/final.safetensors"))
            let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(run)/summary.json"))) as! [String: Any]
            #expect((summary["workers"] as! [Any]).count == workers)
            // The last step record (evaluation records follow it).
            let steps = try metricsRecords(run).filter { $0["workers"] != nil }
            let metrics = try #require(steps.last)
            #expect((metrics["workers"] as? [Any])?.count == workers)
            // Through shared memory, TASKs and RESULTs go by the mailboxes: in most steps not a
            // byte crosses the socket (a heartbeat now and then). Without it, every step does.
            let received = steps.map { $0["bytes_received"] as? Int ?? 0 }.sorted()
            #expect(shm ? received[received.count / 2] == 0 : received[0] > 0, "bytes received per step: \(received)")
        }
        #expect(weights[0].count == 4)
        #expect(weights[0] == weights[1] && weights[0] == weights[2] && weights[0] == weights[3])
    }

    /// The default threads: one worker on this machine's cores, or several sharing them. Each
    /// worker's threads compute whole micro-batches with one BLAS thread, so the bytes agree.
    @Test func defaultThreadsGiveTheSameWeightsFor1And2And3Workers() throws {
        let dir = temporaryDirectory()
        var weights: [[String: Data]] = []
        for workers in [1, 2, 3] {
            let run = dir.appendingPathComponent("w\(workers)").path
            let result = try runCohort(["train", "configs/mnist-mlp.yaml", "--workers", "\(workers)", "--run-dir", run, "--quiet",
                                        "--set", "training.steps=20", "--set", "evaluation.at_end=false"])
            #expect(result.status == 0, "\(result.stderr)")
            weights.append(try tensorBytes("\(run)/final.safetensors"))
        }
        #expect(weights[0].count == 4 && weights[0] == weights[1] && weights[0] == weights[2])
    }

    /// The same for the lecture's LeNet: convolution, pooling and all, across processes.
    @Test func leNetIsBitwiseIdenticalFor1And2Workers() throws {
        let dir = temporaryDirectory()
        var weights: [[String: Data]] = []
        for workers in [1, 2] {
            let run = dir.appendingPathComponent("w\(workers)").path
            let result = try runCohort(["train", "configs/mnist-lenet.yaml", "--workers", "\(workers)", "--run-dir", run, "--quiet",
                                        "--set", "training.steps=6", "--set", "training.batch_size=32", "--set", "cluster.threads_per_worker=1",
                                        "--set", "evaluation.at_end=false"])
            #expect(result.status == 0, "\(result.stderr)")
            weights.append(try tensorBytes("\(run)/final.safetensors"))
        }
        #expect(weights[0].count == 8 && weights[0] == weights[1])
    }

    /// A worker killed with SIGKILL mid-run: its micro-batches go to the survivor and the final
    /// weights are those of an uninterrupted run. The survivor has no dataset, so it also
    /// exercises tasks that carry the samples themselves.
    @Test func aWorkerKilledMidRunChangesNothing() throws {
        let dir = temporaryDirectory()
        let settings = ["--set", "training.steps=120", "--set", "cluster.threads_per_worker=1", "--set", "cluster.heartbeat_timeout=1"]
        let reference = dir.appendingPathComponent("reference").path
        try runReference(reference, settings)

        let run = dir.appendingPathComponent("killed").path
        let (coordinator, endpoint) = try startExternalRun(dir, run: run, settings: settings)
        let victim = try startCohort(["worker", "--connect", endpoint, "--config", "configs/mnist-mlp.yaml", "--timeout", "20"],
                                     log: dir.appendingPathComponent("victim.log"))
        let survivor = try startCohort(["worker", "--connect", endpoint, "--timeout", "20"], log: dir.appendingPathComponent("survivor.log"))
        // Kill the victim once training is under way.
        let stepsAtKill = waitForSteps(run, 10)
        kill(victim.processIdentifier, SIGKILL)
        coordinator.waitUntilExit()
        survivor.waitUntilExit()
        victim.waitUntilExit()
        let log = (try? String(contentsOf: dir.appendingPathComponent("coordinator.log"), encoding: .utf8)) ?? ""
        #expect(coordinator.terminationStatus == 0, "\(log)")
        #expect(stepsAtKill >= 10 && stepsAtKill < 120, "the kill did not land mid-run (at step \(stepsAtKill))")
        #expect(log.contains("warning: worker") && log.contains("is dead"), "\(log)")
        #expect(try tensorBytes("\(run)/final.safetensors") == tensorBytes("\(reference)/final.safetensors"))
        let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(run)/summary.json"))) as! [String: Any]
        let workers = summary["workers"] as! [[String: Any]]
        #expect(workers.filter { $0["alive_at_end"] as? Bool == false }.count == 1)
        #expect(workers.contains { $0["samples_sent_with_tasks"] as? Bool == true })
    }

    /// A worker that joins mid-run gets work from the next step on, and the weights are those of
    /// a run with one worker throughout (cluster.min_workers=1 starts training without it).
    @Test func aWorkerJoiningMidRunGetsWorkFromTheNextStep() throws {
        let dir = temporaryDirectory()
        let settings = ["--set", "training.steps=300", "--set", "cluster.threads_per_worker=1", "--set", "cluster.min_workers=1"]
        let reference = dir.appendingPathComponent("reference").path
        try runReference(reference, settings)
        let run = dir.appendingPathComponent("joined").path
        let (coordinator, endpoint) = try startExternalRun(dir, run: run, settings: settings)
        let first = try startCohort(["worker", "--connect", endpoint, "--config", "configs/mnist-mlp.yaml", "--timeout", "20"],
                                    log: dir.appendingPathComponent("first.log"))
        let stepsAtJoin = waitForSteps(run, 20)
        let second = try startCohort(["worker", "--connect", endpoint, "--timeout", "20"], log: dir.appendingPathComponent("second.log"))
        coordinator.waitUntilExit()
        first.waitUntilExit()
        second.waitUntilExit()
        let log = (try? String(contentsOf: dir.appendingPathComponent("coordinator.log"), encoding: .utf8)) ?? ""
        #expect(coordinator.terminationStatus == 0, "\(log)")
        let steps = try metricsRecords(run)
        let live = steps.map { $0["live_workers"] as? Int ?? 0 }
        let joined = try #require(live.firstIndex(of: 2), "the second worker never counted as live")
        #expect(joined >= stepsAtJoin - 1 && joined < 299, "joined at step \(joined + 1), started after step \(stepsAtJoin)")
        let next = steps[joined + 1]["workers"] as? [[String: Any]] ?? []
        #expect(next.contains { $0["id"] as? Int == 2 && ($0["compute_s"] as? Double ?? 0) > 0 }, "step \(joined + 2): \(next)")
        #expect(try tensorBytes("\(run)/final.safetensors") == tensorBytes("\(reference)/final.safetensors"))
    }

    /// A worker paused (SIGSTOP) past the heartbeat timeout is declared dead, its work moves on,
    /// and when it wakes up it is taken back; the weights are still those of an undisturbed run.
    @Test func aPausedWorkerIsTakenBack() throws {
        let dir = temporaryDirectory()
        let settings = ["--set", "training.steps=400", "--set", "cluster.threads_per_worker=1", "--set", "cluster.heartbeat_timeout=1",
                        "--set", "evaluation.at_end=false"]
        let reference = dir.appendingPathComponent("reference").path
        try runReference(reference, settings)
        let run = dir.appendingPathComponent("paused").path
        let (coordinator, endpoint) = try startExternalRun(dir, run: run, settings: settings)
        let sleeper = try startCohort(["worker", "--connect", endpoint, "--config", "configs/mnist-mlp.yaml", "--timeout", "30"],
                                      log: dir.appendingPathComponent("sleeper.log"))
        let other = try startCohort(["worker", "--connect", endpoint, "--config", "configs/mnist-mlp.yaml", "--timeout", "30"],
                                    log: dir.appendingPathComponent("other.log"))
        _ = waitForSteps(run, 10)
        kill(sleeper.processIdentifier, SIGSTOP)
        usleep(2_000_000)
        kill(sleeper.processIdentifier, SIGCONT)
        let resumedAt = ((try? String(contentsOfFile: "\(run)/metrics.jsonl", encoding: .utf8)) ?? "").split(separator: "\n").count
        coordinator.waitUntilExit(); sleeper.waitUntilExit(); other.waitUntilExit()
        let log = (try? String(contentsOf: dir.appendingPathComponent("coordinator.log"), encoding: .utf8)) ?? ""
        #expect(coordinator.terminationStatus == 0, "\(log)")
        #expect(resumedAt < 400, "the run ended before the paused worker woke up")
        #expect(log.contains("is dead") && log.contains("is back"), "\(log)")
        #expect(try tensorBytes("\(run)/final.safetensors") == tensorBytes("\(reference)/final.safetensors"))
    }

    /// The coordinator killed with SIGKILL mid-run; `--resume` continues from the newest valid
    /// checkpoint (a damaged newer one and a half-written temp file are passed over) and the final
    /// weights are byte-identical to an uninterrupted run.
    @Test func resumeAfterTheCoordinatorIsKilledIsBitwiseIdentical() throws {
        let dir = temporaryDirectory()
        let settings = ["--set", "training.steps=160", "--set", "checkpoint.every_steps=40", "--set", "checkpoint.keep_last=2",
                        "--set", "cluster.threads_per_worker=1", "--set", "evaluation.at_end=false",
                        "--set", "optimizer.name=adam", "--set", "optimizer.lr=0.001",
                        "--set", "optimizer.nesterov=null", "--set", "optimizer.momentum=null"]
        let reference = dir.appendingPathComponent("reference").path
        #expect(try runCohort(["train", "configs/mnist-mlp.yaml", "--workers", "2", "--run-dir", reference, "--quiet"] + settings).status == 0)

        let run = dir.appendingPathComponent("crashed").path
        let coordinator = try startCohort(["train", "configs/mnist-mlp.yaml", "--workers", "2", "--run-dir", run] + settings,
                                          log: dir.appendingPathComponent("first.log"))
        let stepsAtKill = waitForSteps(run, 125)
        kill(coordinator.processIdentifier, SIGKILL)
        coordinator.waitUntilExit()
        let orphanPrefix = "cohort-\(coordinator.processIdentifier)-"
        func orphans() -> [String] { ((try? FileManager.default.contentsOfDirectory(atPath: "/dev/shm")) ?? []).filter { $0.hasPrefix(orphanPrefix) } }
        let hasShm = FileManager.default.fileExists(atPath: "/dev/shm")
        #expect(!hasShm || !orphans().isEmpty, "a killed coordinator leaves its shared memory behind")
        #expect(stepsAtKill >= 125 && stepsAtKill < 160, "the kill did not land mid-run (step \(stepsAtKill))")
        let checkpoints = "\(run)/checkpoints"
        let kept = try FileManager.default.contentsOfDirectory(atPath: checkpoints).sorted()
        #expect(kept == ["step-120.safetensors", "step-80.safetensors"], "keep_last 2: \(kept)")
        // What a crash in the middle of writing step 160 would leave: a partial temp file, and
        // (were the rename not atomic) a damaged newest file. Both must be passed over.
        let good = try Data(contentsOf: URL(fileURLWithPath: "\(checkpoints)/step-120.safetensors"))
        try good.prefix(good.count / 2).write(to: URL(fileURLWithPath: "\(checkpoints)/.step-160.safetensors.tmp-999"))
        try good.prefix(good.count - 100).write(to: URL(fileURLWithPath: "\(checkpoints)/step-150.safetensors"))

        let metadata = try Safetensors.read(path: "\(checkpoints)/step-120.safetensors")
        #expect(metadata.metadata["step"] == "120" && metadata.metadata["config_hash"]?.count == 64)
        #expect(metadata.entries.map(\.name).contains("optimizer.0.weight.exp_avg_sq"))

        let refused = try runCohort(["train", "--resume", run, "--set", "optimizer.lr=0.5"])
        #expect(refused.status == 2 && refused.stderr.contains("another config"))
        let resumed = try runCohort(["train", "--resume", run])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(orphans().isEmpty, "the next coordinator removes the dead one's shared memory")
        #expect(resumed.stdout.contains("resuming at step 120") && resumed.stderr.contains("skipping a damaged checkpoint"))
        #expect(try tensorBytes("\(run)/final.safetensors") == tensorBytes("\(reference)/final.safetensors"))
        let lines = try String(contentsOfFile: "\(run)/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        let steps = lines.compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["step"] as? Int }
        #expect(steps == Array(1...160), "metrics.jsonl holds each step once")
    }

    /// A worker of another protocol version is refused with a reason; garbage is dropped and
    /// counted; neither disturbs the run.
    @Test func wrongVersionIsRefusedAndGarbageIsDropped() throws {
        let dir = temporaryDirectory()
        let run = dir.appendingPathComponent("run").path
        let endpoint = "ipc://\(dir.path)/coordinator.ipc"
        let coordinator = try startCohort(["train", "configs/xor.yaml", "--workers", "1", "--bind", endpoint, "--run-dir", run,
                                           "--set", "cluster.min_workers=2", "--set", "training.steps=50"],
                                          log: dir.appendingPathComponent("coordinator.log"))
        let context = try ZMQContext()
        let impostor = try ZMQSocket(context, .dealer)
        try impostor.connect(endpoint)
        try impostor.send([.bytes([1, 2, 3])])
        try impostor.send([.bytes(Array("not a cohort message".utf8)), .bytes([])])
        var header = Header(kind: .hello, runID: 0, step: 0)
        let body = Hello(threads: 1, host: "old", pid: 1, fingerprints: []).encode()
        header.version = 99
        header.bodyLength = UInt32(body.count)
        try impostor.send([.bytes(header.encode()), .bytes(body)])
        let reply = try #require(try impostor.receive(timeout: 30), "no answer to a hello of version 99")
        let message = try Message.parse(reply[...])
        let shutdown = try ShutdownMessage.decode(message)
        #expect(message.header.kind == .shutdown && shutdown.refused && shutdown.reason.contains("version 99"))
        impostor.close()

        let worker = try runCohort(["worker", "--connect", endpoint, "--timeout", "20"])
        coordinator.waitUntilExit()
        let log = (try? String(contentsOf: dir.appendingPathComponent("coordinator.log"), encoding: .utf8)) ?? ""
        #expect(worker.status == 0 && coordinator.terminationStatus == 0, "\(log)\n\(worker.stderr)")
        #expect(log.contains("refused a worker: protocol version 99"))
        let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(run)/summary.json"))) as! [String: Any]
        #expect((summary["dropped_messages"] as! Int) >= 2)
    }

    /// Three network namespaces joined by veth links: coordinator and two workers talk tcp
    /// across them with CURVE. A namespace stands for another machine, so weights and gradients
    /// cross the links as frames (not /dev/shm): every step's bytes on the coordinator's side are
    /// at least the model's size for each worker, and the weights are those of a local ipc run.
    /// Needs root and iproute2; skipped elsewhere with the reason printed.
    @Test func trainingAcrossNetworkNamespaces() throws {
        let dir = temporaryDirectory()
        let run = dir.appendingPathComponent("run").path
        let settings = ["--quiet", "--set", "training.epochs=2"]
        let process = Process()
        process.executableURL = packageRoot.appendingPathComponent("cluster/netns-demo.sh")
        process.arguments = ["configs/quickstart.yaml", run] + settings
        process.currentDirectoryURL = packageRoot
        try process.run()
        process.waitUntilExit()
        if process.terminationStatus == 3 {
            print("skipped trainingAcrossNetworkNamespaces: network namespaces are not available here (needs root and iproute2)")
            return
        }
        #expect(process.terminationStatus == 0)
        let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(run)/summary.json"))) as! [String: Any]
        #expect((summary["workers"] as! [Any]).count == 2 && summary["steps"] as? Int == 64)
        // quickstart: 2-64-64-2, 4,482 fp32 parameters.
        let modelBytes = 4_482 * 4
        let steps = try metricsRecords(run)
        #expect(steps.count == 64)
        for step in steps {
            // The first step's weights went out with WELCOME; later ones go out with the tasks.
            let sent = step["bytes_sent"] as? Int ?? 0, received = step["bytes_received"] as? Int ?? 0
            let first = step["step"] as? Int == 1
            #expect((first || sent >= 2 * modelBytes) && received >= 2 * modelBytes, "step \(step["step"] ?? "?"): \(sent) bytes sent, \(received) received")
        }
        let local = dir.appendingPathComponent("local").path
        #expect(try runCohort(["train", "configs/quickstart.yaml", "--workers", "2", "--run-dir", local] + settings).status == 0)
        #expect(try tensorBytes("\(run)/final.safetensors") == tensorBytes("\(local)/final.safetensors"))
    }

    @Test func launcherReadsHostsFiles() throws {
        let dir = temporaryDirectory()
        let hosts = dir.appendingPathComponent("hosts")
        try "# lab machines\nnode1:2\nnode2\n\nnode3:1  # spare\n".write(to: hosts, atomically: true, encoding: .utf8)
        let out = Pipe()
        let process = Process()
        process.executableURL = packageRoot.appendingPathComponent("cluster/launch.sh")
        process.arguments = [hosts.path, "tcp://10.0.0.5:5555", "--threads", "2", "--server-key", "k/c.key",
                             "--secret-key", "k/w.key_secret", "--dry-run"]
        process.standardOutput = out
        try process.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        let lines = text.split(separator: "\n")
        #expect(process.terminationStatus == 0 && lines.count == 4)
        #expect(lines.filter { $0.hasPrefix("ssh node1 ") }.count == 2 && lines.contains { $0.hasPrefix("ssh node3 ") })
        #expect(lines.allSatisfy { $0.contains("worker --connect tcp://10.0.0.5:5555 --threads 2 --server-key k/c.key --secret-key k/w.key_secret") })
        try "node1:zero\n".write(to: hosts, atomically: true, encoding: .utf8)
        let bad = Process()
        bad.executableURL = process.executableURL
        bad.arguments = [hosts.path, "tcp://x:1", "--dry-run"]
        bad.standardError = FileHandle.nullDevice
        try bad.run()
        bad.waitUntilExit()
        #expect(bad.terminationStatus == 2)
    }
}

/// Starts a coordinator waiting for two external workers on a private ipc endpoint.
func startExternalRun(_ dir: URL, run: String, settings: [String]) throws -> (coordinator: Process, endpoint: String) {
    let endpoint = "ipc://\(dir.path)/coordinator.ipc"
    let coordinator = try startCohort(["train", "configs/mnist-mlp.yaml", "--workers", "0", "--bind", endpoint,
                                       "--run-dir", run, "--set", "cluster.min_workers=2"] + settings,
                                      log: dir.appendingPathComponent("coordinator.log"))
    return (coordinator, endpoint)
}

/// The undisturbed run a test compares with: mnist-mlp with one local worker and `settings`.
func runReference(_ run: String, _ settings: [String]) throws {
    let result = try runCohort(["train", "configs/mnist-mlp.yaml", "--workers", "1", "--run-dir", run, "--quiet"] + settings)
    #expect(result.status == 0, "\(result.stderr)")
}

/// Waits until metrics.jsonl has `steps` lines (or a minute passes); returns the count seen.
func waitForSteps(_ run: String, _ steps: Int) -> Int {
    let deadline = Date().addingTimeInterval(60)
    var seen = 0
    while Date() < deadline {
        seen = ((try? String(contentsOfFile: "\(run)/metrics.jsonl", encoding: .utf8)) ?? "").split(separator: "\n").count
        if seen >= steps { break }
        usleep(2_000)
    }
    return seen
}
