/// The steady pace of a run, for the progress bar, the step lines and the ETA: samples per
/// second and seconds per step over the last `window` steps by the wall clock between them (so
/// checkpoints and logging count, and the time to start workers or to load a resumed run does
/// not).
package struct StepPace: Sendable {
    package let window: Int
    private var marks: [(step: Int, time: Double, samples: Int)] = []

    package init(window: Int = 50) { self.window = max(2, window) }

    /// Step `step` ended at `time` (seconds on any monotonic clock) after `samples` samples.
    package mutating func record(step: Int, samples: Int, at time: Double) {
        marks.append((step, time, samples))
        if marks.count > window + 1 { marks.removeFirst(marks.count - window - 1) }
    }

    /// Seconds per step over the window; nil until two steps have ended.
    package var secondsPerStep: Double? {
        guard let first = marks.first, let last = marks.last, last.step > first.step else { return nil }
        return (last.time - first.time) / Double(last.step - first.step)
    }

    /// Samples per second over the window (the first mark's samples came before it).
    package var samplesPerSecond: Double? {
        guard let first = marks.first, let last = marks.last, last.time > first.time else { return nil }
        return Double(marks.dropFirst().reduce(0) { $0 + $1.samples }) / (last.time - first.time)
    }

    /// Seconds until step `total`, at the current pace.
    package func secondsRemaining(until total: Int) -> Double? {
        guard let perStep = secondsPerStep, let last = marks.last else { return nil }
        return perStep * Double(max(0, total - last.step))
    }
}
