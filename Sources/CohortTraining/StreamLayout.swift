import CohortTensor

/// How a model's parameters are cut into chunks that travel, and are summed and updated, one at
/// a time (`StreamedUpdate`).
///
/// The unit is the norm block: elements [start, end) of one parameter, `Tensor.normBlock` long
/// (shorter at a tensor's end). The gradient norm is a sum of per-block squares in block order
/// (`Tensor.squaredNorm`), so a chunk of whole blocks can be summed and squared on its own and the
/// norm still comes out with the same bits. A chunk is a run of consecutive blocks, at most
/// `chunkFloats` long (one block at least), in wire order (`wireOrder`).
package struct StreamLayout: Sendable, Equatable {
    package struct Piece: Sendable, Equatable {
        package var tensor: Int
        package var start: Int
        package var end: Int
        package var count: Int { end - start }
    }

    /// 128 KB: about 1 ms on a 1 Gbit/s link, short enough that forwarding and updating one
    /// chunk overlap well with the next one's transfer, long enough that per-message costs vanish.
    package static let defaultChunkFloats = 32_768

    package let shapes: [[Int]]
    /// Every norm block of every parameter, in wire order.
    package let pieces: [Piece]
    /// Chunk c is `pieces[chunks[c]]`.
    package let chunks: [Range<Int>]
    /// Where each piece starts in the parameters laid end to end.
    package let flatOffsets: [Int]
    package let totalFloats: Int
    /// How a value travels: float32, or bfloat16 (`cluster.wire_dtype`; the values are rounded
    /// to it before they are sent, see `GradientTree.precision`).
    package let dtype: WireDType

    package init(shapes: [[Int]], chunkFloats: Int = defaultChunkFloats, dtype: WireDType = .fp32) {
        precondition(chunkFloats > 0, "chunks need at least one float")
        self.shapes = shapes
        self.dtype = dtype
        var pieces: [Piece] = [], offsets: [Int] = [], flat = 0
        for t in Self.wireOrder(count: shapes.count) {
            let count = shapes[t].reduce(1, *)
            for start in stride(from: 0, to: count, by: Tensor.normBlock) {
                let end = Swift.min(start + Tensor.normBlock, count)
                pieces.append(Piece(tensor: t, start: start, end: end))
                offsets.append(flat)
                flat += end - start
            }
        }
        var chunks: [Range<Int>] = [], first = 0, floats = 0
        for (i, piece) in pieces.enumerated() {
            if i > first && floats + piece.count > chunkFloats {
                chunks.append(first..<i)
                first = i; floats = 0
            }
            floats += piece.count
        }
        if first < pieces.count { chunks.append(first..<pieces.count) }
        self.pieces = pieces; self.chunks = chunks; flatOffsets = offsets; totalFloats = flat
    }

    /// The parameters in the order their blocks travel: every one but the first, then the first.
    ///
    /// A model's first layer usually holds most of its bytes (the MNIST MLP's first weight is 401k
    /// of 407k floats). Sent last, its blocks leave the small parameters (its bias among them) to
    /// the first chunk, so a worker that receives the next weights can start the first layer's
    /// forward pass on each range of its rows as they arrive (`FirstLayerAhead`), bias included.
    /// Going up, those small gradients are ready right after the passes, like the weight's first
    /// rows (`FirstWeightRows`). No bit depends on this order: every addition and update is
    /// element by element, and the norm adds its blocks in parameter order (`squaredNorm(of:)`).
    package static func wireOrder(count: Int) -> [Int] { count > 1 ? Array(1..<count) + [0] : Array(0..<count) }

    package var chunkCount: Int { chunks.count }

    /// Σ of per-block squares `blockNorms` (one per piece, in wire order), added as
    /// `Tensor.squaredNorm` adds them: block by block within a parameter, then parameter by
    /// parameter, in parameter order.
    package func squaredNorm(of blockNorms: [Double]) -> Double {
        precondition(blockNorms.count == pieces.count, "\(blockNorms.count) block norms for \(pieces.count) blocks")
        var perTensor = [Double](repeating: 0, count: shapes.count)
        // Within a parameter the pieces keep their order, so each tensor's total is added as before.
        for (piece, norm) in zip(pieces, blockNorms) { perTensor[piece.tensor] += norm }
        return perTensor.reduce(0, +)
    }

    /// Floats in chunk `c`.
    package func floats(inChunk c: Int) -> Int { chunks[c].reduce(0) { $0 + pieces[$1].count } }

    /// Copies chunk `c` of `tensors` (shaped as `shapes`) into `destination`, piece after piece.
    package func gather(_ c: Int, of tensors: [Tensor], into destination: UnsafeMutablePointer<Float>) {
        var at = 0
        for piece in chunks[c].map({ pieces[$0] }) {
            tensors[piece.tensor].withUnsafeBufferPointer { source in
                (destination + at).update(from: source.baseAddress! + piece.start, count: piece.count)
            }
            at += piece.count
        }
    }

    /// Bytes chunk `c` takes on the wire.
    package func byteCount(ofChunk c: Int) -> Int { dtype.byteWidth * floats(inChunk: c) }

    /// Chunk `c` as bytes, little-endian floats or bfloat16s (the wire's layout).
    package func bytes(ofChunk c: Int, of tensors: [Tensor]) -> [UInt8] {
        encode(floats(inChunk: c)) { gather(c, of: tensors, into: $0) }
    }

    /// `count` floats, written by `fill`, as the wire's bytes.
    package func encode(_ count: Int, _ fill: (UnsafeMutablePointer<Float>) -> Void) -> [UInt8] {
        if dtype == .fp32 {
            return [UInt8](unsafeUninitializedCapacity: 4 * count) { buffer, written in
                fill(UnsafeMutableRawPointer(buffer.baseAddress!).assumingMemoryBound(to: Float.self))
                written = buffer.count
            }
        }
        let floats = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
        defer { floats.deallocate() }
        fill(floats)
        return [UInt8](unsafeUninitializedCapacity: 2 * count) { buffer, written in
            BFloat16.encode(floats, count: count, into: UnsafeMutableRawPointer(buffer.baseAddress!))
            written = buffer.count
        }
    }

    /// Writes chunk `c` from `source` into `tensors`, which the caller owns and nobody reads now.
    package func scatter(_ c: Int, from source: UnsafeRawBufferPointer, into tensors: [Tensor]) {
        precondition(source.count == byteCount(ofChunk: c), "chunk \(c) needs \(byteCount(ofChunk: c)) bytes, not \(source.count)")
        let width = dtype.byteWidth
        var at = 0
        for piece in chunks[c].map({ pieces[$0] }) {
            let target = UnsafeMutablePointer(mutating: tensors[piece.tensor].pointer) + piece.start
            if dtype == .bf16 {
                BFloat16.decode(source.baseAddress! + width * at, count: piece.count, into: target)
            } else {
                UnsafeMutableRawPointer(target).copyMemory(from: source.baseAddress! + width * at, byteCount: width * piece.count)
            }
            at += piece.count
        }
    }
}
