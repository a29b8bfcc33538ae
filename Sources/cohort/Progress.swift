import CohortExperiment
import CohortTraining
import Foundation

/// The progress bar of `cohort train` on a terminal: epoch and step out of the total, a smoothed
/// loss, samples/s, ETA and the live workers, redrawn in place a few times a second. Log lines
/// are printed above it. Off the terminal, `training.log_every` plain lines take its place.
final class ProgressBar {
    let stepsPerEpoch: Int
    var smoothedLoss: Double?
    var samples = 0
    let start = Date()
    var lastDraw = Date.distantPast
    var drawn = false

    init(stepsPerEpoch: Int) { self.stepsPerEpoch = stepsPerEpoch }

    static var isTerminal: Bool { isatty(STDOUT_FILENO) == 1 }

    func update(_ record: StepRecord, total: Int) {
        // Exponential moving average, as most trainers show, so the number is readable.
        smoothedLoss = smoothedLoss.map { 0.95 * $0 + 0.05 * record.loss } ?? record.loss
        samples += record.samples
        guard Date().timeIntervalSince(lastDraw) >= 0.2 || record.step == total else { return }
        lastDraw = Date()
        let elapsed = Date().timeIntervalSince(start)
        let rate = Double(samples) / max(elapsed, 1e-9)
        let remaining = elapsed / Double(max(record.step, 1)) * Double(total - record.step)
        let fraction = Double(record.step) / Double(max(total, 1))
        let width = 24
        let filled = Int(fraction * Double(width))
        let bar = String(repeating: "=", count: filled) + (filled < width ? ">" : "") + String(repeating: " ", count: max(0, width - filled - 1))
        let epochs = (total + stepsPerEpoch - 1) / max(stepsPerEpoch, 1)
        let workers = record.exchange?.liveWorkers
        var line = "epoch \(record.epoch + 1)/\(epochs) [\(bar)] \(record.step)/\(total)"
        line += String(format: " loss %.4f", smoothedLoss ?? record.loss)
        if let accuracy = record.accuracy { line += String(format: " acc %.3f", accuracy) }
        line += " \(Int(rate)) samples/s ETA \(Self.duration(remaining))"
        if let workers { line += " workers \(workers)" }
        FileHandle.standardOutput.write(Data(("\r\u{1B}[K" + line).utf8))
        drawn = true
    }

    /// Prints a line above the bar (the bar is redrawn on the next update).
    func print(_ text: String, toStandardError: Bool = false) {
        if drawn { FileHandle.standardOutput.write(Data("\r\u{1B}[K".utf8)) }
        (toStandardError ? FileHandle.standardError : FileHandle.standardOutput).write(Data((text + "\n").utf8))
    }

    func finish() { if drawn { FileHandle.standardOutput.write(Data("\n".utf8)); drawn = false } }

    static func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 3600 ? "\(s / 3600)h\(String(format: "%02d", s / 60 % 60))m" : s >= 60 ? "\(s / 60)m\(String(format: "%02d", s % 60))s" : "\(s)s"
    }
}
