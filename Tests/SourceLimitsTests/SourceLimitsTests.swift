import Foundation
import Testing

/// The limits docs/ARCHITECTURE.md sets for the code, checked on every `make test`: files of at
/// most 400 lines, functions of at most 60 (a numeric kernel may be longer when its doc comment
/// says "numeric kernel" and why), the cluster never importing the config layer, and no
/// document or source relying on a directory beside the checkout.
@Suite struct SourceLimitsTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func swiftFiles(under folder: String) -> [URL] {
        let base = root.appendingPathComponent(folder)
        let names = FileManager.default.enumerator(atPath: base.path)?.compactMap { $0 as? String } ?? []
        return names.filter { $0.hasSuffix(".swift") }.sorted().map { base.appendingPathComponent($0) }
    }

    @Test func sourceFilesStayUnder400Lines() throws {
        let files = Self.swiftFiles(under: "Sources")
        #expect(files.count > 50)
        for file in files {
            let lines = try String(contentsOf: file, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false).count
            #expect(lines <= 401, "\(file.path) has \(lines) lines")
        }
    }

    @Test func functionsStayUnder60Lines() throws {
        var long: [String] = []
        for file in Self.swiftFiles(under: "Sources") {
            let text = try String(contentsOf: file, encoding: .utf8)
            for function in SwiftFunctions.find(in: text) where function.lines > 60 && !function.docComment.contains("numeric kernel") {
                long.append("\(file.lastPathComponent):\(function.line) \(function.name): \(function.lines) lines")
            }
        }
        #expect(long.isEmpty, "\(long.joined(separator: "\n"))")
    }

    /// The measuring stick itself: a long function is found, a long string or comment is not
    /// taken for code, and a protocol requirement has no body.
    @Test func theFunctionFinderCountsBodies() {
        let body = (0..<70).map { "    let v\($0) = \"}{\" // }" }.joined(separator: "\n")
        let text = """
        protocol P {
            func required(_ x: Int)
        }
        /// A numeric kernel: long on purpose.
        func long(_ a: () -> Void = {}) {
        \(body)
        }
        func short() { print("\\(1 + 2) }") }
        """
        let found = SwiftFunctions.find(in: text)
        #expect(found.map(\.name) == ["required", "long", "short"])
        #expect(found[0].lines == 0 && found[1].lines == 72 && found[2].lines == 1)
        #expect(found[1].docComment.contains("numeric kernel"))
    }

    /// A clone stands alone: nothing the project ships points at a directory beside it (CI's own
    /// script, .ci/run, may use one for extra checks).
    @Test func nothingReachesOutsideTheCheckout() throws {
        let outside = "../" + "shared"
        let fm = FileManager.default
        var offenders: [String] = []
        for folder in ["Sources", "Tests", "docs", "configs", "cluster", "bench", "data"] {
            let base = Self.root.appendingPathComponent(folder)
            for name in fm.enumerator(atPath: base.path)?.compactMap({ $0 as? String }) ?? [] {
                let url = base.appendingPathComponent(name)
                guard !name.hasSuffix(".gz"), let text = try? String(contentsOf: url, encoding: .utf8) else { continue }
                if text.contains(outside) { offenders.append("\(folder)/\(name)") }
            }
        }
        for file in ["README.md", "Makefile", "Package.swift"] {
            if try String(contentsOf: Self.root.appendingPathComponent(file), encoding: .utf8).contains(outside) { offenders.append(file) }
        }
        #expect(offenders.isEmpty, "\(offenders)")
    }

    @Test func theClusterNeverReadsConfigs() throws {
        for file in Self.swiftFiles(under: "Sources/CohortCluster") {
            let text = try String(contentsOf: file, encoding: .utf8)
            #expect(!text.contains("import CohortExperiment") && !text.contains("import Yams"), "\(file.lastPathComponent)")
        }
        let manifest = try String(contentsOf: Self.root.appendingPathComponent("Package.swift"), encoding: .utf8)
        let cluster = try #require(manifest.range(of: "name: \"CohortCluster\"")).upperBound
        let declaration = manifest[cluster...].prefix { $0 != ")" }
        #expect(!declaration.contains("CohortExperiment") && !declaration.contains("Yams"))
    }
}

/// Functions of Swift source, found with a small lexer: strings (with interpolation) and
/// comments are blanked out, then each `func`/`init` is followed to its matching brace.
enum SwiftFunctions {
    struct Function {
        var name: String
        var line: Int
        /// Lines from the declaration to the closing brace (0 for a requirement without body).
        var lines: Int
        var docComment: String
    }

