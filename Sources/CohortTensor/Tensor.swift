import CBLAS

/// The heap block behind a tensor. Tensors share it until one of them writes (copy-on-write).
@usableFromInline
final class TensorStorage: @unchecked Sendable {
    @usableFromInline let pointer: UnsafeMutablePointer<Float>
    @usableFromInline let count: Int
    /// When set, the memory belongs to this object (a received network frame) and is not freed here.
    let owner: AnyObject?

    /// Memory owned by someone else, kept alive by `owner` for as long as this storage lives.
    init(borrowing pointer: UnsafeMutablePointer<Float>, count: Int, owner: AnyObject) {
        self.pointer = pointer; self.count = count; self.owner = owner
    }

    @usableFromInline
    init(count: Int) {
        self.count = count
        owner = nil
        // 64-byte alignment keeps BLAS and vector loops on whole cache lines.
        var raw: UnsafeMutableRawPointer?
        let status = posix_memalign(&raw, 64, max(count, 1) * MemoryLayout<Float>.stride)
        precondition(status == 0 && raw != nil, "out of memory allocating \(count) floats")
        pointer = raw!.bindMemory(to: Float.self, capacity: max(count, 1))
    }

    deinit { if owner == nil { free(pointer) } }

    @usableFromInline
    func copy() -> TensorStorage {
        let fresh = TensorStorage(count: count)
        fresh.pointer.update(from: pointer, count: count)
        return fresh
    }
}

/// A dense Float32 array, contiguous and row-major, with value semantics.
///
/// Copies are cheap: storage is shared until a copy is written to.
public struct Tensor: @unchecked Sendable {
    public internal(set) var shape: [Int]
    @usableFromInline var storage: TensorStorage

    /// Uninitialised storage; every caller writes all elements before reading.
    public init(uninitializedShape shape: [Int]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        self.shape = shape
        self.storage = TensorStorage(count: shape.reduce(1, *))
    }

    public init(shape: [Int], repeating value: Float) {
        self.init(uninitializedShape: shape)
        storage.pointer.initialize(repeating: value, count: storage.count)
    }

    public init(shape: [Int], _ values: [Float]) {
        precondition(shape.reduce(1, *) == values.count,
                     "shape \(shape) needs \(shape.reduce(1, *)) values, got \(values.count)")
        self.init(uninitializedShape: shape)
        values.withUnsafeBufferPointer { storage.pointer.update(from: $0.baseAddress!, count: values.count) }
    }

    /// A tensor over memory that `owner` keeps alive (e.g. a received message), without copying.
    /// The memory must hold `shape`'s element count of Float32 and be 4-byte aligned; the tensor
    /// may write to it (it is then this tensor's alone, unless copied first).
    package init(borrowing pointer: UnsafeMutableRawPointer, shape: [Int], owner: AnyObject) {
        precondition(Int(bitPattern: pointer) % MemoryLayout<Float>.alignment == 0, "unaligned tensor memory")
        self.shape = shape
        storage = TensorStorage(borrowing: pointer.assumingMemoryBound(to: Float.self), count: shape.reduce(1, *), owner: owner)
    }

    /// A scalar (rank 0) tensor.
    public init(_ value: Float) { self.init(shape: [], [value]) }

    /// A rank-1 tensor.
    public init(_ values: [Float]) { self.init(shape: [values.count], values) }

    /// A rank-2 tensor from rows; all rows must have the same length.
    public init(_ rows: [[Float]]) {
        let columns = rows.first?.count ?? 0
        precondition(rows.allSatisfy { $0.count == columns }, "ragged rows")
        self.init(shape: [rows.count, columns], rows.flatMap { $0 })
    }

    public static func zeros(_ shape: [Int]) -> Tensor { Tensor(shape: shape, repeating: 0) }
    public static func ones(_ shape: [Int]) -> Tensor { Tensor(shape: shape, repeating: 1) }

    @inlinable public var count: Int { storage.count }
    @inlinable public var rank: Int { shape.count }

    /// Rows and columns of a tensor viewed as a matrix: the last axis is the columns.
    public var matrixShape: (rows: Int, columns: Int) {
        guard let last = shape.last else { return (1, 1) }
        return (last == 0 ? 0 : count / last, last)
    }

