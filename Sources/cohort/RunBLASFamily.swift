import CohortData
import CohortTraining
import Foundation

/// The OpenBLAS kernel family a run computes with, kept in RUN_DIR/blas_kernel: a resume, which
/// may start on other machines, computes with it too (unless `cluster.blas_kernel` names
/// another), so an interrupted run continues bit for bit.
enum RunBLASFamily {
    static func path(_ runDirectory: String) -> String { "\(runDirectory)/blas_kernel" }

    static func read(_ runDirectory: String) -> BLASFamily? {
        guard let text = try? String(contentsOfFile: path(runDirectory), encoding: .utf8) else { return nil }
        return BLASFamily(rawValue: text.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    static func write(_ family: String, to runDirectory: String) throws {
        try AtomicFile.write(Data((family + "\n").utf8), to: path(runDirectory))
    }
}
