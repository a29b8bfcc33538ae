/// TASK, coordinator → worker: compute leaves [first, last) of a tree of `leafCount` micro-batches.
/// Each leaf lists its sample indices; with `hasSamples` two tensor frames per leaf follow
/// (inputs, targets) whose shapes are in the body.
struct TaskMessage: Sendable {
    var taskID: UInt64
    var weightsVersion: UInt64
    var leafCount: Int
    var first: Int
    var leaves: [[Int]]
    var sampleShapes: [(inputs: [Int], targets: [Int])]
    /// The first shared-memory slot for this task's blocks, or −1 to send them as frames. Tasks
    /// of one step get distinct slots, so a result is never overwritten before it is summed.
    var sharedSlot: Int = -1

    var range: Range<Int> { first..<(first + leaves.count) }

    func encode() -> [UInt8] {
        var w = WireWriter()
        w.u64(taskID); w.u64(weightsVersion); w.int(sharedSlot)
        w.u32(UInt32(leafCount)); w.u32(UInt32(first)); w.u32(UInt32(leaves.count))
        for leaf in leaves { w.u32(UInt32(leaf.count)); for i in leaf { w.u32(UInt32(i)) } }
        w.u32(UInt32(sampleShapes.count))
        for s in sampleShapes { w.shape(s.inputs); w.shape(s.targets) }
        return w.bytes
    }

    static func decode(_ m: Message) throws -> TaskMessage {
        try m.read { r in
            let id = try r.u64(), version = try r.u64(), slot = try r.int()
            let leafCount = Int(try r.u32()), first = Int(try r.u32()), n = Int(try r.u32())
            guard leafCount > 0, leafCount <= 1 << 16, first + n <= leafCount, n > 0 else {
                throw ProtocolError("leaves \(first)..<\(first + n) of \(leafCount)")
            }
            var leaves: [[Int]] = []
            for _ in 0..<n {
                let count = Int(try r.u32())
                guard count <= r.remaining / 4 else { throw ProtocolError("leaf of \(count) samples exceeds the body") }
                var leaf: [Int] = []
                leaf.reserveCapacity(count)
                for _ in 0..<count { leaf.append(Int(try r.u32())) }
                leaves.append(leaf)
            }
            let shapeCount = Int(try r.u32())
            guard shapeCount == 0 || shapeCount == n else { throw ProtocolError("\(shapeCount) sample shapes for \(n) leaves") }
            var shapes: [(inputs: [Int], targets: [Int])] = []
            for _ in 0..<shapeCount { shapes.append((try r.shape(), try r.shape())) }
            return TaskMessage(taskID: id, weightsVersion: version, leafCount: leafCount, first: first, leaves: leaves,
                               sampleShapes: shapes, sharedSlot: slot)
        }
    }
}
