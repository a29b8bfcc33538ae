import ArgumentParser
import CohortCluster
import CohortData
import CohortExperiment
import CohortTensor
import Foundation
import ZeroMQ
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// Exit codes: 0 success, 1 runtime failure, 2 usage or config error.
enum ExitStatus {
    static let runtimeFailure: Int32 = 1
    static let usage: Int32 = 2
}

@main
struct Cohort: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cohort",
        abstract: "Data-parallel neural-network training from a YAML config.",
        discussion: """
        Examples:
          cohort train configs/quickstart.yaml
          cohort train configs/xor.yaml --set optimizer.lr=0.5 --run-dir runs/xor-fast
          cohort trace configs/lecture-2-2-1.yaml
          cohort config configs/quickstart.yaml --set training.epochs=3
        """,
        subcommands: [Train.self, WorkerCommand.self, Evaluate.self, Predict.self, Inspect.self, Trace.self, ShowConfig.self, DataCommand.self, Keygen.self]
    )

    /// ArgumentParser exits 64 on usage errors; Cohort promises 2, so parse and exit by hand.
    static func main() {
        BLAS.tuneAllocator()
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let error as ConfigError {
            FileHandle.standardError.write(Data("cohort: config error: \(error)\n".utf8))
            Glibc.exit(ExitStatus.usage)
        } catch let error as DataError {
            FileHandle.standardError.write(Data("cohort: data error: \(error)\n".utf8))
            Glibc.exit(ExitStatus.usage)
        } catch let error as ExitCode {
            Glibc.exit(error.rawValue)
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                print(fullMessage(for: error))
                Glibc.exit(0)
            }
            let message = fullMessage(for: error)
            FileHandle.standardError.write(Data("\(message)\n".utf8))
            let isUsage = code == .validationFailure || code.rawValue == 64
            Glibc.exit(isUsage ? ExitStatus.usage : ExitStatus.runtimeFailure)
        }
    }
}

/// Options shared by the commands that read a config.
struct ConfigOptions: ParsableArguments {
    @Argument(help: "The experiment's YAML config (see configs/README.md).")
    var config: String

    @Option(name: .customLong("set"), help: ArgumentHelp("Override a config key, e.g. --set optimizer.lr=0.1 (repeatable).", valueName: "dotted.key=value"))
    var overrides: [String] = []

    func load() throws -> ExperimentConfig {
        try ExperimentConfig.load(path: config, overrides: overrides)
    }
}

