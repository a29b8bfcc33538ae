import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Worker processes spawned on this machine: copies of the same executable running
/// `cohort worker --connect …`, each logging to its own file in the run directory.
package final class LocalWorkers {
    package private(set) var pids: [pid_t] = []
    private var exited: Set<pid_t> = []
    private var logs: [pid_t: String] = [:]
    package let logDirectory: String

    package var count: Int { pids.count }
    package var running: Int { pids.count - exited.count }

    /// Spawns `count` workers: `executable worker --connect endpoint --threads t --config c --parent pid`.
    package init(count: Int, executable: String, endpoint: String, threads: Int, dataConfig: String?, logDirectory: String,
                extraArguments: [String] = [], environment: [String: String] = [:]) throws {
        self.logDirectory = logDirectory
        try FileManager.default.createDirectory(atPath: logDirectory, withIntermediateDirectories: true)
        for i in 0..<count {
            var arguments = [executable, "worker", "--connect", endpoint, "--threads", "\(threads)", "--parent", "\(getpid())"]
            if let dataConfig { arguments += ["--config", dataConfig] }
            arguments += extraArguments
            let log = "\(logDirectory)/worker-\(i + 1).log"
            let pid = try Self.spawn(arguments, log: log, environment: environment)
            pids.append(pid)
            logs[pid] = log
        }
    }

    deinit { terminateAll() }

    /// Starts one worker; `environment` is added to this process's.
    static func spawn(_ arguments: [String], log: String, environment: [String: String]) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        // A process group of its own: Ctrl-C at the terminal goes to the coordinator alone, which
        // finishes the step with its workers and then tells them to stop.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP))
        posix_spawnattr_setpgroup(&attributes, 0)
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var merged = ProcessInfo.processInfo.environment
        merged.merge(environment) { _, new in new }
        var envp: [UnsafeMutablePointer<CChar>?] = merged.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for p in envp { free(p) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, arguments[0], &actions, &attributes, &argv, &envp)
        guard rc == 0 else { throw ClusterError("cannot start a worker (\(arguments[0])): \(String(cString: strerror(rc)))") }
        return pid
    }

    /// Workers that exited since the last call (reaped, so no zombies remain), with the crash
    /// that ended them: a trap or abort (a failed precondition, a bad access), not a kill.
    func reapExited() -> [(pid: pid_t, crash: String?)] {
        var gone: [(pid_t, String?)] = []
        for pid in pids where !exited.contains(pid) {
            var status: Int32 = 0
            guard waitpid(pid, &status, WNOHANG) == pid else { continue }
            exited.insert(pid)
            // WTERMSIG by hand (Swift does not import the macro).
            let signal = status & 0x7f
            let crashes = [SIGILL, SIGTRAP, SIGABRT, SIGSEGV, SIGBUS, SIGFPE]
            gone.append((pid, crashes.contains(signal) ? "signal \(signal)" : nil))
        }
        return gone
    }

    /// The last lines a worker wrote to its log.
    func logTail(of pid: pid_t, lines: Int = 4) -> String {
        guard let path = logs[pid], let text = try? String(contentsOfFile: path, encoding: .utf8) else { return "(no log)" }
        return text.split(separator: "\n").suffix(lines).map { "  " + $0 }.joined(separator: "\n") + "\n  (\(path))"
    }

    /// Waits up to `timeout` seconds for every worker to exit, then kills the rest.
    func waitForExit(timeout: Double) {
        let deadline = Date().addingTimeInterval(timeout)
        while running > 0 && Date() < deadline {
            _ = reapExited()
            if running > 0 { usleep(20_000) }
        }
        terminateAll()
    }

    func terminateAll() {
        for pid in pids where !exited.contains(pid) {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
            exited.insert(pid)
        }
    }

    /// The path of the running executable, so workers run the same build.
    package static var currentExecutable: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }
}
