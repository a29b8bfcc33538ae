import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Endpoints whose traffic cannot leave this machine, where plain ZeroMQ is acceptable.
package enum Endpoints {
    package static func isLoopback(_ endpoint: String) -> Bool {
        if endpoint.hasPrefix("ipc://") || endpoint.hasPrefix("inproc://") { return true }
        guard endpoint.hasPrefix("tcp://") else { return false }
        var host = String(endpoint.dropFirst(6))
        if host.hasPrefix("["), let close = host.firstIndex(of: "]") {
            host = String(host[host.index(after: host.startIndex)..<close])
        } else if let colon = host.lastIndex(of: ":") {
            host = String(host[..<colon])
        }
        // A "tcp://eth0;…" source form or an interface name is not loopback unless it is "lo".
        return host == "localhost" || host == "::1" || host == "lo" || host.hasPrefix("127.")
    }
}

extension Endpoints {
    /// A fresh ipc:// endpoint for one run, in a directory only this user may enter (mode 0700),
    /// so no other user's process can connect; sockets left by coordinators that died are
    /// removed first.
    package static func privateIPC(base: String = NSTemporaryDirectory()) throws -> String {
        let directory = URL(fileURLWithPath: base).appendingPathComponent("cohort-\(getuid())").path
        if mkdir(directory, 0o700) != 0 && errno != EEXIST {
            throw ClusterError("cannot create \(directory): \(String(cString: strerror(errno)))")
        }
        var info = stat()
        guard lstat(directory, &info) == 0, info.st_mode & S_IFMT == S_IFDIR, info.st_uid == getuid() else {
            throw ClusterError("\(directory) is not a directory of this user; remove it")
        }
        if info.st_mode & 0o077 != 0 { chmod(directory, 0o700) }
        removeStaleSockets(in: directory)
        return "ipc://\(directory)/\(getpid())-\(UInt32.random(in: 0...UInt32.max)).ipc"
    }

    /// Sockets named <pid>-….ipc whose process is gone.
    static func removeStaleSockets(in directory: String) {
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] where name.hasSuffix(".ipc") {
            guard let pid = Int32(name.prefix { $0 != "-" }), kill(pid, 0) != 0 && errno == ESRCH else { continue }
            unlink("\(directory)/\(name)")
        }
    }
}