func stderrLine(_ s: String) { FileHandle.standardError.write(Data((s + "\n").utf8)) }
func stdoutLine(_ s: String) { FileHandle.standardOutput.write(Data((s + "\n").utf8)) }

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

    @Argument(help: "The experiment's YAML config (see configs/README.md); not needed with --resume.")
    var config: String?

    @Option(name: .customLong("set"), help: ArgumentHelp("Override a config key, e.g. --set optimizer.lr=0.1 (repeatable).", valueName: "dotted.key=value"))
    var overrides: [String] = []

    @Option(help: "Directory for the run's outputs (default: runs/<config name>, never overwriting).")
    var runDir: String?

    @Option(help: "Continue the run in this directory from its newest valid checkpoint, bit for bit.")
    var resume: String?

    @Option(help: "Local worker processes to start (default: cluster.workers, else the number of cores).")
    var workers: Int?

    @Option(help: "Endpoint for workers to connect to, e.g. tcp://0.0.0.0:5555 (default: a private ipc:// socket).")
    var bind: String?

    @Option(help: ArgumentHelp("The coordinator's CURVE secret key (a .key_secret file from cohort keygen; also cluster.secret_key).", valueName: "file"))
    var secretKey: String?

    @Option(help: ArgumentHelp("Public keys of the workers allowed to connect: a .key file or a directory of them (also cluster.authorized_keys).", valueName: "path"))
    var authorizedKeys: String?

    @Flag(help: "Allow --bind on a non-loopback address without CURVE: anyone on the network can read and join the run.")
    var insecure = false

    @Flag(help: "No progress bar and no step lines: print only warnings and errors.")
    var quiet = false

    @Option(help: ArgumentHelp("Least severe messages shown: \(LogSetup.levels) (default info; also COHORT_LOG_LEVEL).", valueName: "level"))
    var logLevel: String?

    func run() throws {
        LogSetup.bootstrap(try LogSetup.level(logLevel, quiet: quiet))
        guard (config == nil) != (resume == nil) else {
            throw ValidationError(resume == nil ? "give a config, or --resume RUN_DIR" : "--resume takes the config from the run directory; give no config")
        }
        let configPath = resume.map { "\($0)/config.yaml" } ?? config!
        let config = try ExperimentConfig.load(path: configPath, overrides: overrides)
        let experiment = try Experiment(config: config)
        var checkpoint: Checkpoint?
        if let resume {
            let probe = experiment.config.optimizer.make(parameters: experiment.initialParameters)
            let (found, skipped) = CheckpointDirectory(runDirectory: resume).newestValid(model: experiment.model, optimizer: probe)
            for reason in skipped { stderrLine("cohort: skipping a damaged checkpoint: \(reason)") }
            guard let found else { throw ValidationError("no valid checkpoint in \(resume)/checkpoints") }
            guard found.configHash == Checkpoint.configHash(config) else {
                throw ValidationError("the checkpoint was made with another config than \(configPath); refusing to mix them")
            }
            checkpoint = found
        }
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let localCount = workers ?? config.cluster.workers ?? cores
        guard localCount >= 0 else { throw ValidationError("--workers must be 0 or more") }
        let endpoint = bind ?? config.cluster.bind ?? "ipc://\(NSTemporaryDirectory())cohort-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).ipc"
        if localCount == 0 && bind == nil && config.cluster.bind == nil {
            throw ValidationError("--workers 0 needs --bind (or cluster.bind) so external workers can connect")
        }
        var curve: CurveKeyPair?, authorized: [String] = []
        let secretKeyPath = secretKey ?? config.cluster.secretKey
        let authorizedPath = authorizedKeys ?? config.cluster.authorizedKeys
        guard (secretKeyPath == nil) == (authorizedPath == nil) else {
            throw ValidationError("CURVE needs both --secret-key and --authorized-keys (or cluster.secret_key and cluster.authorized_keys)")
        }
        if let secretKeyPath, let authorizedPath {
            do {
                curve = try CurveKeyFile.readSecret(secretKeyPath)
                authorized = try CurveKeyFile.readAuthorized(authorizedPath)
            } catch {
                throw ValidationError("\(error)")
            }
        }
        if curve == nil, !Endpoints.isLoopback(endpoint), !(insecure || config.cluster.insecure) {
            throw ValidationError("""
                binding \(endpoint) without CURVE lets anyone on the network read and join the run. Make keys with \
                'cohort keygen' and give --secret-key and --authorized-keys, or say --insecure
                """)
        }
        let directory = try checkpoint.map { try RunDirectory(resuming: resume!, atStep: $0.step) }
            ?? RunDirectory(explicit: runDir, name: config.name, resolvedConfig: config.resolvedYAML)
        let bar = !quiet && ProgressBar.isTerminal ? ProgressBar(stepsPerEpoch: experiment.plan.stepsPerEpoch) : nil
        // On a terminal the bar shows the steps; other lines go above it.
        LogOutput.shared.attach(bar)
        defer { bar?.finish(); LogOutput.shared.attach(nil) }
        let logger = Logger(label: "cohort.train")
        var options = Coordinator.Options(endpoint: endpoint)
        options.curve = curve
        options.authorizedKeys = authorized
        options.heartbeatTimeout = config.cluster.heartbeatTimeout
        options.maxMessageBytes = Int64(config.cluster.maxMessageMB) << 20
        options.sharedMemory = config.cluster.sharedMemory
        BLAS.setThreads(1)
        do {
            let coordinator = try Coordinator(experiment: experiment, options: options, logger: Logger(label: "cohort.coordinator"))
            defer {
                coordinator.shutdown(reason: "training finished")
                if coordinator.endpoint.hasPrefix("ipc://") { unlink(String(coordinator.endpoint.dropFirst(6))) }
            }
            let threads = config.cluster.threadsPerWorker ?? max(1, cores / max(localCount, 1))
            if localCount > 0 {
                var keyArguments: [String] = []
                if let curve = options.curve {
                    // Local workers get a key pair of this run, authorized for this run only.
                    let keys = try Self.localWorkerKeys(in: "\(directory.path)/workers", coordinator: curve)
                    coordinator.authorize(keys.publicKey)
                    keyArguments = ["--server-key", keys.serverKeyFile, "--secret-key", keys.secretKeyFile]
                }
                coordinator.localProcesses = try LocalWorkers(
                    count: localCount, executable: LocalWorkers.currentExecutable, endpoint: coordinator.endpoint,
                    threads: threads, dataConfig: "\(directory.path)/config.yaml", logDirectory: "\(directory.path)/workers",
                    extraArguments: keyArguments)
                logger.info("started \(localCount) local worker(s), \(threads) BLAS thread(s) each, at \(coordinator.endpoint)")
            } else {
                logger.info("waiting for \(config.cluster.minWorkers) worker(s) at \(coordinator.endpoint)")
            }
            try coordinator.waitForWorkers(max(config.cluster.minWorkers, localCount), timeout: config.cluster.startTimeout)
            var executor = coordinator
            _ = try TrainingRun.run(experiment, executor: &executor, runDirectory: directory, resumeFrom: checkpoint,
                                    beforeEvaluation: { BLAS.setThreads(cores); bar?.finish() },
                                    onStep: bar.map { bar in { record, total in bar.update(record, total: total) } },
                                    updateThreads: cores, logger: logger)
        } catch let error as ConfigError {
            throw error
        } catch {
            stderrLine("cohort: training failed: \(error)")
            throw ExitCode(ExitStatus.runtimeFailure)
        }
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

struct WorkerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Run a worker that computes gradients for a coordinator.",
        discussion: """
        Start one on each machine of a LAN (cluster/ has an ssh launcher and a systemd \
        unit):
          cohort worker --connect tcp://HOST:5555 --threads 2 \\
              --server-key keys/coordinator.key --secret-key keys/alpha.key_secret

        With --config, the worker loads that config's dataset; when it matches the \
        coordinator's (same SHA-256 fingerprint) tasks carry sample indices, otherwise the \
        samples themselves.
        """
    )

    @Option(help: "The coordinator's endpoint, e.g. tcp://10.0.0.5:5555.")
    var connect: String

    @Option(help: "OpenBLAS threads (one per worker when several workers share the cores).")
    var threads = 1

    @Option(help: "A config whose dataset to load locally.")
    var config: String?

    @Option(help: "Exit when this process is gone (set by the coordinator for local workers).")
    var parent: Int32?

    @Option(help: "Exit after this many seconds without a word from the coordinator.")
    var timeout = 60.0

    @Option(help: ArgumentHelp("The coordinator's CURVE public key (its .key file): encrypt and authenticate the connection.", valueName: "file"))
    var serverKey: String?

    @Option(help: ArgumentHelp("This worker's CURVE secret key (a .key_secret file whose .key the coordinator authorizes).", valueName: "file"))
    var secretKey: String?

    @Option(help: ArgumentHelp("Least severe messages shown: \(LogSetup.levels) (default info; also COHORT_LOG_LEVEL).", valueName: "level"))
    var logLevel: String?

    func run() throws {
        LogOutput.shared.prefix = "[worker \(getpid())] "
        LogOutput.shared.everythingToStandardError = true
        LogSetup.bootstrap(try LogSetup.level(logLevel))
        var options = Worker.Options(endpoint: connect, threads: threads, dataConfig: config, parentPID: parent)
        options.coordinatorTimeout = timeout
        if secretKey != nil && serverKey == nil { throw ValidationError("--secret-key needs --server-key, the coordinator's public key") }
        if let serverKey {
            guard let secretKey else { throw ValidationError("--server-key needs --secret-key, this worker's key (cohort keygen makes one)") }
            do {
                options.serverKey = try CurveKeyFile.readPublic(serverKey)
                options.curve = try CurveKeyFile.readSecret(secretKey)
            } catch {
                throw ValidationError("\(error)")
            }
        }
        let worker = Worker(options: options, logger: Logger(label: "cohort.worker"))
        switch try worker.run() {
        case .shutdown:
            return
        case .refused(let reason):
            stderrLine("cohort worker: the coordinator refused this worker: \(reason)")
            throw ExitCode(ExitStatus.usage)
        case .coordinatorLost(let reason):
            stderrLine("cohort worker: \(reason); exiting")
            throw ExitCode(ExitStatus.runtimeFailure)
        }
    }
}

