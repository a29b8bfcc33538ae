import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A file that only grows, one whole record at a time (metrics.jsonl, TensorBoard events). A
/// write that fails (a full disk) throws the path and the error, and cuts the file back to its
/// last whole record, so what was written before stays readable. (FileHandle.write traps on
/// such an error instead.)
package final class AppendFile {
    package let path: String
    private let fd: Int32

    package init(path: String) throws {
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw POSIXFailure(call: "open", path: path) }
        self.path = path
    }

    deinit { close(fd) }

    package func append(_ bytes: [UInt8]) throws {
        let start = lseek(fd, 0, SEEK_END)
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + written, bytes.count - written) }
            if n < 0 {
                if errno == EINTR { continue }
                let failure = POSIXFailure(call: "write", path: path)
                if start >= 0 { _ = ftruncate(fd, start) }
                throw failure
            }
            written += n
        }
    }

    package func append(_ text: String) throws { try append(Array(text.utf8)) }
}