    public var scalars: [Float] { Array(UnsafeBufferPointer(start: storage.pointer, count: count)) }

    /// The single value of a one-element tensor.
    public var scalar: Float {
        precondition(count == 1, "scalar of a tensor with \(count) elements")
        return storage.pointer[0]
    }

    @inlinable
    public subscript(flat index: Int) -> Float {
        get { storage.pointer[index] }
        set { makeUnique(); storage.pointer[index] = newValue }
    }

    /// Element at a multi-index.
    public subscript(_ index: Int...) -> Float {
        get { storage.pointer[flatIndex(index)] }
        set { let i = flatIndex(index); makeUnique(); storage.pointer[i] = newValue }
    }

    func flatIndex(_ index: [Int]) -> Int {
        precondition(index.count == shape.count, "index \(index) for shape \(shape)")
        var flat = 0
        for (i, dim) in zip(index, shape) {
            precondition(i >= 0 && i < dim, "index \(index) out of range for shape \(shape)")
            flat = flat * dim + i
        }
        return flat
    }

    @inlinable
    mutating func makeUnique() {
        if !isKnownUniquelyReferenced(&storage) { storage = storage.copy() }
    }

    @inlinable
    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try body(UnsafeBufferPointer(start: storage.pointer, count: storage.count))
    }

    @inlinable
    public mutating func withUnsafeMutableBufferPointer<R>(
        _ body: (UnsafeMutableBufferPointer<Float>) throws -> R
    ) rethrows -> R {
        makeUnique()
        return try body(UnsafeMutableBufferPointer(start: storage.pointer, count: storage.count))
    }

    /// The element memory, for kernels. Valid while this tensor value lives unchanged: it is the
    /// storage's own heap block, which never moves. The pointer does not keep the tensor alive:
    /// Swift may release a value after its last use, so kernels that only touch a tensor through
    /// its pointer end with `withExtendedLifetime(tensor) {}`.
    @inlinable public var pointer: UnsafePointer<Float> { UnsafePointer(storage.pointer) }

    /// Writable element memory (copies first if the storage is shared). Valid while this tensor
    /// value lives and is not copied.
    @inlinable public var mutablePointer: UnsafeMutablePointer<Float> {
        mutating get { makeUnique(); return storage.pointer }
    }

    /// The same elements under a new shape with the same count. One dimension may be -1.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        var resolved = newShape
        if let hole = newShape.firstIndex(of: -1) {
            let known = newShape.enumerated().filter { $0.offset != hole }.map(\.element).reduce(1, *)
            precondition(known > 0 && count % known == 0, "cannot reshape \(shape) to \(newShape)")
            resolved[hole] = count / known
        }
        precondition(resolved.reduce(1, *) == count, "cannot reshape \(shape) to \(newShape)")
        var copy = self
        copy.shape = resolved
        return copy
    }

    /// Bitwise equality of shape and every element (NaN payloads included).
    public func bitwiseEqual(_ other: Tensor) -> Bool {
        guard shape == other.shape else { return false }
        return memcmp(storage.pointer, other.storage.pointer, count * MemoryLayout<Float>.stride) == 0
    }
}

extension Tensor: Equatable {
    public static func == (lhs: Tensor, rhs: Tensor) -> Bool {
        lhs.shape == rhs.shape && lhs.scalars == rhs.scalars
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String { format(decimals: 4) }

    /// Nested brackets like the lecture notes print matrices.
    public func format(decimals: Int) -> String {
        func number(_ v: Float) -> String {
            let s = String(format: "%.\(decimals)f", Double(v))
            return s == "-" + String(format: "%.\(decimals)f", 0.0) ? String(s.dropFirst()) : s
        }
        let values = scalars
        func render(_ dim: Int, _ offset: Int) -> String {
            if dim == shape.count { return number(values[offset]) }
            let stride = shape[(dim + 1)...].reduce(1, *)
            let parts = (0..<shape[dim]).map { render(dim + 1, offset + $0 * stride) }
            return "[" + parts.joined(separator: ", ") + "]"
        }
        return render(0, 0)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
