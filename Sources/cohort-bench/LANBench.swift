import Foundation

// MARK: the LAN table: Cohort and PyTorch DDP on hosts joined by 1 Gbit/s links

/// N simulated hosts made by bench/lan.sh: network namespaces on one bridge, each host's link
/// limited to 1 Gbit/s in both directions. Host 1 (10.79.0.1) runs the coordinator.
struct SimulatedLAN {
    let name: String
    let hosts: Int

    static let script = "bench/lan.sh"

    /// Brings the hosts up; nil (with the reason) where namespaces cannot be made here.
    static func up(hosts: Int) throws -> SimulatedLAN? {
        let lan = SimulatedLAN(name: "cb\(getpid() % 100_000)", hosts: hosts)
        let status = try runTool("/bin/bash", [script, "up", lan.name, "\(hosts)"])
        if status == 3 { return nil }
        guard status == 0 else { throw BenchError("\(script) up failed (exit \(status))") }
        return lan
    }

    func down() { _ = try? runTool("/bin/bash", [Self.script, "down", name]) }

    func host(_ i: Int) -> String { "\(name)-h\(i)" }

    /// Bytes host `i` sent and received on its link so far (the kernel's counters).
    func linkBytes(_ i: Int) throws -> (sent: Int, received: Int) {
        let output = try toolOutput("/usr/bin/env", ["ip", "-n", host(i), "-s", "-j", "link", "show", "eth0"])
        guard let links = try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [[String: Any]],
              let stats = links.first?["stats64"] as? [String: Any],
              let tx = (stats["tx"] as? [String: Any])?["bytes"] as? Int, let rx = (stats["rx"] as? [String: Any])?["bytes"] as? Int
        else { throw BenchError("cannot read the link counters of \(host(i))") }
        return (tx, rx)
    }

    /// `command` run on host `i`.
    func onHost(_ i: Int, _ command: [String]) -> [String] { ["netns", "exec", host(i)] + command }
}

/// One LAN run's figures: steady samples/s (from the median step), the coordinator link's bytes
/// per step in each direction, and, for Cohort, where the step's time goes.
struct LANFigures {
    var samplesPerSecond: Double
    var linkSentPerStep: Double
    var linkReceivedPerStep: Double
    var split: [String: Double] = [:]
}

/// The model settings of the table: the MLP at global batch 512, LeNet at 256, in 8 micro-batches
/// (so that 4 hosts all have work and the sums are the same for every N).
struct LANModel {
    let name: String
    let config: String
    let batch: Int
    let steps: Int
    /// Clip the averaged gradient to this global norm (both systems): the update then needs the
    /// whole gradient before the weights can go back.
    var clipNorm: Double? = nil
    /// `cluster.wire_dtype: bf16` for Cohort, and DDP with its bf16 compression hook.
    var bf16 = false

    /// `cohort-bench lan-NAME` selects one (`lan-mnist-mlp` also selects `lan-mnist-mlp-clip`).
    var benchName: String { name + (clipNorm == nil ? "" : "-clip") + (bf16 ? "-bf16" : "") }

    static let all = [LANModel(name: "mnist-mlp", config: "configs/mnist-mlp.yaml", batch: 512, steps: 150),
                      LANModel(name: "mnist-mlp", config: "configs/mnist-mlp.yaml", batch: 512, steps: 150, clipNorm: 1),
                      LANModel(name: "mnist-mlp", config: "configs/mnist-mlp.yaml", batch: 512, steps: 150, bf16: true),
                      LANModel(name: "mnist-lenet", config: "configs/mnist-lenet.yaml", batch: 256, steps: 40),
                      LANModel(name: "mnist-lenet", config: "configs/mnist-lenet.yaml", batch: 256, steps: 40, bf16: true)]
}

