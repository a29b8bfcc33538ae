import CZeroMQ
import Foundation

/// A failed libzmq call: which call, its errno and libzmq's text for it.
package struct ZMQError: Error, CustomStringConvertible, Sendable {
    package let call: String
    package let code: Int32

    init(_ call: String) {
        self.call = call
        code = zmq_errno()
    }

    package var isTimeout: Bool { code == EAGAIN }
    package var description: String { "\(call) failed: \(String(cString: zmq_strerror(code))) (errno \(code))" }
}

/// A libzmq context. Sockets keep their context alive, so it is terminated only after the last
/// socket is closed and released (zmq_ctx_term would block while one is open).
package final class ZMQContext: @unchecked Sendable {
    let handle: UnsafeMutableRawPointer
    private var terminated = false

    /// `ioThreads`: libzmq's background I/O threads (large transfers to several peers run in
    /// parallel with more than one).
    package init(ioThreads: Int = 1) throws(ZMQError) {
        guard let h = zmq_ctx_new() else { throw ZMQError("zmq_ctx_new") }
        handle = h
        ZeroCopy.installHook()
        if ioThreads != 1 { zmq_ctx_set(h, ZMQ_IO_THREADS, Int32(ioThreads)) }
    }

    deinit { terminate() }

    /// Waits until every socket of the context is closed and what they queued has gone out (or
    /// their linger has passed). Called once; later calls do nothing.
    package func terminate() {
        guard !terminated else { return }
        terminated = true
        while zmq_ctx_term(handle) != 0 && zmq_errno() == EINTR {}
    }

    /// Whether libzmq was built with a capability ("curve", "ipc", ...).
    package static func has(_ capability: String) -> Bool { zmq_has(capability) == 1 }

    package static var version: String {
        var major: Int32 = 0, minor: Int32 = 0, patch: Int32 = 0
        zmq_version(&major, &minor, &patch)
        return "\(major).\(minor).\(patch)"
    }
}

package enum SocketType: Int32, Sendable {
    case router, dealer, pair, rep

    var raw: Int32 {
        switch self {
        case .router: ZMQ_ROUTER
        case .dealer: ZMQ_DEALER
        case .pair: ZMQ_PAIR
        case .rep: ZMQ_REP
        }
    }
}

/// One received frame. It owns its zmq_msg_t and closes it on release, so its bytes can only be
/// read while the frame exists; callers copy out what they keep.
package final class ZMQFrame: @unchecked Sendable {
    var message = zmq_msg_t()

    init() { zmq_msg_init(&message) }
    deinit { zmq_msg_close(&message) }

    /// A frame holding a copy of `bytes`, for a message that came another way (shared memory)
    /// to go through the same parsing as the ones from the socket.
    package init(copying bytes: UnsafeRawBufferPointer) {
        zmq_msg_init_size(&message, bytes.count)
        if let source = bytes.baseAddress, bytes.count > 0 { zmq_msg_data(&message).copyMemory(from: source, byteCount: bytes.count) }
    }

    package var count: Int { zmq_msg_size(&message) }

    package func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: zmq_msg_data(&message), count: zmq_msg_size(&message)))
    }

    package var bytes: [UInt8] { withUnsafeBytes { Array($0) } }

    /// The frame's memory, for tensors that borrow it (they retain the frame).
    package var mutableBaseAddress: UnsafeMutableRawPointer? { zmq_msg_data(&message) }
}

/// What a frame to send is made of: bytes copied into the message, or a buffer sent without a
/// copy (the owner is retained until libzmq has finished with the memory).
package enum OutgoingFrame {
    case bytes([UInt8])
    case zeroCopy(UnsafeRawBufferPointer, owner: AnyObject)

    package var count: Int {
        switch self {
        case .bytes(let b): b.count
        case .zeroCopy(let p, _): p.count
        }
    }

    package func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        switch self {
        case .bytes(let b): try b.withUnsafeBytes(body)
        case .zeroCopy(let p, _): try body(p)
        }
    }
}

