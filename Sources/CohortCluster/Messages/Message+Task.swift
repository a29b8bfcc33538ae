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
    /// Which generation of streamed weights chunks of `weightsVersion` to compute with.
    var weightsGeneration: UInt32 = 0
    /// Where this worker's result goes, and whose it adds to its own (`RelayPlan`).
    var relay = RelayPlan()
    /// The same leaves' samples in the next step (empty: not known, or not wanted), so that the
    /// worker can start their first layer while the next weights arrive (`FirstLayerAhead`).
    var nextLeaves: [[Int]] = []

    var range: Range<Int> { first..<(first + leaves.count) }
    /// The leaves whose sum this worker sends: its own, then its children's (to its right).
    var mergedRange: Range<Int> { first..<max(first + leaves.count, relay.children.last?.range.upperBound ?? 0) }

    func encode() -> [UInt8] {
        var w = WireWriter()
        w.u64(taskID); w.u64(weightsVersion); w.int(sharedSlot)
        w.u32(UInt32(leafCount)); w.u32(UInt32(first)); w.u32(UInt32(leaves.count))
        Self.encode(leaves, into: &w)
        w.u32(UInt32(sampleShapes.count))
        for s in sampleShapes { w.shape(s.inputs); w.shape(s.targets) }
        relay.encode(into: &w)
        w.u32(weightsGeneration)
        precondition(nextLeaves.isEmpty || nextLeaves.count == leaves.count, "next samples for other leaves")
        Self.encode(nextLeaves, into: &w)
        return w.bytes
    }

    private static func encode(_ leaves: [[Int]], into w: inout WireWriter) {
        for leaf in leaves { w.u32(UInt32(leaf.count)); for i in leaf { w.u32(UInt32(i)) } }
    }

    /// `n` leaves of sample indices, each bounded by what is left of the body.
    private static func decodeLeaves(_ n: Int, from r: inout WireReader) throws -> [[Int]] {
        var leaves: [[Int]] = []
        for _ in 0..<n {
            let count = Int(try r.u32())
            guard count <= r.remaining / 4 else { throw ProtocolError("leaf of \(count) samples exceeds the body") }
            var leaf: [Int] = []
            leaf.reserveCapacity(count)
            for _ in 0..<count { leaf.append(Int(try r.u32())) }
            leaves.append(leaf)
        }
        return leaves
    }

    static func decode(_ m: Message) throws -> TaskMessage {
        try m.read { r in
            let id = try r.u64(), version = try r.u64(), slot = try r.int()
            let leafCount = Int(try r.u32()), first = Int(try r.u32()), n = Int(try r.u32())
            guard leafCount > 0, leafCount <= 1 << 16, first + n <= leafCount, n > 0 else {
                throw ProtocolError("leaves \(first)..<\(first + n) of \(leafCount)")
            }
            let leaves = try decodeLeaves(n, from: &r)
            let shapeCount = Int(try r.u32())
            guard shapeCount == 0 || shapeCount == n else { throw ProtocolError("\(shapeCount) sample shapes for \(n) leaves") }
            var shapes: [(inputs: [Int], targets: [Int])] = []
            for _ in 0..<shapeCount { shapes.append((try r.shape(), try r.shape())) }
            let relay = try RelayPlan.decode(&r, after: first + n, leafCount: leafCount)
            var task = TaskMessage(taskID: id, weightsVersion: version, leafCount: leafCount, first: first, leaves: leaves,
                                   sampleShapes: shapes, sharedSlot: slot, weightsGeneration: try r.u32(), relay: relay)
            // The next step's samples of the same leaves, or none.
            task.nextLeaves = r.remaining > 0 ? try decodeLeaves(n, from: &r) : []
            return task
        }
    }
}

/// A worker's place in the relay tree for one task (workers across a network only): whose
/// results it adds to its own before sending them on, where it sends them, and where it
/// forwards the next weights' chunks. Empty: it sends to the coordinator, adds nothing, forwards
/// nothing.
struct RelayPlan: Sendable, Equatable {
    /// A child's task: the leaves it reports (its own and its children's), to this worker.
    struct Child: Sendable, Equatable {
        var taskID: UInt64
        var range: Range<Int>
    }
    /// The children, left to right; their ranges follow this worker's own, without a gap.
    var children: [Child] = []
    /// The worker its result goes to (nil: the coordinator).
    var upstream: RelayPeer?
    /// The worker it forwards WEIGHTS CHUNKs to, as they arrive (nil: none).
    var forwardWeights: RelayPeer?

    var isEmpty: Bool { children.isEmpty && upstream == nil && forwardWeights == nil }

    func encode(into w: inout WireWriter) {
        w.u32(UInt32(children.count))
        for child in children { w.u64(child.taskID); w.u32(UInt32(child.range.lowerBound)); w.u32(UInt32(child.range.upperBound)) }
        RelayPeer.encode(upstream, into: &w)
        RelayPeer.encode(forwardWeights, into: &w)
    }

    /// Checks the children tile the leaves from `after` on, within the tree.
    static func decode(_ r: inout WireReader, after: Int, leafCount: Int) throws -> RelayPlan {
        var plan = RelayPlan()
        let n = Int(try r.u32())
        guard n <= 64 else { throw ProtocolError("\(n) relay children") }
        var next = after
        for _ in 0..<n {
            let id = try r.u64(), lo = Int(try r.u32()), hi = Int(try r.u32())
            guard lo == next, lo < hi, hi <= leafCount else { throw ProtocolError("relay child \(lo)..<\(hi) after leaf \(next)") }
            plan.children.append(Child(taskID: id, range: lo..<hi))
            next = hi
        }
        plan.upstream = try RelayPeer.decode(&r)
        plan.forwardWeights = try RelayPeer.decode(&r)
        return plan
    }
}

/// Another worker's relay socket: its endpoint, and its CURVE public key ("" without CURVE).
struct RelayPeer: Sendable, Equatable, Hashable {
    var endpoint: String
    var serverKey: String

    static func encode(_ peer: RelayPeer?, into w: inout WireWriter) {
        w.string(peer?.endpoint ?? ""); w.string(peer?.serverKey ?? "")
    }

    static func decode(_ r: inout WireReader) throws -> RelayPeer? {
        let endpoint = try r.string(limit: 512), key = try r.string(limit: 64)
        guard !endpoint.isEmpty else { return nil }
        guard endpoint.hasPrefix("tcp://") else { throw ProtocolError("relay endpoint \(endpoint) is not tcp") }
        return RelayPeer(endpoint: endpoint, serverKey: key)
    }
}