    static func find(in text: String) -> [Function] {
        let code = blankStringsAndComments(text).split(separator: "\n", omittingEmptySubsequences: false).map(Array.init)
        let original = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var found: [Function] = []
        for (index, line) in code.enumerated() {
            guard let name = declaredName(String(line)) else { continue }
            let doc = original[..<index].reversed().prefix { $0.trimmingCharacters(in: .whitespaces).hasPrefix("///") || $0.trimmingCharacters(in: .whitespaces).hasPrefix("@") }
            found.append(Function(name: name, line: index + 1, lines: bodyLength(code, from: index), docComment: doc.joined(separator: "\n")))
        }
        return found
    }

    /// The name after `func`, or "init", when the line declares one.
    static func declaredName(_ line: String) -> String? {
        let words = line.split(whereSeparator: { $0 == " " || $0 == "(" || $0 == "<" }).map(String.init)
        let modifiers: Set<String> = ["public", "package", "private", "fileprivate", "internal", "static", "override", "mutating",
                                      "nonmutating", "final", "convenience", "required", "class", "nonisolated", "@discardableResult",
                                      "@inlinable", "@usableFromInline"]
        var i = 0
        while i < words.count, modifiers.contains(words[i]) || words[i].hasPrefix("@") { i += 1 }
        guard i < words.count else { return nil }
        if words[i] == "func", i + 1 < words.count { return words[i + 1] }
        if words[i] == "init" || words[i] == "init?" { return "init" }
        return nil
    }

    /// Lines from `start` to the brace that closes the body (0 when a `}` closes first: no body).
    static func bodyLength(_ code: [[Character]], from start: Int) -> Int {
        var depth = 0, parens = 0, started = false
        for index in start..<code.count {
            for c in code[index] {
                if !started {
                    if c == "(" || c == "[" { parens += 1 } else if c == ")" || c == "]" { parens -= 1 }
                    else if c == "{" && parens == 0 { started = true; depth = 1 } else if c == "}" && parens == 0 { return 0 }
                    continue
                }
                if c == "{" { depth += 1 } else if c == "}" { depth -= 1 }
                if depth == 0 { return index - start + 1 }
            }
        }
        return 0
    }

    /// The text with every string literal and comment replaced by spaces (newlines kept), so
    /// braces inside them do not count. Interpolations `\( … )` stay code.
    static func blankStringsAndComments(_ text: String) -> String {
        enum Mode { case code(parens: Int), string, multiline }
        let chars = Array(text)
        var out: [Character] = []
        out.reserveCapacity(chars.count)
        var modes: [Mode] = [.code(parens: 0)]
        var i = 0
        func starts(_ s: String) -> Bool { i + s.count <= chars.count && String(chars[i..<(i + s.count)]) == s }
        while i < chars.count {
            let c = chars[i]
            switch modes[modes.count - 1] {
            case .code(let parens):
                if starts("//") {
                    while i < chars.count && chars[i] != "\n" { out.append(" "); i += 1 }
                    continue
                }
                if starts("/*") {
                    while i < chars.count && !starts("*/") { out.append(chars[i] == "\n" ? "\n" : " "); i += 1 }
                    out += [" ", " "]; i += 2
                    continue
                }
                if starts("\"\"\"") { modes.append(.multiline); out += [" ", " ", " "]; i += 3; continue }
                if c == "\"" { modes.append(.string); out.append(" "); i += 1; continue }
                if modes.count > 1 && c == "(" { modes[modes.count - 1] = .code(parens: parens + 1) }
                if modes.count > 1 && c == ")" {
                    if parens == 0 { modes.removeLast(); out.append(" "); i += 1; continue }
                    modes[modes.count - 1] = .code(parens: parens - 1)
                }
                out.append(c); i += 1
            case .string, .multiline:
                let multiline = { if case .multiline = modes[modes.count - 1] { return true } else { return false } }()
                if c == "\\" {
                    if i + 1 < chars.count && chars[i + 1] == "(" { modes.append(.code(parens: 0)); out += [" ", " "]; i += 2; continue }
                    out += [" ", " "]; i += 2; continue
                }
                if multiline && starts("\"\"\"") { modes.removeLast(); out += [" ", " ", " "]; i += 3; continue }
                if !multiline && c == "\"" { modes.removeLast(); out.append(" "); i += 1; continue }
                out.append(c == "\n" ? "\n" : " "); i += 1
            }
        }
        return String(out)
    }
}
