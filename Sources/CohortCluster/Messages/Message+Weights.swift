/// WEIGHTS, coordinator → workers: the new weights as one packed frame, or (for workers on the
/// coordinator's machine) a note that they are in the shared weights file.
struct WeightsMessage: Sendable {
    var version: UInt64
    var shared: Bool = false

    func encode() -> [UInt8] { var w = WireWriter(); w.u64(version); w.bool(shared); return w.bytes }

    static func decode(_ m: Message) throws -> WeightsMessage {
        let message = try m.read { r in WeightsMessage(version: try r.u64(), shared: try r.bool()) }
        guard m.tensors.count == (message.shared ? 0 : 1) else { throw ProtocolError("weights with \(m.tensors.count) tensor frames") }
        return message
    }
}
