import CohortExperiment
import CohortTraining
import Dispatch
import Foundation

/// The progress bar of `cohort train` on a terminal: epoch and step out of the total, a smoothed
/// loss, the steady samples/s and ETA (`StepPace`), and the live workers, redrawn in place a few
/// times a second; during an evaluation, its progress. Log lines are printed above it. Off the
/// terminal, `training.log_every` plain lines take its place.
final class ProgressBar {
    let stepsPerEpoch: Int
    var smoothedLoss: Double?
    var pace = StepPace()
    var lastDraw = Date.distantPast
    var drawn = false

    init(stepsPerEpoch: Int) { self.stepsPerEpoch = stepsPerEpoch }

    static var isTerminal: Bool { isatty(STDOUT_FILENO) == 1 }

    static func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

    func update(_ record: StepRecord, total: Int) {
        // Exponential moving average, as most trainers show, so the number is readable.
        smoothedLoss = smoothedLoss.map { 0.95 * $0 + 0.05 * record.loss } ?? record.loss
        pace.record(step: record.step, samples: record.samples, at: Self.now())
        guard Date().timeIntervalSince(lastDraw) >= 0.2 || record.step == total else { return }
        lastDraw = Date()
        let epochs = (total + stepsPerEpoch - 1) / max(stepsPerEpoch, 1)
        var line = "epoch \(record.epoch + 1)/\(epochs) \(Self.bar(Double(record.step) / Double(max(total, 1)))) \(record.step)/\(total)"
        line += String(format: " loss %.4f", smoothedLoss ?? record.loss)
        if let accuracy = record.accuracy { line += String(format: " acc %.3f", accuracy) }
        if let rate = pace.samplesPerSecond, let remaining = pace.secondsRemaining(until: total) {
            line += " \(Int(rate)) samples/s ETA \(Self.duration(remaining))"
        }
        if let workers = record.exchange?.liveWorkers { line += " workers \(workers)" }
        draw(line)
    }

    /// An evaluation's progress: `done` of `total` samples of the set.
    func evaluating(_ set: String, done: Int, total: Int) {
        guard Date().timeIntervalSince(lastDraw) >= 0.2 || done == total else { return }
        lastDraw = Date()
        draw("evaluating on \(set) \(Self.bar(Double(done) / Double(max(total, 1)))) \(done)/\(total) samples")
    }

    func draw(_ line: String) {
        FileHandle.standardOutput.write(Data(("\r\u{1B}[K" + line).utf8))
        drawn = true
    }

    static func bar(_ fraction: Double, width: Int = 24) -> String {
        let filled = Int(min(max(fraction, 0), 1) * Double(width))
        return "[" + String(repeating: "=", count: filled) + (filled < width ? ">" : "") +
            String(repeating: " ", count: max(0, width - filled - 1)) + "]"
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
