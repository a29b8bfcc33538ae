import CohortTensor
import CSV
import Foundation

/// A CSV file with a header row: the label column(s) by name, every other column a numeric feature.
/// One label column gives class indices (or regression targets); several give a multi-hot target.
enum CSVDataset {
    static func load(path: String, labels labelColumns: [String], classification: Bool = true) throws(DataError) -> Dataset {
        guard FileManager.default.fileExists(atPath: path) else { throw DataError(file: path, "no such file") }
        // Read as text first: CSV.swift's stream reader reports a normal end of file as an error.
        guard let data = FileManager.default.contents(atPath: path) else { throw DataError(file: path, "cannot read the file") }
        guard let text = String(data: data, encoding: .utf8) else { throw DataError(file: path, "is not UTF-8 text") }
        let reader: CSVReader
        do { reader = try CSVReader(string: text, hasHeaderRow: true, trimFields: true) } catch {
            throw DataError(file: path, line: 1, "cannot read the header row: \(error)")
        }
        guard let header = reader.headerRow, !header.isEmpty else { throw DataError(file: path, line: 1, "no header row") }
        var labelIndices: [Int] = []
        for name in labelColumns {
            guard let index = header.firstIndex(of: name) else {
                throw DataError(file: path, line: 1, "no column named '\(name)' (columns: \(header.joined(separator: ", ")))")
            }
            labelIndices.append(index)
        }
        let featureIndices = header.indices.filter { !labelIndices.contains($0) }
        guard !featureIndices.isEmpty else { throw DataError(file: path, line: 1, "no feature columns besides the label") }
        var features: [Float] = [], targets: [Float] = []
        var line = 1
        while let row = reader.next() {
            line += 1
            if row.count == 1 && row[0].isEmpty { continue }  // a blank line
            guard row.count == header.count else {
                throw DataError(file: path, line: line, "has \(row.count) fields, the header has \(header.count)")
            }
            for i in featureIndices {
                guard let v = Float(row[i]), v.isFinite else {
                    throw DataError(file: path, line: line, "column '\(header[i])': '\(row[i])' is not a number")
                }
                features.append(v)
            }
            for i in labelIndices {
                guard let v = Float(row[i]), v.isFinite else {
                    throw DataError(file: path, line: line, "label column '\(header[i])': '\(row[i])' is not a number")
                }
                targets.append(v)
            }
        }
        if let error = reader.error { throw DataError(file: path, line: line + 1, "malformed CSV: \(error)") }
        let n = targets.count / labelIndices.count
        guard n > 0 else { throw DataError(file: path, "has a header but no rows") }
        let targetShape = labelIndices.count == 1 ? [n] : [n, labelIndices.count]
        var classes: Int?
        if classification && labelIndices.count == 1 {
            guard targets.allSatisfy({ $0 >= 0 && $0 == $0.rounded() }) else {
                throw DataError(file: path, "label column '\(labelColumns[0])' must hold class indices 0, 1, 2, …")
            }
            classes = Int(targets.max()!) + 1
        }
        return Dataset(name: URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent,
                       inputs: Tensor(shape: [n, featureIndices.count], features),
                       targets: Tensor(shape: targetShape, targets), classes: classes ?? (labelIndices.count > 1 ? labelIndices.count : nil))
    }
}