/// Cohort on the LAN: the coordinator and one local worker on host 1, one worker on each other
/// host, CURVE on (as between real machines), each host's worker on `threads` threads.
func cohortLANRun(_ lan: SimulatedLAN, model: LANModel, threads: Int) throws -> LANFigures {
    let cohort = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("cohort").path
    let scratch = NSTemporaryDirectory() + "cohort-lan-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    defer { try? FileManager.default.removeItem(atPath: scratch) }
    let keys = "\(scratch)/keys", run = "\(scratch)/run"
    try FileManager.default.createDirectory(atPath: "\(keys)/workers", withIntermediateDirectories: true)
    try runTool(cohort, ["keygen", "\(keys)/coordinator"], quiet: true)
    for i in 1...lan.hosts where i >= 2 { try runTool(cohort, ["keygen", "\(keys)/workers/h\(i)"], quiet: true) }
    var environment = ProcessInfo.processInfo.environment
    environment["COHORT_DATA"] = URL(fileURLWithPath: mnistDirectory).standardizedFileURL.path
    let port = 5555
    let coordinator = Process()
    coordinator.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    // One host alone needs no socket on the wire: its one worker is local.
    let bind = lan.hosts == 1 ? [] : ["--bind", "tcp://10.79.0.1:\(port)", "--secret-key", "\(keys)/coordinator.key_secret",
                                      "--authorized-keys", "\(keys)/workers"]
    coordinator.arguments = ["ip"] + lan.onHost(1, [cohort, "train", model.config, "--workers", "1", "--run-dir", run, "--quiet"] + bind + [
        "--set", "cluster.min_workers=\(lan.hosts)", "--set", "cluster.threads_per_worker=\(threads)",
        "--set", "training.batch_size=\(model.batch)", "--set", "training.micro_batches=8", "--set", "training.steps=\(model.steps)",
        "--set", "evaluation.at_end=false", "--set", "checkpoint.at_end=false", "--set", "checkpoint.every_minutes=0"]
        + (model.clipNorm.map { ["--set", "training.clip_norm=\($0)"] } ?? []) + (model.bf16 ? ["--set", "cluster.wire_dtype=bf16"] : []))
    coordinator.environment = environment
    let before = try lan.linkBytes(1)
    try coordinator.run()
    var workers: [Process] = []
    if lan.hosts >= 2 {
        for i in 2...lan.hosts {
            let worker = Process()
            worker.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            worker.arguments = ["ip"] + lan.onHost(i, [cohort, "worker", "--connect", "tcp://10.79.0.1:\(port)", "--threads", "\(threads)",
                "--config", model.config, "--server-key", "\(keys)/coordinator.key", "--secret-key", "\(keys)/workers/h\(i).key_secret",
                "--timeout", "30", "--log-level", "warning"])
            worker.environment = environment
            try worker.run()
            workers.append(worker)
        }
    }
    coordinator.waitUntilExit()
    for worker in workers { worker.waitUntilExit() }
    let after = try lan.linkBytes(1)
    guard coordinator.terminationStatus == 0 else { throw BenchError("cohort train on the LAN failed (exit \(coordinator.terminationStatus))") }
    var steps: [Double] = [], compute: [Double] = [], reduce: [Double] = [], update: [Double] = [], transfer: [Double] = []
    for line in try String(contentsOfFile: "\(run)/metrics.jsonl", encoding: .utf8).split(separator: "\n").dropFirst(10) {
        guard let m = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
              let step = m["step_time_s"] as? Double, let ws = m["workers"] as? [[String: Any]] else { continue }
        let slowest = ws.compactMap { $0["compute_s"] as? Double }.max() ?? 0
        let r = m["reduce_s"] as? Double ?? 0, u = m["update_s"] as? Double ?? 0
        steps.append(step); compute.append(slowest); reduce.append(r); update.append(u)
        transfer.append(max(0, step - slowest - r - u))
    }
    let count = Double(model.steps)
    return LANFigures(samplesPerSecond: Double(model.batch) / median(steps),
                      linkSentPerStep: Double(after.sent - before.sent) / count, linkReceivedPerStep: Double(after.received - before.received) / count,
                      split: ["step_ms": median(steps) * 1e3, "compute_ms": median(compute) * 1e3, "transfer_ms": median(transfer) * 1e3,
                              "reduce_ms": median(reduce) * 1e3, "update_ms": median(update) * 1e3])
}