struct Trace: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print every forward value, the loss, every gradient and the updated parameters, step by step.",
        discussion: """
        Made for checking a hand computation: try it on configs/lecture-2-2-1.yaml, the \
        worked example of the lecture notes, and compare with the table in the notes.
        """
    )

    @OptionGroup var options: ConfigOptions

    @Option(help: "Number of iterations to trace (default: training.steps, or the whole run).")
    var steps: Int?

    @Option(help: "Decimal places printed.")
    var decimals = 4

    func run() throws {
        let experiment = try Experiment(config: try options.load())
        try LectureTrace.run(experiment, steps: steps, decimals: decimals) { print($0) }
    }
}

struct ShowConfig: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "config", abstract: "Validate a config and print it resolved.")

    @OptionGroup var options: ConfigOptions

    func run() throws {
        let config = try options.load()
        _ = try Experiment(config: config)
        print(config.resolvedYAML, terminator: "")
    }
}

struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Fetch datasets.",
        discussion: """
        Examples:
          cohort data mnist --to data/mnist
          cohort data mnist --fashion --to data/fashion-mnist
        Then point a config at the directory (data.path) or set COHORT_DATA to it.
        """,
        subcommands: [FetchMNIST.self]
    )
}

struct FetchMNIST: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mnist",
        abstract: "Download MNIST (or Fashion-MNIST) from public mirrors and check the MD5 of each file."
    )

    @Option(help: "Directory to put the four .gz files in.")
    var to: String

    @Flag(help: "Fashion-MNIST instead of MNIST.")
    var fashion = false

    @Option(help: "A mirror base URL to try first (repeatable); file:// works too.")
    var mirror: [String] = []

    func run() throws {
        let mirrors = mirror + (fashion ? MNISTDownload.fashionMirrors : MNISTDownload.mnistMirrors)
        LogSetup.bootstrap(.info)
        try MNISTDownload.fetch(to: to, mirrors: mirrors,
                                checksums: fashion ? MNISTDownload.fashionChecksums : MNISTDownload.mnistChecksums)
        stdoutLine("done: \(to)")
    }
}

struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Loss, accuracy and the confusion matrix of trained weights.",
        discussion: """
        Examples:
          cohort eval runs/mnist-mlp/final.safetensors --config configs/mnist-mlp.yaml
          cohort eval runs/mnist-lenet/final.safetensors \\
              --config configs/mnist-lenet.yaml --split train
        """
    )

    @Argument(help: "A safetensors file written by cohort train.")
    var checkpoint: String

    @Option(help: "The config that describes the model and the data.")
    var config: String

    @Option(help: "test (the held-out set: test set or validation split) or train.")
    var split = "test"

    func run() throws {
        let config = try ExperimentConfig.load(path: config)
        let experiment = try Experiment(config: config)
        guard ["test", "train"].contains(split) else { throw ValidationError("--split is test or train") }
        guard let dataset = split == "train" ? experiment.dataset : experiment.evaluation else {
            throw ValidationError("the config's data has no held-out set: use --split train or set data.validation")
        }
        let parameters: [Tensor]
        do { parameters = try Experiment.loadWeights(checkpoint, for: experiment.model) } catch {
            stderrLine("cohort eval: \(error)")
            throw ExitCode(ExitStatus.usage)
        }
        BLAS.setThreads(ProcessInfo.processInfo.activeProcessorCount)
        let report = EvaluationReport.run(model: experiment.model, parameters: parameters, loss: config.training.loss,
                                          reduction: config.training.reduction, on: dataset)
        print(report.text)
    }
}

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the tensors of a safetensors file: names, shapes, statistics and metadata.",
        discussion: "Example: cohort inspect runs/mnist-lenet/final.safetensors"
    )

    @Argument(help: "A safetensors file.")
    var checkpoint: String

    func run() throws {
        let file: (entries: [Safetensors.Entry], metadata: [String: String])
        do { file = try Safetensors.read(path: checkpoint) } catch {
            stderrLine("cohort inspect: \(error)")
            throw ExitCode(ExitStatus.usage)
        }
        print("\(checkpoint): \(file.entries.count) tensors, \(file.entries.reduce(0) { $0 + $1.tensor.count }) values")
        for (key, value) in file.metadata.sorted(by: { $0.key < $1.key }) { print("  metadata \(key) = \(value)") }
        let nameWidth = file.entries.map(\.name.count).max() ?? 4
        for entry in file.entries {
            let t = entry.tensor
            let values = t.scalars
            let mean = values.isEmpty ? 0 : Double(t.sum()) / Double(values.count)
            let std = values.isEmpty ? 0 : (t.squaredNorm() / Double(values.count) - mean * mean).squareRoot()
            let shape = "[" + t.shape.map(String.init).joined(separator: ", ") + "]"
            print("  " + entry.name.padding(toLength: nameWidth, withPad: " ", startingAt: 0) + "  F32 " +
                  shape.padding(toLength: 20, withPad: " ", startingAt: 0) +
                  String(format: "min %9.4f  max %9.4f  mean %9.4f  std %8.4f", values.min() ?? 0, values.max() ?? 0, mean, std))
        }
    }
}

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run trained weights on new samples and print the predictions as CSV.",
        discussion: """
        The input is a .npy array of samples ([N, ...] in the model's input shape, \
        float32, float64 or uint8) or a headerless CSV of numbers, one sample per row. Inputs \
        get the config's normalization (data.normalize, fitted on its training set). Output: \
        one row per sample with the predicted class and the class probabilities (softmax for \
        cross_entropy, sigmoid for the BCE losses), or the raw outputs for regression losses.

        Example:
          cohort predict runs/mnist-lenet/final.safetensors \\
              --config configs/mnist-lenet.yaml --input digits.npy
        """
    )

    @Argument(help: "A safetensors file written by cohort train.")
    var checkpoint: String

    @Option(help: "The config that describes the model and its data preparation.")
    var config: String

    @Option(help: "Samples: a .npy file or a headerless CSV of numbers.")
    var input: String

    @Option(help: "Write the CSV here instead of standard output.")
    var output: String?

    func run() throws {
        let config = try ExperimentConfig.load(path: config)
        let experiment = try Experiment(config: config)
        let parameters: [Tensor]
        var samples: Tensor
        do {
            parameters = try Experiment.loadWeights(checkpoint, for: experiment.model)
            samples = try Self.readSamples(input)
        } catch {
            stderrLine("cohort predict: \(error)")
            throw ExitCode(ExitStatus.usage)
        }
        let features = experiment.model.inputShape.reduce(1, *)
        guard samples.count % max(features, 1) == 0, samples.count > 0 else {
            stderrLine("cohort predict: \(input): \(samples.count) values do not make samples of \(features)")
            throw ExitCode(ExitStatus.usage)
        }
        let n = samples.count / features
        samples = samples.reshaped([n] + experiment.model.inputShape)
        // The same preparation as training: raw samples through the config's normalization.
        let raw = try config.data.loadRawTraining(seed: config.seed)
        let normalizer = Normalizer(fitting: config.data.normalization, to: raw)
        samples = normalizer.apply(Dataset(name: "input", inputs: samples, targets: Tensor.zeros([n]))).inputs
        BLAS.setThreads(ProcessInfo.processInfo.activeProcessorCount)
        let z = experiment.model.predict(samples, parameters: parameters)
        let (rows, columns) = z.matrixShape
        var lines: [String] = []
        let loss = config.training.loss
        let classify = loss.isClassification
        lines.append((classify ? ["index", "prediction"] : ["index"]) .joined(separator: ",") + "," +
                     (0..<columns).map { classify ? "p\($0)" : "y\($0)" }.joined(separator: ","))
        for r in 0..<rows {
            var values = (0..<columns).map { Double(z[flat: r * columns + $0]) }
            var prediction = ""
            if loss == .softmaxCrossEntropy {
                let top = values.max() ?? 0
                let e = values.map { Foundation.exp($0 - top) }
                let total = e.reduce(0, +)
                values = e.map { $0 / total }
                prediction = String(values.indices.max { values[$0] < values[$1] } ?? 0)
            } else if classify {
                if loss != .binaryCrossEntropy && loss != .hinge { values = values.map { 1 / (1 + Foundation.exp(-$0)) } }
                let threshold = loss == .hinge ? 0.0 : 0.5
                prediction = values.map { $0 > threshold ? "1" : "0" }.joined(separator: ";")
            }
            let cells = values.map { String(format: "%.6g", $0) }
            lines.append(([String(r)] + (classify ? [prediction] : []) + cells).joined(separator: ","))
        }
        let text = lines.joined(separator: "\n") + "\n"
        if let output { try AtomicFile.write(text, to: output) } else { FileHandle.standardOutput.write(Data(text.utf8)) }
    }

    static func readSamples(_ path: String) throws -> Tensor {
        if path.hasSuffix(".npy") { return try NPY.read(path: path) }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw DataError(file: path, "cannot read the file") }
        var values: [Float] = [], width: Int?
        for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: true).enumerated() {
            let cells = line.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            guard width == nil || width == cells.count else { throw DataError(file: path, line: i + 1, "has \(cells.count) values, earlier rows \(width!)") }
            width = cells.count
            for cell in cells {
                guard let v = Float(cell) else { throw DataError(file: path, line: i + 1, "'\(cell)' is not a number") }
                values.append(v)
            }
        }
        return Tensor(shape: [values.count / max(width ?? 1, 1), width ?? 0], values)
    }
}

