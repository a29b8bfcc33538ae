import Foundation
import Yams

/// A config error a person can act on: where (file, line, column), which key, and what is wrong.
package struct ConfigError: Error, CustomStringConvertible, Sendable {
    package var file: String
    package var line: Int?
    package var column: Int?
    var keyPath: String
    package var message: String

    package var description: String {
        var location = file
        if let line { location += ":\(line)" + (column.map { ":\($0)" } ?? "") }
        return "\(location): \(keyPath.isEmpty ? "" : "\(keyPath): ")\(message)"
    }
}

/// A YAML node with the dotted key path that reached it, so every error can name both the key
/// and the line. Reading a mapping records which keys were used; `finish()` then reports the
/// unknown ones, with a "did you mean" when a known key is close.
package final class ConfigNode {
    package let node: Node
    package let path: String
    let file: String
    /// Key paths that came from `--set` rather than the file (errors say so instead of a line).
    let overridden: Set<String>
    private var usedKeys: Set<String> = []
    private var children: [ConfigNode] = []

    init(node: Node, path: String, file: String, overridden: Set<String>) {
        self.node = node; self.path = path; self.file = file; self.overridden = overridden
    }

    package func error(_ message: String) -> ConfigError {
        if overridden.contains(path) || overridden.contains(where: { path.hasPrefix($0 + ".") || path.hasPrefix($0 + "[") }) {
            return ConfigError(file: "--set \(path)", line: nil, column: nil, keyPath: path, message: message)
        }
        return ConfigError(file: file, line: node.mark?.line, column: node.mark?.column, keyPath: path, message: message)
    }

    func childPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    // MARK: mappings

    var isMapping: Bool { node.mapping != nil }
    var isSequence: Bool { node.sequence != nil }
    var isNull: Bool { node.scalar.map { ["", "~", "null", "Null", "NULL"].contains($0.string) && $0.style == .plain } ?? false }

    /// The value under `key`, or nil when absent or null.
    func optional(_ key: String) throws(ConfigError) -> ConfigNode? {
        guard let mapping = node.mapping else { throw error("expected a mapping of keys, found \(kind)") }
        usedKeys.insert(key)
        guard let value = mapping[key] else { return nil }
        let child = ConfigNode(node: value, path: childPath(key), file: file, overridden: overridden)
        children.append(child)
        return child.isNull ? nil : child
    }

    func required(_ key: String) throws(ConfigError) -> ConfigNode {
        guard let child = try optional(key) else {
            // A missing key next to a misspelt one is a typo: point at the typo.
            if let mapping = node.mapping,
               let typo = mapping.keys.first(where: { k in k.string.map { $0 != key && closest(to: $0, among: [key]) != nil } ?? false }) {
                let at = ConfigNode(node: typo, path: childPath(typo.string!), file: file, overridden: overridden)
                throw at.error("unknown key '\(typo.string!)'; did you mean '\(key)'?")
            }
            throw error("missing required key '\(key)'")
        }
        return child
    }

    /// Keys of a mapping, in file order.
    package var keys: [String] { node.mapping?.keys.compactMap(\.string) ?? [] }

    /// Elements of a sequence.
    package func elements() throws(ConfigError) -> [ConfigNode] {
        guard let sequence = node.sequence else { throw error("expected a list, found \(kind)") }
        return sequence.enumerated().map { i, element in
            let child = ConfigNode(node: element, path: "\(path)[\(i)]", file: file, overridden: overridden)
            children.append(child)
            return child
        }
    }

    /// Marks every key as read (for free-form sub-trees validated elsewhere).
    func markAllUsed() { usedKeys.formUnion(keys) }

    /// Reports keys nobody asked for, recursively.
    package func finish() throws(ConfigError) {
        if let mapping = node.mapping {
            for (key, value) in mapping {
                let name = key.string ?? "?"
                guard usedKeys.contains(name) else {
                    let known = usedKeys.sorted()
                    var message = "unknown key '\(name)'"
                    if let suggestion = closest(to: name, among: known) { message += "; did you mean '\(suggestion)'?" }
                    else if !known.isEmpty { message += " (known keys here: \(known.joined(separator: ", ")))" }
                    let at = ConfigNode(node: key, path: childPath(name), file: file, overridden: overridden)
                    _ = value
                    throw at.error(message)
                }
            }
        }
        for child in children { try child.finish() }
    }

    var kind: String {
        switch node {
        case .mapping: "a mapping"
        case .sequence: "a list"
        case .scalar(let s): "'\(s.string)'"
        }
    }

    // MARK: scalars

    package func string() throws(ConfigError) -> String {
        guard let s = node.scalar?.string else { throw error("expected a string, found \(kind)") }
        return s
    }

    package func int(min: Int? = nil, max: Int? = nil) throws(ConfigError) -> Int {
        guard let s = node.scalar?.string, let v = Int(s.replacingOccurrences(of: "_", with: "")) else {
            throw error("expected an integer, found \(kind)")
        }
        if let min, v < min { throw error("must be at least \(min), got \(v)") }
        if let max, v > max { throw error("must be at most \(max), got \(v)") }
        return v
    }

    func double(min: Double? = nil, max: Double? = nil, exclusiveMin: Bool = false) throws(ConfigError) -> Double {
        guard let s = node.scalar?.string, let v = Double(s.replacingOccurrences(of: "_", with: "")), v.isFinite else {
            throw error("expected a number, found \(kind)")
        }
        if let min, exclusiveMin ? v <= min : v < min {
            throw error("must be \(exclusiveMin ? "greater than" : "at least") \(min), got \(v)")
        }
        if let max, v > max { throw error("must be at most \(max), got \(v)") }
        return v
    }

    package func bool() throws(ConfigError) -> Bool {
        switch node.scalar?.string.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default: throw error("expected true or false, found \(kind)")
        }
    }

    /// One of a fixed set of names.
    package func choice<T: RawRepresentable & CaseIterable>(_: T.Type) throws(ConfigError) -> T where T.RawValue == String {
        let s = try string()
        if let v = T(rawValue: s) { return v }
        let names = T.allCases.map(\.rawValue)
        var message = "unknown value '\(s)'"
        if let suggestion = closest(to: s, among: names) { message += "; did you mean '\(suggestion)'?" }
        throw error(message + " (choose from \(names.joined(separator: ", ")))")
    }

    /// A number or a nested list of numbers, flattened with its shape.
    package func numbers() throws(ConfigError) -> (shape: [Int], values: [Float]) {
        if node.scalar != nil { return ([], [Float(try double())]) }
        let items = try elements()
        guard !items.isEmpty else { return ([0], []) }
        var values: [Float] = []
        var innerShape: [Int]?
        for item in items {
            let (shape, v) = try item.numbers()
            if let innerShape, innerShape != shape {
                throw item.error("rows have different lengths (\(innerShape) and \(shape))")
            }
            innerShape = shape
            values += v
        }
        return ([items.count] + (innerShape ?? []), values)
    }
}

/// The known name closest to `name` by edit distance, if it is close enough to be a typo.
func closest(to name: String, among known: [String]) -> String? {
    let scored = known.map { ($0, editDistance(name.lowercased(), $0.lowercased())) }
    guard let best = scored.min(by: { $0.1 < $1.1 }) else { return nil }
    return best.1 <= max(2, name.count / 3) ? best.0 : nil
}

func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    if a.isEmpty { return b.count }
    var previous = Array(0...b.count)
    for i in 1...a.count {
        var current = [i] + Array(repeating: 0, count: b.count)
        for j in 1...max(b.count, 1) where j <= b.count {
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        previous = current
    }
    return previous[b.count]
}