/// Keeps owners of zero-copy buffers alive until libzmq's free callback.
enum ZeroCopy {
    static let installOnce: Void = {
        cohort_zmq_set_release_hook { hint in
            guard let hint else { return }
            Unmanaged<AnyObject>.fromOpaque(hint).release()
        }
    }()
    static func installHook() { _ = installOnce }
}

/// A socket with one owner. `close()` may be called any number of times; deinit closes too.
package final class ZMQSocket: @unchecked Sendable {
    package let context: ZMQContext
    package let type: SocketType
    private var handle: UnsafeMutableRawPointer?

    package init(_ context: ZMQContext, _ type: SocketType) throws(ZMQError) {
        guard let h = zmq_socket(context.handle, type.raw) else { throw ZMQError("zmq_socket") }
        self.context = context
        self.type = type
        handle = h
        // Never block forever in close: drop unsent messages after one second.
        try set(ZMQ_LINGER, Int32(1000))
    }

    deinit { close() }

    package func close() {
        guard let h = handle else { return }
        handle = nil
        zmq_close(h)
    }

    var socket: UnsafeMutableRawPointer {
        get throws(ZMQError) {
            guard let handle else { errno = ENOTSOCK; throw ZMQError("use of a closed socket") }
            return handle
        }
    }

    package func set(_ option: Int32, _ value: Int32) throws(ZMQError) {
        var v = value
        guard zmq_setsockopt(try socket, option, &v, MemoryLayout<Int32>.size) == 0 else { throw ZMQError("zmq_setsockopt(\(option))") }
    }

    func set64(_ option: Int32, _ value: Int64) throws(ZMQError) {
        var v = value
        guard zmq_setsockopt(try socket, option, &v, MemoryLayout<Int64>.size) == 0 else { throw ZMQError("zmq_setsockopt(\(option))") }
    }

    package func set(_ option: Int32, bytes: [UInt8]) throws(ZMQError) {
        let s = try socket
        guard bytes.withUnsafeBytes({ zmq_setsockopt(s, option, $0.baseAddress, $0.count) }) == 0 else {
            throw ZMQError("zmq_setsockopt(\(option))")
        }
    }

    /// Rejects (and disconnects) any peer sending a message larger than this, before allocating it.
    package func setMaximumMessageSize(_ bytes: Int64) throws(ZMQError) { try set64(ZMQ_MAXMSGSIZE, bytes) }

    /// A send that cannot be queued within this time fails with EAGAIN (`isTimeout`) instead of
    /// blocking for ever (a DEALER with no connected peer blocks).
    package func setSendTimeout(_ seconds: Double) throws(ZMQError) { try set(ZMQ_SNDTIMEO, Int32(min(seconds * 1000, 2e9))) }

    /// Queue messages only to connections whose handshake completed, so a message is never left
    /// in the pipe of a connection that failed (wrong or missing CURVE keys).
    package func setImmediate() throws(ZMQError) { try set(ZMQ_IMMEDIATE, Int32(1)) }

    /// ROUTER: a send to a peer that is not connected fails (EHOSTUNREACH) instead of vanishing.
    package func setRouterMandatory() throws(ZMQError) { try set(ZMQ_ROUTER_MANDATORY, Int32(1)) }

    package func bind(_ endpoint: String) throws(ZMQError) {
        guard zmq_bind(try socket, endpoint) == 0 else { throw ZMQError("zmq_bind(\(endpoint))") }
    }

    package func connect(_ endpoint: String) throws(ZMQError) {
        guard zmq_connect(try socket, endpoint) == 0 else { throw ZMQError("zmq_connect(\(endpoint))") }
    }

    /// The endpoint actually bound (with the port the OS chose for tcp://…:*).
    package var lastEndpoint: String {
        get throws(ZMQError) {
            var buffer = [CChar](repeating: 0, count: 512)
            var size = buffer.count
            guard zmq_getsockopt(try socket, ZMQ_LAST_ENDPOINT, &buffer, &size) == 0 else { throw ZMQError("zmq_getsockopt(LAST_ENDPOINT)") }
            return buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        }
    }

    /// Sends a multipart message. Returns the number of bytes sent. With `wait: false` a message
    /// that cannot be queued at once fails with EAGAIN (`isTimeout`) instead of waiting for the
    /// send timeout (a message is queued whole or not at all).
    @discardableResult
    package func send(_ frames: [OutgoingFrame], wait: Bool = true) throws(ZMQError) -> Int {
        let s = try socket
        var total = 0
        for (i, frame) in frames.enumerated() {
            let more = (i < frames.count - 1 ? ZMQ_SNDMORE : 0) | (wait ? 0 : ZMQ_DONTWAIT)
            var message = zmq_msg_t()
            switch frame {
            case .bytes(let bytes):
                guard zmq_msg_init_size(&message, bytes.count) == 0 else { throw ZMQError("zmq_msg_init_size") }
                if !bytes.isEmpty { bytes.withUnsafeBytes { _ = memcpy(zmq_msg_data(&message), $0.baseAddress!, $0.count) } }
            case let .zeroCopy(buffer, owner):
                let hint = Unmanaged.passRetained(owner).toOpaque()
                let data = UnsafeMutableRawPointer(mutating: buffer.baseAddress ?? UnsafeRawPointer(hint))
                guard cohort_zmq_msg_init_data(&message, data, buffer.count, hint) == 0 else {
                    Unmanaged<AnyObject>.fromOpaque(hint).release()
                    throw ZMQError("zmq_msg_init_data")
                }
            }
            var rc: Int32
            repeat { rc = zmq_msg_send(&message, s, Int32(more)) } while rc < 0 && zmq_errno() == EINTR
            if rc < 0 {
                let error = ZMQError("zmq_msg_send")
                zmq_msg_close(&message)
                throw error
            }
            total += frame.count
        }
        return total
    }

    /// Waits up to `timeout` seconds (nil: forever) for a message; nil when none came in time.
    package func receive(timeout: Double?) throws(ZMQError) -> [ZMQFrame]? {
        guard try poll(timeout: timeout) else { return nil }
        return try receiveNow()
    }

    /// True when a message can be read within `timeout` seconds.
    package func poll(timeout: Double?) throws(ZMQError) -> Bool {
        var item = zmq_pollitem_t(socket: try socket, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0)
        let ms = timeout.map { Int(max(0, $0) * 1000) } ?? -1
        while true {
            let rc = zmq_poll(&item, 1, ms)
            if rc < 0 { if zmq_errno() == EINTR { continue }; throw ZMQError("zmq_poll") }
            return rc > 0
        }
    }

    /// Which of `sockets` have a message to read, waiting up to `timeout` seconds (nil: forever)
    /// for the first one.
    package static func poll(_ sockets: [ZMQSocket], timeout: Double?) throws(ZMQError) -> [Bool] {
        var items: [zmq_pollitem_t] = []
        for socket in sockets { items.append(zmq_pollitem_t(socket: try socket.socket, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0)) }
        let ms = timeout.map { Int(max(0, $0) * 1000) } ?? -1
        while true {
            let rc = zmq_poll(&items, Int32(items.count), ms)
            if rc < 0 { if zmq_errno() == EINTR { continue }; throw ZMQError("zmq_poll") }
            return items.map { $0.revents & Int16(ZMQ_POLLIN) != 0 }
        }
    }

    /// Reads every frame of one message that is ready.
    package func receiveNow() throws(ZMQError) -> [ZMQFrame] {
        let s = try socket
        var frames: [ZMQFrame] = []
        while true {
            let frame = ZMQFrame()
            var rc: Int32
            repeat { rc = zmq_msg_recv(&frame.message, s, 0) } while rc < 0 && zmq_errno() == EINTR
            guard rc >= 0 else { throw ZMQError("zmq_msg_recv") }
            frames.append(frame)
            // Ask "more?" of the frame just read, while it is still open.
            guard zmq_msg_more(&frame.message) != 0 else { return frames }
        }
    }
}