/// PyTorch DDP (gloo) on the same hosts, one rank per host, through bench/pytorch_reference.py
/// (nil when torch is not installed).
func ddpLANRun(_ lan: SimulatedLAN, model: LANModel, threads: Int) throws -> LANFigures? {
    guard let m = try pytorchReference(["lan", "--network", lan.name, "--hosts", "\(lan.hosts)", "--threads", "\(threads)",
                                        "--model", model.name, "--batch", "\(model.batch)", "--steps", "\(model.steps)"]
                                       + (model.clipNorm.map { ["--clip-norm", "\($0)"] } ?? []) + (model.bf16 ? ["--bf16-compress"] : []))
    else { return nil }
    guard let rate = m["samples_per_s"] as? Double else { throw BenchError("the DDP reference gave no samples/s") }
    return LANFigures(samplesPerSecond: rate, linkSentPerStep: m["link_sent_per_step"] as? Double ?? .nan,
                      linkReceivedPerStep: m["link_received_per_step"] as? Double ?? .nan)
}

/// For N = 1, 2 and 4 hosts, Cohort and DDP alternate for `rounds` rounds on the same LAN (this
/// VM's speed drifts); each line gives the best and the median round, and their ratio.
/// `cohort-bench lan` runs both models, `cohort-bench lan-mnist-mlp` one.
/// Each host computes on cores ÷ N threads (at least 1): the hosts share this machine's cores.
func lanBench(rounds: Int = 3) {
    let cores = ProcessInfo.processInfo.activeProcessorCount
    for model in LANModel.all where selected("lan-\(model.benchName)") {
        for hosts in [1, 2, 4] {
            let threads = max(1, cores / hosts)
            do {
                guard let lan = try SimulatedLAN.up(hosts: hosts) else {
                    emitLine("{\"bench\":\"lan\",\"skipped\":\"network namespaces are not available here (needs root and iproute2)\"}")
                    return
                }
                defer { lan.down() }
                var cohort: [LANFigures] = [], ddp: [LANFigures] = []
                for _ in 0..<rounds {
                    cohort.append(try cohortLANRun(lan, model: model, threads: threads))
                    if let d = try ddpLANRun(lan, model: model, threads: threads) { ddp.append(d) }
                }
                emitLAN(model: model, hosts: hosts, threads: threads, cohort: cohort, ddp: ddp)
            } catch {
                emitLine("{\"bench\":\"lan\",\"config\":\"\(model.name)\",\"hosts\":\(hosts),\"error\":\"\(error)\"}")
            }
        }
    }
}

func emitLAN(model: LANModel, hosts: Int, threads: Int, cohort: [LANFigures], ddp: [LANFigures]) {
    let rates = cohort.map(\.samplesPerSecond), best = rates.max() ?? .nan
    let split = cohort.max { $0.samplesPerSecond < $1.samplesPerSecond }?.split ?? [:]
    var pairs: [(String, Any)] = [("bench", "lan"), ("config", model.benchName), ("hosts", hosts), ("threads_per_host", threads),
        ("batch", model.batch), ("wire", hosts == 1 ? "none (one local worker)" : "tcp+CURVE, 1 Gbit/s tbf"), ("samples_per_s_best", best), ("samples_per_s_median", median(rates)),
        ("link_bytes_sent_per_step", median(cohort.map(\.linkSentPerStep))),
        ("link_bytes_received_per_step", median(cohort.map(\.linkReceivedPerStep)))]
    for key in ["step_ms", "compute_ms", "transfer_ms", "reduce_ms", "update_ms"] { pairs.append((key, split[key] ?? .nan)) }
    if !ddp.isEmpty {
        let ddpRates = ddp.map(\.samplesPerSecond)
        pairs += [("ddp_samples_per_s_best", ddpRates.max()!), ("ddp_samples_per_s_median", median(ddpRates)),
                  ("ddp_link_bytes_sent_per_step", median(ddp.map(\.linkSentPerStep))),
                  ("ratio_to_ddp_best", best / ddpRates.max()!), ("ratio_to_ddp_median", median(rates) / median(ddpRates))]
    }
    pairs.append(("rounds", cohort.count))
    emitPairs(pairs)
}
