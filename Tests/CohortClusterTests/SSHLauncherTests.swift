import CohortTestSupport
import Foundation
import Testing

/// A real OpenSSH server on 127.0.0.1 for the test: its own host key, one client key made for
/// the test, and an ssh_config that makes three host aliases point at it.
final class SSHServer {
    let directory: URL
    let port: Int
    /// sshd, started with posix_spawn (see `run`).
    var pid: pid_t = 0

    var config: String { directory.appendingPathComponent("ssh_config").path }

    init() throws {
        directory = temporaryDirectory()
        port = 23000 + Int(getpid() % 10000)
        let d = directory.path
        for key in ["host_key", "client_key"] { try Self.run("/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", "\(d)/\(key)"]) }
        try FileManager.default.copyItem(atPath: "\(d)/client_key.pub", toPath: "\(d)/authorized_keys")
        try """
        Port \(port)
        ListenAddress 127.0.0.1
        HostKey \(d)/host_key
        PidFile \(d)/sshd.pid
        AuthorizedKeysFile \(d)/authorized_keys
        PasswordAuthentication no
        KbdInteractiveAuthentication no
        UsePAM no
        StrictModes no
        PermitRootLogin prohibit-password
        LogLevel ERROR
        """.write(toFile: "\(d)/sshd_config", atomically: true, encoding: .utf8)
        try """
        Host hostA hostB hostC
          HostName 127.0.0.1
          Port \(port)
          User \(ProcessInfo.processInfo.environment["USER"] ?? "root")
          IdentityFile \(d)/client_key
          IdentitiesOnly yes
          StrictHostKeyChecking no
          UserKnownHostsFile /dev/null
          LogLevel ERROR
        Host unreachable
          HostName 127.0.0.1
          Port 1
          ConnectTimeout 3
        """.write(toFile: "\(d)/ssh_config", atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: "/run/sshd", withIntermediateDirectories: true)
        pid = try Self.spawn("/usr/sbin/sshd", ["-D", "-e", "-f", "\(d)/sshd_config"])
        // Up when a connection gets through (or give up after 10 s).
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if (try? Self.run("/usr/bin/ssh", ["-F", config, "-o", "BatchMode=yes", "hostA", "true"])) != nil { return }
            usleep(100_000)
        }
        throw TestSetupError(description: "sshd did not come up on port \(port)")
    }

    deinit {
        kill(pid, SIGTERM)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
    }

    /// Runs a tool to its end, its output discarded (posix_spawn and waitpid: Foundation's
    /// Process was seen to wait for ever on an ssh that had already exited).
    @discardableResult
    static func run(_ tool: String, _ arguments: [String]) throws -> Int32 {
        let pid = try spawn(tool, arguments)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        guard status == 0 else { throw TestSetupError(description: "\(tool) exited with status \(status)") }
        return status
    }

    static func spawn(_ tool: String, _ arguments: [String], environment: [String: String]? = nil) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for fd: Int32 in [0, 1, 2] { posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", fd == 0 ? O_RDONLY : O_WRONLY, 0) }
        var argv: [UnsafeMutablePointer<CChar>?] = ([tool] + arguments).map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var pid: pid_t = 0
        var envp: [UnsafeMutablePointer<CChar>?] = (environment ?? ProcessInfo.processInfo.environment).map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for p in envp { free(p) } }
        // The test's threads may block signals, and a child inherits the mask: slurmd then
        // never sees the SIGTERM that stops it. Start every daemon with none blocked.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK))
        guard posix_spawn(&pid, tool, &actions, &attributes, &argv, &envp) == 0 else { throw TestSetupError(description: "cannot start \(tool)") }
        return pid
    }
}

@Suite(.serialized) struct SSHLauncherTests {
    /// cluster/launch.sh with a hosts file of three aliases of a real sshd: every host gets its
    /// workers (the old script gave the first host all it had and stopped), they join a CURVE
    /// coordinator, and an unreachable host is named with exit status 1.
    @Test func everyHostOfAHostsFileGetsItsWorkers() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/sshd") else {
            Issue.record("openssh-server is not installed (make test installs it)")
            return
        }
        let server = try SSHServer()
        let dir = temporaryDirectory()
        let keys = dir.appendingPathComponent("keys").path
        for name in ["coordinator", "workers/lab"] { #expect(try runCohort(["keygen", "\(keys)/\(name)"]).status == 0) }
        let port = 24000 + Int(getpid() % 10000)
        let run = dir.appendingPathComponent("run").path
        let coordinator = try startCohort(["train", "configs/quickstart.yaml", "--bind", "tcp://127.0.0.1:\(port)", "--workers", "0",
                                           "--run-dir", run, "--quiet", "--secret-key", "\(keys)/coordinator.key_secret",
                                           "--authorized-keys", "\(keys)/workers", "--set", "cluster.min_workers=4",
                                           "--set", "cluster.start_timeout=60", "--set", "training.steps=200"],
                                          log: dir.appendingPathComponent("coordinator.log"))
        let hosts = dir.appendingPathComponent("hosts")
        try "# three machines\nhostA:2\nhostB\nhostC:1\n".write(to: hosts, atomically: true, encoding: .utf8)
        let launch = try runLauncher([hosts.path, "tcp://127.0.0.1:\(port)", "--ssh-config", server.config, "--config",
                                      packageRoot.appendingPathComponent("configs/quickstart.yaml").path,
                                      "--server-key", "\(keys)/coordinator.key", "--secret-key", "\(keys)/workers/lab.key_secret"])
        #expect(launch.status == 0, "\(launch.output)")
        for host in ["2 worker(s) on hostA", "1 worker(s) on hostB", "1 worker(s) on hostC"] { #expect(launch.output.contains(host), "\(launch.output)") }
        coordinator.waitUntilExit()
        let log = (try? String(contentsOf: dir.appendingPathComponent("coordinator.log"), encoding: .utf8)) ?? ""
        #expect(coordinator.terminationStatus == 0, "\(log)")
        let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(run)/summary.json"))) as! [String: Any]
        #expect((summary["workers"] as? [Any])?.count == 4)

        try "hostA\nunreachable:2\nhostC\n".write(to: hosts, atomically: true, encoding: .utf8)
        let partial = try runLauncher([hosts.path, "tcp://127.0.0.1:1", "--ssh-config", server.config])
        #expect(partial.status == 1 && partial.output.contains("cannot start workers on unreachable")
                && partial.output.contains("on hostC"), "\(partial.output)")
    }

    func runLauncher(_ arguments: [String]) throws -> (status: Int32, output: String) {
        var environment = childEnvironment
        environment["COHORT"] = try cohortExecutable().path
        return try runTool(packageRoot.appendingPathComponent("cluster/launch.sh"), arguments, environment: environment)
    }
}
