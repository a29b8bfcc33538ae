import Crypto
import Foundation

/// SHA-256 through swift-crypto, for dataset fingerprints (a worker proves it holds the
/// coordinator's data by its digest, so tasks can carry indices instead of samples) and config
/// hashes. Incremental: a dataset is hashed in parts without being copied into one buffer.
package struct SHA256 {
    private var hasher = Crypto.SHA256()

    package init() {}

    package mutating func update(_ data: Data) { hasher.update(data: data) }

    package mutating func update(_ bytes: UnsafeRawBufferPointer) { hasher.update(bufferPointer: bytes) }

    /// The digest as 64 lowercase hex digits.
    package func hexDigest() -> String { hasher.finalize().map { String(format: "%02x", $0) }.joined() }
}

/// MD5 through swift-crypto, only to check downloads against the checksums that MNIST's mirrors
/// publish (not for anything that needs a secure hash).
package enum MD5 {
    package static func hexDigest(_ data: Data) -> String {
        Insecure.MD5.hash(data: data).map { String(format: "%02x", $0) }.joined()
    }
}
