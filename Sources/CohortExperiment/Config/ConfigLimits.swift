import Foundation
import Yams

/// Limits a config must keep before and after the YAML parser sees it: a config is a few
/// kilobytes, so anything far beyond is a mistake or an attack, and must end in a config error
/// quickly instead of exhausting memory (an alias bomb expands to billions of nodes) or the
/// stack (the parser recurses on nested brackets).
enum ConfigLimits {
    static let maximumBytes = 16 << 20
    static let maximumNesting = 64
    static let maximumNodes = 1_000_000

    /// Size, and nesting of flow collections ([ and {) outside strings and comments.
    static func checkText(_ text: String, file: String) throws(ConfigError) {
        guard text.utf8.count <= maximumBytes else {
            throw ConfigError(file: file, line: nil, column: nil, keyPath: "", message: "is \(text.utf8.count) bytes; a config may have at most \(maximumBytes)")
        }
        var depth = 0, line = 1
        var quote: UInt8? = nil, comment = false, previous: UInt8 = 0x20
        for byte in text.utf8 {
            if byte == 0x0A { line += 1; comment = false; previous = byte; continue }
            defer { previous = byte }
            if comment { continue }
            if let open = quote {
                if byte == open { quote = nil }
                continue
            }
            switch byte {
            case 0x22, 0x27 where previous == 0x20 || previous == 0x5B || previous == 0x7B || previous == 0x2C || previous == 0x3A: quote = byte
            case 0x23 where previous == 0x20 || previous == 0x09: comment = true
            case 0x5B, 0x7B:
                depth += 1
                guard depth <= maximumNesting else {
                    throw ConfigError(file: file, line: line, column: nil, keyPath: "",
                                      message: "YAML nests brackets more than \(maximumNesting) deep")
                }
            case 0x5D, 0x7D: depth = max(0, depth - 1)
            default: break
            }
        }
    }

    /// The parsed tree: at most `maximumNodes` once aliases are expanded (the count stops at the
    /// limit, so a bomb costs no more than that), and no mapping with a key twice.
    static func checkTree(_ root: Node, file: String) throws(ConfigError) {
        var count = 0
        var pending: [(node: Node, depth: Int)] = [(root, 0)]
        while let (node, depth) = pending.popLast() {
            count += 1
            guard count <= maximumNodes else {
                throw ConfigError(file: file, line: nil, column: nil, keyPath: "",
                                  message: "expands to more than \(maximumNodes) YAML nodes (through aliases?); refusing it")
            }
            guard depth <= maximumNesting else {
                throw ConfigError(file: file, line: node.mark?.line, column: nil, keyPath: "", message: "YAML nests more than \(maximumNesting) deep")
            }
            switch node {
            case .scalar: break
            case .sequence(let sequence): pending += sequence.map { ($0, depth + 1) }
            case .mapping(let mapping):
                var seen: [String: Int] = [:]
                for (key, value) in mapping {
                    let name = key.string ?? "?"
                    if let first = seen[name] {
                        throw ConfigError(file: file, line: key.mark?.line, column: key.mark?.column, keyPath: name,
                                          message: "is given twice (lines \(first) and \(key.mark?.line ?? 0)); keep one")
                    }
                    seen[name] = key.mark?.line ?? 0
                    pending.append((value, depth + 1))
                }
            }
        }
    }
}
