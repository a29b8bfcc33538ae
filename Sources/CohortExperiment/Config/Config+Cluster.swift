import CohortTensor
import CohortTraining
import Foundation

/// `cluster:` — what the file says about local workers, the endpoint for others, liveness and
/// keys. Every value is optional here: the defaults live once, with what they configure (the
/// coordinator's options, the CLI's cluster launch), and flags given to `cohort train` win.
package struct ClusterConfig: Sendable {
    /// Local worker processes to spawn.
    package var workers: Int?
    /// Wait for this many workers before training starts.
    package var minWorkers: Int?
    /// Threads per local worker (each computes whole micro-batches with one BLAS thread).
    package var threadsPerWorker: Int?
    /// Endpoint to bind for external workers (tcp://host:port).
    package var bind: String?
    /// Seconds of silence after which a worker is declared dead and its work reassigned.
    package var heartbeatTimeout: Double?
    /// Largest message accepted, in megabytes (ZMQ_MAXMSGSIZE), checked before allocation.
    package var maxMessageMB: Int?
    /// Seconds to wait for the first `min_workers` workers.
    package var startTimeout: Double?
    /// Exchange weights and gradients with workers on this machine through /dev/shm.
    package var sharedMemory: Bool?
    /// The least time a task may take before it goes to another worker (seconds).
    package var taskTimeout: Double?
    /// The most workers the run takes.
    package var maxWorkers: Int?
    /// CURVE: the coordinator's .key_secret file and the workers' public keys (a .key file or
    /// a directory of them).
    package var secretKey: String?
    package var authorizedKeys: String?
    /// Allow a non-loopback bind without CURVE.
    package var insecure: Bool?
    /// The OpenBLAS kernel family every worker runs (nil: `auto`, chosen at start).
    package var blasKernel: BLASFamily?
    /// Workers across the network relay weights and gradients for each other.
    package var relays: Bool?
    /// The precision gradients and weights travel in (and are rounded to, everywhere, so the
    /// weights stay the same bits for any placement): fp32 (nil) or bf16.
    package var wireDType: WireDType?
    /// How a relayed step's micro-batches are dealt to the workers (nil: auto).
    package var dealing: Dealing?
}

extension ExperimentConfig {
    static func readCluster(_ node: ConfigNode?) throws(ConfigError) -> ClusterConfig {
        for key in ["secret_key", "authorized_keys"] {
            if let item = try node?.optional(key), !FileManager.default.fileExists(atPath: try item.string()) {
                throw item.error("no such file or directory: \(try item.string())")
            }
        }
        return ClusterConfig(
            workers: try node?.optional("workers")?.int(min: 0, max: 256),
            minWorkers: try node?.optional("min_workers")?.int(min: 1, max: 256),
            threadsPerWorker: try node?.optional("threads_per_worker")?.int(min: 1, max: 256),
            bind: try node?.optional("bind")?.string(),
            heartbeatTimeout: try node?.optional("heartbeat_timeout")?.double(min: 0.1),
            maxMessageMB: try node?.optional("max_message_mb")?.int(min: 1),
            startTimeout: try node?.optional("start_timeout")?.double(min: 0.1),
            sharedMemory: try node?.optional("shared_memory")?.bool(),
            taskTimeout: try node?.optional("task_timeout")?.double(min: 0.1),
            maxWorkers: try node?.optional("max_workers")?.int(min: 1, max: 4096),
            secretKey: try node?.optional("secret_key")?.string(),
            authorizedKeys: try node?.optional("authorized_keys")?.string(),
            insecure: try node?.optional("insecure")?.bool(),
            blasKernel: try readBLASKernel(node?.optional("blas_kernel")),
            relays: try node?.optional("relays")?.bool(),
            wireDType: try node?.optional("wire_dtype")?.choice(WireDType.self),
            dealing: try node?.optional("dealing")?.choice(Dealing.self))
    }

    /// `auto`, or the name of a family (BLASFamily), which pins it.
    static func readBLASKernel(_ node: ConfigNode?) throws(ConfigError) -> BLASFamily? {
        guard let node, try node.string() != "auto" else { return nil }
        let name = try node.string(), names = ["auto"] + BLASFamily.allCases.map(\.rawValue)
        if let family = BLASFamily(rawValue: name) { return family }
        var message = "unknown BLAS kernel family '\(name)'"
        if let suggestion = closest(to: name, among: names) { message += "; did you mean '\(suggestion)'?" }
        throw node.error(message + " (choose from \(names.joined(separator: ", ")))")
    }
}
