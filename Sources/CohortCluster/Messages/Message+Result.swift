/// RESULT, worker → coordinator: sums of whole tree nodes; each block is followed by one tensor
/// frame per parameter, in parameter order. A streamed result has no frames: GRADIENT CHUNK
/// messages follow it, chunk after chunk (`StreamLayout`), each chunk for every block.
struct ResultMessage: Sendable {
    struct Block: Sendable {
        var range: Range<Int>
        var lossSum: Double
        var samples: Int
        var correct: Int
    }
    var taskID: UInt64
    var blocks: [Block]
    var computeSeconds: Double
    /// The gradients are in the worker's shared-memory slots 0, 1, … instead of frames.
    var shared: Bool = false
    /// The gradients follow in GRADIENT CHUNK messages.
    var streamed: Bool = false
    /// The run's relay secret, when it goes to another worker (0 to the coordinator).
    var secret: UInt64 = 0
    /// The worker's peak resident memory so far, in bytes (`PeakMemory`).
    var peakResidentBytes: UInt64 = 0
    /// From a relay: the compute seconds and peak memory of the tasks whose sums it added to its
    /// own (and theirs).
    var relayed: [(taskID: UInt64, seconds: Double, peakResidentBytes: UInt64)] = []

    func encode() -> [UInt8] {
        var w = WireWriter()
        w.u64(taskID); w.f64(computeSeconds); w.bool(shared); w.bool(streamed); w.u64(secret); w.u32(UInt32(blocks.count))
        for b in blocks {
            w.u32(UInt32(b.range.lowerBound)); w.u32(UInt32(b.range.upperBound)); w.f64(b.lossSum)
            w.u32(UInt32(b.samples)); w.u32(UInt32(b.correct))
        }
        w.u32(UInt32(relayed.count))
        for task in relayed { w.u64(task.taskID); w.f64(task.seconds); w.u64(task.peakResidentBytes) }
        w.u64(peakResidentBytes)
        return w.bytes
    }

    static func decode(_ m: Message) throws -> ResultMessage {
        try m.read { r in
            let id = try r.u64(), seconds = try r.f64(), shared = try r.bool(), streamed = try r.bool(), secret = try r.u64(), n = Int(try r.u32())
            guard !(shared && streamed), n > 0, n <= 64, shared || streamed ? m.tensors.isEmpty : m.tensors.count % n == 0 else {
                throw ProtocolError("\(n) blocks with \(m.tensors.count) tensor frames")
            }
            var blocks: [Block] = []
            for _ in 0..<n {
                let lo = Int(try r.u32()), hi = Int(try r.u32())
                guard lo < hi else { throw ProtocolError("empty block \(lo)..<\(hi)") }
                blocks.append(Block(range: lo..<hi, lossSum: try r.f64(), samples: Int(try r.u32()), correct: Int(try r.u32())))
            }
            var result = ResultMessage(taskID: id, blocks: blocks, computeSeconds: seconds, shared: shared, streamed: streamed, secret: secret)
            let relayed = Int(try r.u32())
            guard relayed <= 256 else { throw ProtocolError("\(relayed) relayed tasks") }
            for _ in 0..<relayed { result.relayed.append((try r.u64(), try r.f64(), try r.u64())) }
            result.peakResidentBytes = try r.u64()
            return result
        }
    }
}

extension ResultMessage {
    /// `decode`, with every failure a ProtocolError.
    static func decodeChecked(_ m: Message) throws(ProtocolError) -> ResultMessage {
        do { return try decode(m) } catch let error as ProtocolError { throw error } catch {
            throw ProtocolError("\(error)")
        }
    }
}
