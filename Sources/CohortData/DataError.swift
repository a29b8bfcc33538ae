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

/// The number of elements of a shape read from a file, or nil when a size is negative or the
/// product overflows: sizes from a file must never reach arithmetic that traps.
package func checkedElementCount(_ shape: [Int]) -> Int? {
    var count = 1
    for size in shape {
        guard size >= 0 else { return nil }
        let (product, overflow) = count.multipliedReportingOverflow(by: size)
        guard !overflow else { return nil }
        count = product
    }
    return count
}
