import ArgumentParser
import CohortCluster
import CohortData
import CohortExperiment
import Foundation

struct Sweep: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train every combination of a grid of config values, and compare them.",
        discussion: """
        Each point is a cohort train run (with the local workers) in runs/<sweep>/<point>/. \
        sweep.csv lists every point's settings, final training and evaluation loss and \
        accuracy, wall time and samples/s; sweep.svg overlays the evaluation-loss curves \
        (set evaluation.every_steps for curves) and shows each point's final accuracy. Run \
        the same command again to continue an interrupted sweep: finished points are kept, \
        an interrupted one resumes from its checkpoint.

        Examples:
          cohort sweep configs/mnist-mlp.yaml --grid optimizer.lr=0.01,0.05,0.1 \\
              --grid training.batch_size=64,128 --seeds 3
          cohort sweep configs/xor.yaml --grid optimizer.lr=0.1,0.5 --dry-run
        """
    )

    @Argument(help: "The experiment's YAML config.", completion: .file(extensions: ["yaml", "yml"]))
    var config: String

    @Option(help: ArgumentHelp("A key and the values to try, e.g. optimizer.lr=0.01,0.1 (repeatable).", valueName: "dotted.key=v1,v2,…"))
    var grid: [String] = []

    @Option(help: "Run each combination with this many seeds (the config's seed, +1, +2, …).")
    var seeds: Int?

    @Option(name: .customLong("set"), help: ArgumentHelp("Override a config key for every point (repeatable).", valueName: "dotted.key=value"))
    var overrides: [String] = []

    @Option(help: "The sweep's name: its directory is runs/<name> (default: <config name>-sweep).")
    var name: String?

    @Option(help: "Local worker processes for each run (default: cluster.workers, else the number of cores).")
    var workers: Int?

    @Flag(help: "List the points and their directories, and run nothing.")
    var dryRun = false

    func run() throws {
        let base = try ExperimentConfig.load(path: config, overrides: overrides)
        let plan: SweepPlan
        do { plan = try SweepPlan(config: config, grids: grid, seeds: seeds, baseSeed: base.seed) } catch { throw UsageError("\(error)") }
        // Every point's config must be valid before anything runs.
        for point in plan.points {
            _ = try ExperimentConfig.load(path: config, overrides: overrides + point.settings.map { "\($0.key)=\($0.value)" })
        }
        let directory = "runs/\(name ?? "\(base.name)-sweep")"
        if dryRun {
            for (i, point) in plan.points.enumerated() {
                print("[\(i + 1)/\(plan.points.count)] \(directory)/\(point.directoryName): " +
                      point.settings.map { "\($0.key)=\($0.value)" }.joined(separator: " "))
            }
            return
        }
        try SweepRun(plan: plan, directory: directory, overrides: overrides, workers: workers).run()
    }
}

/// Runs a sweep's points one after the other as `cohort train` children, skipping those that
/// finished before, and writes sweep.csv and sweep.svg after each.
struct SweepRun {
    let plan: SweepPlan
    let directory: String
    let overrides: [String]
    let workers: Int?

    func run() throws {
        try prepareDirectory()
        StopRequest.install()   // a Ctrl-C reaches the running point too; it stops cleanly, then so do we
        for (i, point) in plan.points.enumerated() {
            let run = "\(directory)/\(point.directoryName)"
            let label = "[\(i + 1)/\(plan.points.count)] " + point.settings.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            let status = SweepReport(plan: plan, directory: directory).rows[i].status
            if status == "done" {
                stdoutLine("\(label): done before, kept")
                continue
            }
            let start = Date()
            let exit = try train(point, run: run, resume: status == "interrupted" || hasCheckpoint(run))
            try writeReport()
            if let signal = StopRequest.requested ?? (exit == 130 || exit == 143 ? exit - 128 : nil) {
                stdoutLine("\(label): interrupted; run the same command again to continue the sweep")
                throw ExitCode(128 + signal)
            }
            let row = SweepReport(plan: plan, directory: directory).rows[i]
            let accuracy = (row.summary["eval_accuracy"] as? Double).map { String(format: ", eval accuracy %.4f", $0) } ?? ""
            let loss = (row.summary["eval_loss"] as? Double ?? row.summary["train_loss"] as? Double).map { String(format: "loss %.6f", $0) } ?? ""
            stdoutLine("\(label): \(exit == 0 ? "\(loss)\(accuracy)" : "failed (exit \(exit)); see \(run)"), \(String(format: "%.1f", Date().timeIntervalSince(start))) s")
        }
        try writeReport()
        stdoutLine("sweep of \(plan.points.count) points: \(directory)/sweep.csv, \(directory)/sweep.svg")
    }

    /// The sweep directory, with the plan it was made for: running the same command again
    /// continues it; another grid under the same name is refused.
    func prepareDirectory() throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let planFile = "\(directory)/sweep.json"
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let encoded = try encoder.encode(plan)
        if let existing = FileManager.default.contents(atPath: planFile) {
            guard let earlier = try? JSONDecoder().decode(SweepPlan.self, from: existing), earlier == plan else {
                throw UsageError("\(directory) holds another sweep (see its sweep.json); give --name for a new one")
            }
        } else {
            try AtomicFile.write(encoded, to: planFile)
        }
    }

    func hasCheckpoint(_ run: String) -> Bool {
        ((try? FileManager.default.contentsOfDirectory(atPath: "\(run)/checkpoints")) ?? []).contains { $0.hasSuffix(".safetensors") }
    }

    /// One point as a child `cohort train`; returns its exit status. A directory left by a run
    /// that crashed before any checkpoint is set aside (renamed), never deleted.
    func train(_ point: SweepPlan.Point, run: String, resume: Bool) throws -> Int32 {
        var arguments: [String]
        if resume {
            arguments = ["train", "--resume", run]
        } else {
            if let contents = try? FileManager.default.contentsOfDirectory(atPath: run), !contents.isEmpty {
                var n = 1
                while FileManager.default.fileExists(atPath: "\(run).failed-\(n)") { n += 1 }
                try FileManager.default.moveItem(atPath: run, toPath: "\(run).failed-\(n)")
            }
            arguments = ["train", plan.config, "--run-dir", run]
                + (overrides + point.settings.map { "\($0.key)=\($0.value)" }).flatMap { ["--set", $0] }
        }
        arguments += ["--quiet"] + (workers.map { ["--workers", "\($0)"] } ?? [])
        return try Self.runChild([LocalWorkers.currentExecutable] + arguments)
    }

    /// Runs a child in a process group of its own, passing it this process's Ctrl-C and SIGTERM
    /// (one each: from a terminal the child would otherwise get two, and quit at once); returns
    /// its exit status (128 + the signal if one killed it).
    static func runChild(_ arguments: [String]) throws -> Int32 {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP))
        posix_spawnattr_setpgroup(&attributes, 0)
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, arguments[0], nil, &attributes, &argv, environ)
        guard rc == 0 else { throw UsageError("cannot start \(arguments[0]): \(String(cString: strerror(rc)))") }
        StopRequest.child = pid
        defer { StopRequest.child = 0 }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        // WIFEXITED / WEXITSTATUS / WTERMSIG by hand: Swift does not import the macros.
        let signal = status & 0x7f
        return signal == 0 ? (status >> 8) & 0xff : 128 + signal
    }

    func writeReport() throws {
        let report = SweepReport(plan: plan, directory: directory)
        try AtomicFile.write(report.csv, to: "\(directory)/sweep.csv")
        try AtomicFile.write(report.svg(title: "sweep of \(plan.config)"), to: "\(directory)/sweep.svg")
    }
}
