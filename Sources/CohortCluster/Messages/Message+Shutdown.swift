/// SHUTDOWN, coordinator → worker: stop, and why (the end of training, or a refusal).
struct ShutdownMessage: Sendable {
    var reason: String
    var refused: Bool

    func encode() -> [UInt8] { var w = WireWriter(); w.bool(refused); w.string(reason); return w.bytes }

    static func decode(_ m: Message) throws -> ShutdownMessage {
        try m.read { r in
            let refused = try r.bool()
            return ShutdownMessage(reason: try r.string(limit: 4096), refused: refused)
        }
    }
}
