import Foundation

/// Writes a file so that a reader sees either the old contents or the new, never a mix:
/// temp file in the same directory, fsync, rename over the target, fsync the directory.
/// `durable: false` skips both fsyncs: still never torn for a reader, but a crash may lose the
/// newest version (for files rewritten often and derived from others, like a refreshed plot).
package enum AtomicFile {
    package static func write(_ data: Data, to path: String, durable: Bool = true) throws {
        let url = URL(fileURLWithPath: path)
        let directory = url.deletingLastPathComponent().path
        let temp = "\(directory)/.\(url.lastPathComponent).tmp-\(getpid())"
        let fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw POSIXFailure(call: "open", path: temp) }
        var failed: POSIXFailure?
        data.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = Foundation.write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 { if errno == EINTR { continue }; failed = POSIXFailure(call: "write", path: temp); return }
                offset += n
            }
        }
        if failed == nil && durable && fsync(fd) != 0 { failed = POSIXFailure(call: "fsync", path: temp) }
        close(fd)
        if let failed { unlink(temp); throw failed }
        guard rename(temp, path) == 0 else {
            let error = POSIXFailure(call: "rename", path: path)
            unlink(temp)
            throw error
        }
        guard durable else { return }
        let dirFD = open(directory.isEmpty ? "." : directory, O_RDONLY)
        if dirFD >= 0 { fsync(dirFD); close(dirFD) }
    }

    package static func write(_ text: String, to path: String, durable: Bool = true) throws {
        try write(Data(text.utf8), to: path, durable: durable)
    }
}

/// A failed system call, with errno and the file it was about.
package struct POSIXFailure: Error, CustomStringConvertible {
    package var call: String
    package var path: String
    package var code: Int32

    package init(call: String, path: String) {
        self.call = call; self.path = path; self.code = errno
    }

    package var description: String { "\(call)(\(path)) failed: \(String(cString: strerror(code))) (errno \(code))" }
}
