/// HELLO, worker → coordinator: who it is and which datasets it holds.
struct Hello: Sendable, Equatable {
    var threads: Int
    var host: String
    var pid: Int
    var fingerprints: [String]
    /// Host and boot id: equal to the coordinator's when both can share /dev/shm.
    var machineID: String = ""
    /// The run's token, which a coordinator bound to plain tcp requires (see `RunToken`).
    var token: String = ""
    /// The OpenBLAS kernel family this process loaded, and those its CPU can run (BLASMachine).
    var blasLoaded: String = ""
    var blasRunnable: [String] = []
    /// Where other workers reach this one's relay socket ("" when it has none: on the
    /// coordinator's machine), and that socket's CURVE public key.
    var relay: RelayPeer?

    func encode() -> [UInt8] {
        var w = WireWriter()
        w.int(threads); w.string(host); w.int(pid); w.u32(UInt32(fingerprints.count))
        for f in fingerprints { w.string(f) }
        w.string(machineID); w.string(token); w.string(blasLoaded)
        w.u32(UInt32(blasRunnable.count)); for f in blasRunnable { w.string(f) }
        RelayPeer.encode(relay, into: &w)
        return w.bytes
    }

    static func decode(_ m: Message) throws -> Hello {
        try m.read { r in
            let threads = try r.int(), host = try r.string(limit: 256), pid = try r.int()
            let n = Int(try r.u32())
            guard n <= 64 else { throw ProtocolError("\(n) fingerprints") }
            var prints: [String] = []
            for _ in 0..<n { prints.append(try r.string(limit: 128)) }
            var hello = Hello(threads: threads, host: host, pid: pid, fingerprints: prints, machineID: try r.string(limit: 512),
                              token: try r.string(limit: 256), blasLoaded: try r.string(limit: 64))
            let families = Int(try r.u32())
            guard families <= 32 else { throw ProtocolError("\(families) BLAS families") }
            for _ in 0..<families { hello.blasRunnable.append(try r.string(limit: 64)) }
            hello.relay = try RelayPeer.decode(&r)
            return hello
        }
    }
}
