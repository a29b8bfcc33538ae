import ArgumentParser
import CohortCluster
import CohortExperiment
import Foundation
import Yams
import ZeroMQ

/// `cohort train`'s flags about the cluster. Each one overrides the config's `cluster` key of
/// the same name.
struct ClusterFlags: ParsableArguments {
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
}

/// Everything about a `cohort train` cluster, resolved once: the flag if given, else the
/// config's `cluster` key, else the default. The coordinator's own defaults are those of
/// `Coordinator.Options`; the launch's are below. The CURVE rules are checked here and nowhere
/// else.
struct ClusterLaunch {
    var options: Coordinator.Options
    /// Worker processes to start on this machine, and the threads of each (one BLAS thread each).
    var localWorkers: Int
    var threadsPerWorker: Int
    /// Workers to wait for before the first step, and for how long.
    var minWorkers: Int
    var startTimeout: Double

    static let defaultMinWorkers = 1
    static let defaultStartTimeout = 120.0

    init(flags: ClusterFlags, config: ClusterConfig, cores: Int) throws {
        localWorkers = flags.workers ?? config.workers ?? cores
        guard localWorkers >= 0 else { throw ValidationError("--workers must be 0 or more") }
        let bind = flags.bind ?? config.bind
        if localWorkers == 0 && bind == nil {
            throw ValidationError("--workers 0 needs --bind (or cluster.bind) so external workers can connect")
        }
        threadsPerWorker = config.threadsPerWorker ?? max(1, cores / max(localWorkers, 1))
        minWorkers = config.minWorkers ?? Self.defaultMinWorkers
        startTimeout = config.startTimeout ?? Self.defaultStartTimeout
        options = Coordinator.Options(endpoint: try bind ?? Endpoints.privateIPC())
        if let seconds = config.heartbeatTimeout { options.heartbeatTimeout = seconds }
        if let megabytes = config.maxMessageMB { options.maxMessageBytes = Int64(megabytes) << 20 }
        if let shared = config.sharedMemory { options.sharedMemory = shared }
        if let floor = config.taskTimeout { options.taskDeadlineFloor = floor }
        if let most = config.maxWorkers { options.maxWorkers = most }
        if let relays = config.relays { options.relays = relays }
        if let dealing = config.dealing { options.dealing = dealing }
        options.blasKernel = config.blasKernel
        if let family = config.blasKernel, localWorkers > 0, !BLASMachine.current.runnable.contains(family.rawValue) {
            throw ValidationError("cluster.blas_kernel: \(family.rawValue) (from the config, or kept in RUN_DIR/blas_kernel by the " +
                                  "run being resumed): this machine's CPU cannot run it (it can run " +
                                  BLASMachine.current.runnable.joined(separator: ", ") + "); name one of those to go on")
        }
        try readKeys(secret: flags.secretKey ?? config.secretKey, authorized: flags.authorizedKeys ?? config.authorizedKeys)
        if options.curve == nil, !Endpoints.isLoopback(options.endpoint), !(flags.insecure || config.insecure == true) {
            throw ValidationError("""
                binding \(options.endpoint) without CURVE lets anyone on the network read and join the run. Make keys with \
                'cohort keygen' and give --secret-key and --authorized-keys, or say --insecure
                """)
        }
        // Plain tcp, even on loopback, is open to every local process: workers show a token.
        if options.curve == nil && options.endpoint.hasPrefix("tcp://") { options.token = RunToken.make() }
    }

    /// CURVE needs both keys, or neither.
    mutating func readKeys(secret: String?, authorized: String?) throws {
        guard (secret == nil) == (authorized == nil) else {
            throw ValidationError("CURVE needs both --secret-key and --authorized-keys (or cluster.secret_key and cluster.authorized_keys)")
        }
        guard let secret, let authorized else { return }
        do {
            options.curve = try CurveKeyFile.readSecret(secret)
            options.authorizedKeys = try CurveKeyFile.readAuthorized(authorized)
        } catch {
            throw ValidationError("\(error)")
        }
    }

}

extension ClusterLaunch {
    /// Every `cluster` key with the value a run would use (for `cohort config --defaults`): the
    /// config's, else the default of the launch or of `Coordinator.Options`.
    static func everyKey(_ config: ClusterConfig, cores: Int) -> [(String, Node)] {
        let defaults = Coordinator.Options(endpoint: "")
        let workers = config.workers ?? cores
        func node<T>(_ v: T?) -> Node { v.map { Node("\($0)") } ?? Node("null") }
        return [("workers", node(workers)), ("min_workers", node(config.minWorkers ?? defaultMinWorkers)),
                ("threads_per_worker", node(config.threadsPerWorker ?? max(1, cores / max(workers, 1)))),
                ("bind", node(config.bind)), ("heartbeat_timeout", node(config.heartbeatTimeout ?? defaults.heartbeatTimeout)),
                ("max_message_mb", node(config.maxMessageMB ?? Int(defaults.maxMessageBytes >> 20))),
                ("start_timeout", node(config.startTimeout ?? defaultStartTimeout)),
                ("shared_memory", node(config.sharedMemory ?? defaults.sharedMemory)),
                ("task_timeout", node(config.taskTimeout ?? defaults.taskDeadlineFloor)),
                ("max_workers", node(config.maxWorkers ?? defaults.maxWorkers)),
                ("secret_key", node(config.secretKey)), ("authorized_keys", node(config.authorizedKeys)),
                ("insecure", node(config.insecure ?? false)), ("blas_kernel", node(config.blasKernel?.rawValue ?? "auto")),
                ("relays", node(config.relays ?? defaults.relays)), ("wire_dtype", node((config.wireDType ?? .fp32).rawValue)),
                ("dealing", node((config.dealing ?? defaults.dealing).rawValue))]
    }
}
