import CohortData
import Foundation
import Yams

/// What a checkpoint is bound to: every key of the resolved config except those a resumed run
/// may change. `cluster` and `checkpoint` say where and how the run goes, not what it computes;
/// `training.steps` and `training.epochs` only say how long, so a finished run can be extended.
package enum ConfigFingerprint {
    package static let mayChangeOnResume = ["cluster", "checkpoint", "training.steps", "training.epochs"]

    /// A description of `mayChangeOnResume` for messages.
    package static var mayChangeText: String {
        "cluster.*, checkpoint.*, training.steps and training.epochs (to extend a run)"
    }

    /// Every scalar of a YAML document by dotted key (`model.layers[0].linear.out`), in order.
    package static func flatten(_ yaml: String) -> [(key: String, value: String)] {
        guard let root = try? Yams.compose(yaml: yaml) else { return [] }
        var out: [(String, String)] = []
        func walk(_ node: Node, _ path: String) {
            switch node {
            case .scalar(let scalar): out.append((path, scalar.string))
            case .mapping(let mapping):
                for (key, value) in mapping { walk(value, path.isEmpty ? key.string ?? "?" : "\(path).\(key.string ?? "?")") }
            case .sequence(let sequence):
                if sequence.isEmpty { out.append((path, "[]")) }
                for (i, value) in sequence.enumerated() { walk(value, "\(path)[\(i)]") }
            }
        }
        walk(root, "")
        return out
    }

    static func isBound(_ key: String) -> Bool {
        !mayChangeOnResume.contains { key == $0 || key.hasPrefix($0 + ".") || key.hasPrefix($0 + "[") }
    }

    /// SHA-256 of the bound keys and their values, sorted by key (so reordering a file changes
    /// nothing).
    package static func hash(_ resolvedYAML: String) -> String {
        var hasher = SHA256()
        for (key, value) in flatten(resolvedYAML).filter({ isBound($0.key) }).sorted(by: { $0.key < $1.key }) {
            hasher.update(Data("\(key)=\(value)\n".utf8))
        }
        return hasher.hexDigest()
    }

    /// The first bound key whose value differs between two resolved configs, with both values
    /// (nil where the key is absent).
    package static func firstDifference(_ old: String, _ new: String) -> (key: String, old: String?, new: String?)? {
        let a = Dictionary(flatten(old).filter { isBound($0.key) }, uniquingKeysWith: { x, _ in x })
        let b = Dictionary(flatten(new).filter { isBound($0.key) }, uniquingKeysWith: { x, _ in x })
        let ordered = flatten(new).map(\.key) + flatten(old).map(\.key)
        guard let key = ordered.first(where: { isBound($0) && a[$0] != b[$0] }) else { return nil }
        return (key, a[key], b[key])
    }

    /// Checkpoints of format 1 hashed the resolved YAML's text, leaving out the top-level
    /// `cluster:` and `checkpoint:` blocks.
    package static func legacyHash(_ resolvedYAML: String) -> String {
        var hash = SHA256()
        var skipping = false
        for line in resolvedYAML.split(separator: "\n", omittingEmptySubsequences: false) {
            if let first = line.first, first != " " && first != "-" && first != "#" {
                skipping = line.hasPrefix("cluster:") || line.hasPrefix("checkpoint:")
            }
            if !skipping { hash.update(Data((line + "\n").utf8)) }
        }
        return hash.hexDigest()
    }
}
