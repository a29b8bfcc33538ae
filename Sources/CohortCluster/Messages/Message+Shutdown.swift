/// SHUTDOWN, coordinator → worker: stop, and why (the end of training, or a refusal); or
/// restart with the run's OpenBLAS kernel family and join again (`rejoinWithBLAS`).
struct ShutdownMessage: Sendable {
    var reason: String
    var refused: Bool
    var rejoinWithBLAS: String = ""

    func encode() -> [UInt8] { var w = WireWriter(); w.bool(refused); w.string(reason); w.string(rejoinWithBLAS); return w.bytes }

    static func decode(_ m: Message) throws -> ShutdownMessage {
        try m.read { r in
            let refused = try r.bool()
            return ShutdownMessage(reason: try r.string(limit: 4096), refused: refused, rejoinWithBLAS: try r.string(limit: 64))
        }
    }
}