struct Keygen: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Make a CURVE key pair for encrypted, authenticated training over a network.",
        discussion: """
        Writes NAME.key (the public key, to hand out) and NAME.key_secret (both keys, \
        readable by you only), in ZeroMQ's certificate format. Never overwrites.

        Example, a coordinator and two LAN workers:
          cohort keygen keys/coordinator
          cohort keygen keys/workers/alpha    # on alpha; copy alpha.key over
          cohort keygen keys/workers/beta
          cohort train configs/mnist-mlp.yaml --bind tcp://0.0.0.0:5555 \\
              --workers 0 --set cluster.min_workers=2 \\
              --secret-key keys/coordinator.key_secret --authorized-keys keys/workers
          cohort worker --connect tcp://HOST:5555 \\
              --server-key keys/coordinator.key \\
              --secret-key keys/workers/alpha.key_secret
        """
    )

    @Argument(help: "Path and name of the key files, without suffix.")
    var name: String

    func run() throws {
        let directory = (name as NSString).deletingLastPathComponent
        if !directory.isEmpty { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
        let pair = try CurveKeyPair.generate()
        let files: (public: String, secret: String)
        do { files = try CurveKeyFile.write(pair, base: name) } catch {
            stderrLine("cohort keygen: \(error)")
            throw ExitCode(ExitStatus.usage)
        }
        print("public key \(pair.publicKey)")
        print("wrote \(files.public) (share it) and \(files.secret) (keep it private)")
    }
}
