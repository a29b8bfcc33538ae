import ArgumentParser
import CohortCluster
import CohortExperiment
import Foundation
import Logging
import ZeroMQ

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

    @Option(help: "Threads computing micro-batches, one BLAS thread each (the weights do not depend on it).")
    var threads = 1

    @Option(help: "A config whose dataset to load locally (its data section; the model comes from the coordinator).")
    var config: String?

    @Option(help: "Exit when this process is gone (set by the coordinator for local workers).")
    var parent: Int32?

    @Option(help: "Exit after this many seconds without a word from the coordinator.")
    var timeout = 60.0

    @Option(help: ArgumentHelp("The coordinator's CURVE public key (its .key file): encrypt and authenticate the connection.", valueName: "file"))
    var serverKey: String?

    @Option(help: ArgumentHelp("This worker's CURVE secret key (a .key_secret file whose .key the coordinator authorizes).", valueName: "file"))
    var secretKey: String?

    @Option(help: ArgumentHelp("The run's token, for a coordinator bound to plain tcp: its RUN_DIR/workers/token (also COHORT_RUN_TOKEN).", valueName: "file"))
    var tokenFile: String?

    @Option(help: ArgumentHelp("Least severe messages shown: \(LogSetup.levels) (default info; also COHORT_LOG_LEVEL).", valueName: "level"))
    var logLevel: String?

    func run() throws {
        LogOutput.shared.prefix = "[worker \(getpid())] "
        LogOutput.shared.everythingToStandardError = true
        LogOutput.shared.timestamps = true
        LogSetup.bootstrap(try LogSetup.level(logLevel))
        var options = Worker.Options(endpoint: connect, threads: threads, parentPID: parent)
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
        do {
            options.token = try tokenFile.map(RunToken.read) ?? ProcessInfo.processInfo.environment[RunToken.environmentKey]
        } catch {
            throw UsageError("\(error)")
        }
        if let config {
            // The worker's own copy of the data: its config's `data` section says which.
            let experiment = try ExperimentConfig.load(path: config)
            options.localData = try experiment.data.load(seed: experiment.seed).train
        }
        let worker = Worker(options: options, logger: Logger(label: "cohort.worker"))
        switch try worker.run() {
        case .shutdown:
            return
        case .refused(let reason):
            stderrLine("cohort worker: the coordinator refused this worker: \(reason)")
            throw ExitCode(ExitStatus.usage)
        case .failed(let reason):
            stderrLine("cohort worker: cannot go on: \(reason)")
            throw ExitCode(ExitStatus.runtimeFailure)
        case .coordinatorLost(let reason):
            stderrLine("cohort worker: \(reason); exiting")
            throw ExitCode(ExitStatus.runtimeFailure)
        case .rejoinWithBLAS(let family):
            // Returns only when this process cannot be replaced.
            stderrLine("cohort worker: \(BLASMachine.reexec(as: family))")
            throw ExitCode(ExitStatus.runtimeFailure)
        }
    }
}
