import CohortTensor
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A file in /dev/shm mapped into memory. Workers on the coordinator's own machine exchange
/// weights and gradients through these instead of copying megabytes through sockets on every
/// step; the ZeroMQ messages then only say what is where. (Workers elsewhere get the frames.)
final class SharedMemory: @unchecked Sendable {
    let path: String
    let floats: Int
    let base: UnsafeMutableRawPointer
    let owner: Bool

    /// Creates (owner) or opens a mapping of `floats` Float32 values.
    init(path: String, floats: Int, create: Bool) throws {
        let bytes = max(floats, 1) * 4
        let fd = create ? open(path, O_RDWR | O_CREAT | O_EXCL, 0o600) : open(path, O_RDWR)
        guard fd >= 0 else { throw ClusterError("cannot \(create ? "create" : "open") \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        if create {
            guard ftruncate(fd, off_t(bytes)) == 0 else {
                unlink(path)
                throw ClusterError("cannot size \(path): \(String(cString: strerror(errno)))")
            }
        } else {
            var info = stat()
            guard fstat(fd, &info) == 0, Int(info.st_size) >= bytes else { throw ClusterError("\(path) is smaller than \(bytes) bytes") }
        }
        guard let p = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), p != MAP_FAILED else {
            if create { unlink(path) }
            throw ClusterError("cannot map \(path): \(String(cString: strerror(errno)))")
        }
        self.path = path; self.floats = floats; base = p; owner = create
    }

    deinit {
        munmap(base, max(floats, 1) * 4)
        if owner { unlink(path) }
    }

    /// Tensors of `shapes` laid end to end from float offset `offset`, borrowing the mapping.
    func tensors(at offset: Int, shapes: [[Int]]) -> [Tensor] {
        var at = offset
        return shapes.map { shape in
            defer { at += shape.reduce(1, *) }
            return Tensor(borrowing: base + 4 * at, shape: shape, owner: self)
        }
    }

    /// Copies tensors in end to end from float offset `offset` (a tensor already there, borrowing
    /// this mapping, is not copied onto itself).
    func write(_ tensors: [Tensor], at offset: Int) {
        var at = offset
        for t in tensors {
            t.withUnsafeBufferPointer { src in
                if let s = src.baseAddress, UnsafeRawPointer(s) != UnsafeRawPointer(base + 4 * at) {
                    (base + 4 * at).copyMemory(from: s, byteCount: src.count * 4)
                }
            }
            at += t.count
        }
    }

    /// Whether `tensors` are this mapping's memory, end to end from float offset `offset`.
    func holds(_ tensors: [Tensor], at offset: Int) -> Bool {
        var at = offset
        for t in tensors {
            let same = t.withUnsafeBufferPointer { UnsafeRawPointer($0.baseAddress) == UnsafeRawPointer(base + 4 * at) }
            guard same else { return false }
            at += t.count
        }
        return !tensors.isEmpty
    }

    /// Removes /dev/shm/cohort-<pid>-… files whose coordinator process is gone (killed before it
    /// could clean up). Files of live coordinators are left alone.
    static func removeOrphans(directory: String = "/dev/shm") {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return }
        for name in names where name.hasPrefix("cohort-") {
            guard let pid = Int32(name.dropFirst(7).prefix { $0.isNumber }), pid > 0 else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH { unlink("\(directory)/\(name)") }
        }
    }

    /// Identifies this machine (and boot), so coordinator and worker can tell they share /dev/shm.
    /// The network namespace is part of it: a namespace with links of its own stands for another
    /// machine (the rehearsal and the LAN bench), so its tensors cross those links as frames.
    static var machineID: String {
        let boot = (try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        let network = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/net")) ?? ""
        return boot.isEmpty ? "" : "\(ProcessInfo.processInfo.hostName)/\(boot)/\(network)"
    }
}
