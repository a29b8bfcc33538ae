import CohortTraining

/// WELCOME, coordinator → worker: the model, how the data will come, and the current weights.
struct Welcome: Sendable {
    var workerID: UInt32
    /// The run's OpenBLAS kernel family ("" while `auto` has not chosen yet).
    var blasFamily: String
    /// The model (without weights), its loss and reduction: typed, in a binary encoding.
    var spec: GradientSpec
    var seed: UInt64
    var datasetFingerprint: String
    /// True when the worker's data differs from the coordinator's: tasks then carry samples.
    var sendsSamples: Bool
    var weightsVersion: UInt64
    var shapes: [[Int]]
    /// Shared-memory files for a worker on the coordinator's machine ("" when not offered):
    /// the weights of every step, and `resultSlots` gradient blocks written by this worker.
    var sharedWeights: String = ""
    var sharedResults: String = ""
    var resultSlots: Int = 0
    /// The worker's shared-memory mailbox (TASK and RESULT messages) and the coordinator's
    /// doorbell, for a worker on the coordinator's machine ("" when not offered).
    var mailbox: String = ""
    var coordinatorBell: String = ""
    /// Shown by workers to each other's relay sockets: only the run's workers know it.
    var relaySecret: UInt64 = 0

    func encode() -> [UInt8] {
        var w = WireWriter()
        w.u32(workerID); w.string(blasFamily); w.codable(spec); w.u64(seed); w.string(datasetFingerprint); w.bool(sendsSamples)
        w.u64(weightsVersion); w.u32(UInt32(shapes.count)); for s in shapes { w.shape(s) }
        w.string(sharedWeights); w.string(sharedResults); w.u32(UInt32(resultSlots))
        w.string(mailbox); w.string(coordinatorBell); w.u64(relaySecret)
        return w.bytes
    }

    static func decode(_ m: Message) throws -> Welcome {
        try m.read { r in
            let id = try r.u32(), family = try r.string(limit: 64), spec = try r.codable(GradientSpec.self, limit: 1 << 20), seed = try r.u64(), print = try r.string(limit: 128)
            let samples = try r.bool(), version = try r.u64()
            let n = Int(try r.u32())
            guard n <= 4096 else { throw ProtocolError("\(n) parameters") }
            var shapes: [[Int]] = []
            for _ in 0..<n { shapes.append(try r.shape()) }
            var welcome = Welcome(workerID: id, blasFamily: family, spec: spec, seed: seed, datasetFingerprint: print, sendsSamples: samples,
                                  weightsVersion: version, shapes: shapes)
            welcome.sharedWeights = try r.string(limit: 4096)
            welcome.sharedResults = try r.string(limit: 4096)
            welcome.resultSlots = Int(try r.u32())
            welcome.mailbox = try r.string(limit: 4096)
            welcome.coordinatorBell = try r.string(limit: 4096)
            welcome.relaySecret = try r.u64()
            return welcome
        }
    }
}
