import CFutex
import Foundation
import ZeroMQ

/// Messages between the coordinator and a worker on its own machine, through shared memory.
///
/// Every ZeroMQ message crosses two I/O threads (the sender's and the receiver's) before the
/// receiving thread wakes: about 0.1–0.15 ms each way on this project's VM, three or four times
/// a step. A worker on the coordinator's machine already reads the weights from /dev/shm and
/// writes its gradients there; its TASK and RESULT messages now go there too: the sender copies
/// the message's frames into a box and rings the receiver's doorbell (a futex word), and the
/// receiver parses them exactly as frames from the socket. ZeroMQ stays for everything else
/// (HELLO, WELCOME, heartbeats, SHUTDOWN), for messages that do not fit, and for remote workers.
///
/// A box holds one message: the sender uses it only when the receiver has taken the last one,
/// and sends by ZeroMQ otherwise. Each box has one writer and one reader.
final class LocalMailbox: @unchecked Sendable {
    /// Bytes per direction; a TASK of a few thousand sample indices fits.
    static let boxBytes = 1 << 16
    /// Box header: posted (u32), taken (u32), length (u32), then the frames from byte 16.
    static let headerBytes = 16

    let memory: SharedMemory
    /// Coordinator → worker, and worker → coordinator.
    let down: Box, up: Box
    /// The worker's doorbell: rung for every message the coordinator sends it, either way.
    let workerBell: Doorbell

    /// Creates (coordinator) or opens (worker) the mailbox file at `path`.
    init(path: String, create: Bool) throws {
        // Two boxes and a 64-byte line for the worker's doorbell.
        memory = try SharedMemory(path: path, floats: (2 * Self.boxBytes + 64) / 4, create: create)
        down = Box(memory.base)
        up = Box(memory.base + Self.boxBytes)
        workerBell = Doorbell(memory.base + 2 * Self.boxBytes)
    }

    var path: String { memory.path }

    /// One direction: a message at a time, written by one side and taken by the other.
    struct Box {
        let base: UnsafeMutableRawPointer
        init(_ base: UnsafeMutableRawPointer) { self.base = base }

        var posted: UnsafeMutablePointer<UInt32> { base.assumingMemoryBound(to: UInt32.self) }
        var taken: UnsafeMutablePointer<UInt32> { (base + 4).assumingMemoryBound(to: UInt32.self) }
        var length: UnsafeMutablePointer<UInt32> { (base + 8).assumingMemoryBound(to: UInt32.self) }
        var payload: UnsafeMutableRawPointer { base + LocalMailbox.headerBytes }
        static var capacity: Int { LocalMailbox.boxBytes - LocalMailbox.headerBytes }

        /// Puts the message's frames in the box: false when the box still holds the last one,
        /// or the frames do not fit (send them by ZeroMQ then).
        func post(_ frames: [OutgoingFrame]) -> Bool {
            let sequence = cohort_load_acquire(posted)
            guard cohort_load_acquire(taken) == sequence else { return false }
            let size = 4 + frames.reduce(0) { $0 + 4 + $1.count }
            guard size <= Self.capacity else { return false }
            var at = payload
            at.storeBytes(of: UInt32(frames.count).littleEndian, as: UInt32.self)
            at += 4
            for frame in frames {
                at.storeBytes(of: UInt32(frame.count).littleEndian, as: UInt32.self)
                at += 4
                frame.withUnsafeBytes { bytes in
                    if let source = bytes.baseAddress, bytes.count > 0 { at.copyMemory(from: source, byteCount: bytes.count) }
                }
                at += frame.count
            }
            length.pointee = UInt32(size)
            cohort_store_release(posted, sequence &+ 1)  // publishes the bytes above
            return true
        }

        /// The frames of the message waiting in the box (nil when there is none), copied out;
        /// the box is then free for the next one. Lengths are checked before anything is read.
        func take() throws(ProtocolError) -> [ZMQFrame]? {
            let sequence = cohort_load_acquire(posted)
            guard sequence != cohort_load_acquire(taken) else { return nil }
            defer { cohort_store_release(taken, sequence) }
            let size = Int(length.pointee)
            guard size >= 4, size <= Self.capacity else { throw ProtocolError("mailbox message of \(size) bytes") }
            var at = 0
            func u32() throws(ProtocolError) -> Int {
                guard at + 4 <= size else { throw ProtocolError("mailbox message cut short") }
                defer { at += 4 }
                return Int(UInt32(littleEndian: payload.loadUnaligned(fromByteOffset: at, as: UInt32.self)))
            }
            let count = try u32()
            guard count <= 4096 else { throw ProtocolError("mailbox message of \(count) frames") }
            var frames: [ZMQFrame] = []
            for _ in 0..<count {
                let bytes = try u32()
                guard bytes <= size - at else { throw ProtocolError("mailbox frame of \(bytes) bytes past the message") }
                frames.append(ZMQFrame(copying: UnsafeRawBufferPointer(start: payload + at, count: bytes)))
                at += bytes
            }
            return frames
        }
    }
}

/// A futex word in shared memory: the side that waits reads `value`, looks for work, and sleeps
/// only if the word still holds that value; the other side rings it after posting work.
final class Doorbell: @unchecked Sendable {
    let word: UnsafeMutablePointer<UInt32>
    /// Keeps the mapping of the word alive.
    let owner: AnyObject?

    init(_ address: UnsafeMutableRawPointer, owner: AnyObject? = nil) {
        word = address.assumingMemoryBound(to: UInt32.self)
        self.owner = owner
    }

    /// A doorbell of its own in /dev/shm (the coordinator's, which all its local workers ring).
    convenience init(path: String, create: Bool) throws {
        let memory = try SharedMemory(path: path, floats: 16, create: create)
        self.init(memory.base, owner: memory)
    }

    var path: String? { (owner as? SharedMemory)?.path }

    var value: UInt32 { cohort_load_acquire(word) }

    func ring() {
        _ = cohort_add(word, 1)
        cohort_futex_wake(word)
    }

    /// Sleeps until the word differs from `seen` (a ring since it was read), at most `timeout` seconds.
    func wait(seen: UInt32, timeout: Double) {
        guard value == seen else { return }
        cohort_futex_wait(word, seen, Int(max(0, timeout) * 1e9))
    }
}
