import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A secret of one run, for coordinators bound to plain tcp: any local process can connect to a
/// loopback port, so a worker must show the token to join. Local workers get it in their
/// environment (`COHORT_RUN_TOKEN`); others read `RUN_DIR/workers/token` (mode 0600).
package enum RunToken {
    package static let environmentKey = "COHORT_RUN_TOKEN"

    /// 32 random bytes as hex.
    package static func make() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<4).map { _ in String(format: "%016llx", generator.next() as UInt64) }.joined()
    }

    /// Writes the token where only this user can read it.
    package static func write(_ token: String, to path: String) throws {
        unlink(path)
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ClusterError("cannot create \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let bytes = Array((token + "\n").utf8)
        guard Glibc.write(fd, bytes, bytes.count) == bytes.count else { throw ClusterError("cannot write \(path): \(String(cString: strerror(errno)))") }
    }

    /// A token file's token.
    package static func read(_ path: String) throws -> String {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw ClusterError("cannot read the token file \(path)") }
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Compares without stopping at the first difference, so the time taken tells nothing.
    package static func equal(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        guard x.count == y.count else { return false }
        return zip(x, y).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }
}
