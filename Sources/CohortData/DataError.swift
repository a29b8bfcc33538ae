/// A data file that cannot be used: which file, where in it (CSV line), and what is wrong.
package struct DataError: Error, CustomStringConvertible, Sendable {
    package var file: String
    package var line: Int?
    package var message: String

    package init(file: String, line: Int? = nil, _ message: String) {
        self.file = file; self.line = line; self.message = message
    }

    package var description: String { "\(file)\(line.map { ":\($0)" } ?? ""): \(message)" }
}
