import ArgumentParser
import CohortCluster
import CohortData
import CohortExperiment
import CohortTensor
import CohortTraining
import Foundation
import Logging
import ZeroMQ

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a model with a coordinator and worker processes, and write its run directory.",
        discussion: """
        The coordinator cuts every batch into micro-batches, the workers compute their \
        gradients, and the coordinator sums them along a fixed tree, averages, clips and \
        updates. The weights are the same, bit for bit, for any number of workers.

        Writes config.yaml (resolved), metrics.jsonl (one JSON object per step), \
        final.safetensors (PyTorch parameter names), summary.json, curves.svg, TensorBoard \
        events and workers/worker-N.log to the run directory, by default runs/<name>.

        Examples:
          cohort train configs/quickstart.yaml          # one worker per core
          cohort train configs/mnist-mlp.yaml --workers 2 \\
              --set checkpoint.every_steps=100
          cohort train --resume runs/mnist-mlp           # after a crash
          cohort train configs/mnist-mlp.yaml --bind tcp://0.0.0.0:5555 \\
              --workers 0 --secret-key keys/coordinator.key_secret \\
              --authorized-keys keys/workers
              # then on each machine: cohort worker --connect tcp://HOST:5555 ...
              # (see cohort keygen --help)
        """
    )

    @Argument(help: "The experiment's YAML config (see configs/README.md); not needed with --resume.",
              completion: .file(extensions: ["yaml", "yml"]))
    var config: String?

    @Option(name: .customLong("set"), help: ArgumentHelp("Override a config key, e.g. --set optimizer.lr=0.1 (repeatable).", valueName: "dotted.key=value"))
    var overrides: [String] = []

    @Option(help: "Directory for the run's outputs (default: runs/<config name>, never overwriting).")
    var runDir: String?

    @Option(help: "Continue the run in this directory from its newest valid checkpoint, bit for bit.")
    var resume: String?

    @OptionGroup var cluster: ClusterFlags

    @Option(help: "Under Slurm: the coordinator's port (default: 20000 + the job id mod 30000).")
    var port: Int?

    @Flag(help: "No progress bar and no step lines: print only warnings and errors.")
    var quiet = false

    @Option(help: ArgumentHelp("Least severe messages shown: \(LogSetup.levels) (default info; also COHORT_LOG_LEVEL).", valueName: "level"))
    var logLevel: String?

    func run() throws {
        LogSetup.bootstrap(try LogSetup.level(logLevel, quiet: quiet))
        LogOutput.shared.timestamps = !ProgressBar.isTerminal
        guard (config == nil) != (resume == nil) else {
            throw ValidationError(resume == nil ? "give a config, or --resume RUN_DIR" : "--resume takes the config from the run directory; give no config")
        }
        let configPath = resume.map { "\($0)/config.yaml" } ?? config!
        let config = try ExperimentConfig.load(path: configPath, overrides: overrides)
        let experiment = try Experiment(config: config)
        let slurm = SlurmTask.current()
        if let slurm, slurm.procID > 0 { return try runSlurmWorker(slurm, config: config, experiment: experiment) }
        let checkpoint = try resume.map { try Self.newestCheckpoint(in: $0, of: experiment) }
        let cores = ProcessInfo.processInfo.activeProcessorCount
        var flags = cluster, clusterConfig = config.cluster
        if let resume, clusterConfig.blasKernel == nil, let family = RunBLASFamily.read(resume) {
            // The kernels the run began with, wherever it continues.
            clusterConfig.blasKernel = family
        }
        var directory: RunDirectory?
        if let slurm {
            // The coordinator of a Slurm job: its run directory first, for the job's keys.
            directory = try RunDirectory(explicit: runDir ?? slurmRunDirectory(config, slurm), name: config.name, resolvedConfig: config.resolvedYAML)
            try slurmCoordinator(slurm, runDirectory: directory!.path, flags: &flags, config: &clusterConfig)
        }
        let launch = try ClusterLaunch(flags: flags, config: clusterConfig, cores: slurm?.cores ?? cores)
        let run = try directory ?? checkpoint.map { try RunDirectory(resuming: resume!, atStep: $0.step, resolvedConfig: config.resolvedYAML) }
            ?? RunDirectory(explicit: runDir, name: config.name, resolvedConfig: config.resolvedYAML)
        try train(experiment, launch: launch, in: run, from: checkpoint, cores: cores)
    }

    /// Trains with the launch's coordinator and workers (or in this process, when no step is
    /// left), with the progress bar on a terminal and Ctrl-C stopping at a step boundary.
    func train(_ experiment: Experiment, launch: ClusterLaunch, in directory: RunDirectory, from checkpoint: Checkpoint?, cores: Int) throws {
        let bar = !quiet && ProgressBar.isTerminal ? ProgressBar(stepsPerEpoch: experiment.plan.stepsPerEpoch) : nil
        // On a terminal the bar shows the steps; other lines go above it.
        LogOutput.shared.attach(bar)
        defer { bar?.finish(); LogOutput.shared.attach(nil) }
        let logger = Logger(label: "cohort.train")
        BLAS.setThreads(1)
        StopRequest.install()
        do {
            var hooks = TrainingRun.Hooks()
            hooks.onStep = bar.map { bar in { record, total in bar.update(record, total: total) } }
            hooks.beforeEvaluation = { BLAS.setThreads(cores) }
            hooks.onEvaluation = bar.map { bar in { set, done, total in bar.evaluating(set, done: done, total: total) } }
            hooks.stopRequested = { StopRequest.requested }
            func train<E: GradientExecutor>(_ executor: inout E) throws {
                _ = try TrainingRun.run(experiment, executor: &executor, runDirectory: directory, resumeFrom: checkpoint,
                                        updateThreads: cores, hooks: hooks, logger: logger)
            }
            guard experiment.totalSteps > (checkpoint?.step ?? 0) else {
                // Nothing to compute (training.steps 0, or a finished run resumed as it was):
                // the weights are written as they are, without starting workers.
                var executor = LocalExecutor(experiment: experiment)
                return try train(&executor)
            }
            let coordinator = try Coordinator(setup: experiment.setup, options: launch.options, logger: Logger(label: "cohort.coordinator"))
            defer {
                coordinator.shutdown(reason: StopRequest.requested == nil ? "training finished" : "training interrupted")
                if coordinator.endpoint.hasPrefix("ipc://") { unlink(String(coordinator.endpoint.dropFirst(6))) }
            }
            try Self.startLocalWorkers(launch, for: coordinator, in: directory, logger: logger)
            try coordinator.waitForWorkers(max(launch.minWorkers, launch.localWorkers), timeout: launch.startTimeout)
            if let family = coordinator.blasFamily { try RunBLASFamily.write(family, to: directory.path) }
            var executor = coordinator
            try train(&executor)
        } catch let error as ConfigError {
            throw error
        } catch let error as TrainingInterrupted {
            throw error
        } catch {
            stderrLine("cohort: training failed: \(error)")
            throw ExitCode(ExitStatus.runtimeFailure)
        }
    }

    /// The checkpoint `--resume` continues from: the newest that reads back whole, made with
    /// this same config (the keys `ConfigFingerprint` leaves out may differ).
    static func newestCheckpoint(in runDirectory: String, of experiment: Experiment) throws -> Checkpoint {
        let probe = experiment.config.optimizer.make(parameters: experiment.initialParameters)
        let (found, skipped) = CheckpointDirectory(runDirectory: runDirectory).newestValid(model: experiment.model, optimizer: probe)
        for reason in skipped { stderrLine("cohort: skipping a damaged checkpoint: \(reason)") }
        guard let found else {
            throw UsageError("""
                \(runDirectory) has no checkpoint to resume from\(skipped.isEmpty ? "" : " that reads back whole"). Runs write one \
                every checkpoint.every_minutes (default \(Int(CheckpointConfig.defaultEveryMinutes))), at the end \
                (checkpoint.at_end), and every checkpoint.every_steps if set, and when stopped with Ctrl-C; \
                this run was made without any
                """)
        }
        guard found.matches(experiment.config) else {
            var change = ""
            if let old = found.resolvedConfig, let difference = ConfigFingerprint.firstDifference(old, experiment.config.resolvedYAML) {
                change = ": \(difference.key) is \(difference.new ?? "absent") now but was \(difference.old ?? "absent")"
            }
            throw UsageError("""
                the checkpoint in \(runDirectory) was made with another config\(change). On resume only \
                \(ConfigFingerprint.mayChangeText) may change; refusing to mix them
                """)
        }
        return found
    }

    /// Starts the launch's local workers (with a key pair of this run when it uses CURVE), or
    /// says where external ones are awaited.
    static func startLocalWorkers(_ launch: ClusterLaunch, for coordinator: Coordinator, in directory: RunDirectory,
                                  logger: Logger) throws {
        var environment: [String: String] = [:]
        if let token = launch.options.token {
            // Plain tcp: workers show the run's token. Other workers on this machine read it here.
            try FileManager.default.createDirectory(atPath: "\(directory.path)/workers", withIntermediateDirectories: true)
            try RunToken.write(token, to: "\(directory.path)/workers/token")
            environment[RunToken.environmentKey] = token
        }
        if LogSetup.installed <= .debug {
            // `--log-level debug` asks to see the exchange: the local workers' side of it too.
            environment["COHORT_LOG_LEVEL"] = LogSetup.installed.rawValue
        }
        if let family = launch.options.blasKernel {
            // A pinned family is known before the workers start: they load it at once.
            environment["OPENBLAS_CORETYPE"] = family.coreType
        }
        guard launch.localWorkers > 0 else {
            logger.info("waiting for \(launch.minWorkers) worker(s) at \(coordinator.endpoint)")
            return
        }
        var keyArguments: [String] = []
        if let curve = launch.options.curve {
            // Local workers get a key pair of this run, authorized for this run only.
            let keys = try Self.localWorkerKeys(in: "\(directory.path)/workers", coordinator: curve)
            coordinator.authorize(keys.publicKey)
            keyArguments = ["--server-key", keys.serverKeyFile, "--secret-key", keys.secretKeyFile]
        }
        coordinator.localProcesses = try LocalWorkers(
            count: launch.localWorkers, executable: LocalWorkers.currentExecutable, endpoint: coordinator.endpoint,
            threads: launch.threadsPerWorker, dataConfig: "\(directory.path)/config.yaml", logDirectory: "\(directory.path)/workers",
            extraArguments: keyArguments, environment: environment)
        logger.info("started \(launch.localWorkers) local worker(s), \(launch.threadsPerWorker) thread(s) each, at \(coordinator.endpoint)")
    }
}

extension Train {
    /// Writes a fresh key pair for the local workers and the coordinator's public key next to
    /// their logs (the secret readable by this user only).
    static func localWorkerKeys(in directory: String, coordinator: CurveKeyPair) throws
        -> (publicKey: String, serverKeyFile: String, secretKeyFile: String) {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        for suffix in [CurveKeyFile.publicSuffix, CurveKeyFile.secretSuffix] {
            for name in ["local", "coordinator"] { unlink("\(directory)/\(name)\(suffix)") }
        }
        let pair = try CurveKeyPair.generate()
        let files = try CurveKeyFile.write(pair, base: "\(directory)/local", comment: "local workers of this run")
        let server = try CurveKeyFile.writePublic(coordinator.publicKey, base: "\(directory)/coordinator", comment: "the coordinator of this run")
        return (pair.publicKey, server, files.secret)
    }
}
