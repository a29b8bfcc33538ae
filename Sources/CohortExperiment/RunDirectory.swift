import CohortData
import CohortNN
import CohortTensor
import CohortTraining
import Foundation

/// runs/<name>/: config.yaml, metrics.jsonl, final.safetensors, summary.json (DESIGN.md).
package final class RunDirectory {
    package let path: String
    private let metrics: AppendFile

    /// Creates the directory. Without an explicit path it is runs/<name>, or runs/<name>-2, -3, ...
    /// when that exists, so an earlier run is never overwritten; an explicit path must be new or
    /// empty (`--resume` continues a run instead).
    package init(explicit: String?, name: String, resolvedConfig: String) throws {
        let fm = FileManager.default
        if let explicit {
            if let contents = try? fm.contentsOfDirectory(atPath: explicit), !contents.isEmpty {
                throw RunDirectoryError(path: explicit, contents: contents)
            }
            path = explicit
        } else {
            var candidate = "runs/\(name)"
            var n = 2
            while fm.fileExists(atPath: candidate) { candidate = "runs/\(name)-\(n)"; n += 1 }
            path = candidate
        }
        try fm.createDirectory(atPath: path, withIntermediateDirectories: true)
        try AtomicFile.write(resolvedConfig, to: "\(path)/config.yaml")
        metrics = try AppendFile(path: "\(path)/metrics.jsonl")
    }

    /// Reopens an existing run directory to continue it: metrics.jsonl keeps the records up to
    /// and including `step` (later ones belong to the interrupted attempt) and grows from there.
    /// config.yaml becomes `resolvedConfig` (a resumed run may change the keys that allow it).
    package init(resuming path: String, atStep step: Int, resolvedConfig: String) throws {
        self.path = path
        try AtomicFile.write(resolvedConfig, to: "\(path)/config.yaml")
        let metricsPath = "\(path)/metrics.jsonl"
        let lines = ((try? String(contentsOfFile: metricsPath, encoding: .utf8)) ?? "").split(separator: "\n")
        let kept = lines.filter { line in
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let s = object["step"] as? Int else { return false }
            return s <= step
        }
        try AtomicFile.write(kept.map { $0 + "\n" }.joined(), to: metricsPath)
        metrics = try AppendFile(path: metricsPath)
    }


    /// The step and evaluation records metrics.jsonl holds (from an earlier attempt of a
    /// resumed run), as far as the plot and the final training loss need them.
    package func recordedSteps() -> (steps: [StepRecord], evaluations: [(step: Int, loss: Double, accuracy: Double?)]) {
        let text = (try? String(contentsOfFile: "\(path)/metrics.jsonl", encoding: .utf8)) ?? ""
        var steps: [StepRecord] = [], evaluations: [(step: Int, loss: Double, accuracy: Double?)] = []
        for line in text.split(separator: "\n") {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let step = object["step"] as? Int else { continue }
            if let loss = object["eval_loss"] as? Double {
                evaluations.append((step, loss, object["eval_accuracy"] as? Double))
            } else if let loss = object["loss"] as? Double {
                steps.append(StepRecord(step: step, epoch: object["epoch"] as? Int ?? 0, loss: loss, accuracy: object["accuracy"] as? Double,
                                        learningRate: Float(object["lr"] as? Double ?? 0), gradientNorm: object["grad_norm"] as? Double ?? 0,
                                        clipped: object["clipped"] as? Bool ?? false, samples: object["samples"] as? Int ?? 0,
                                        seconds: object["step_time_s"] as? Double ?? 0))
            }
        }
        return (steps, evaluations)
    }

    /// TensorBoard event file, opened on first use.
    private var tensorBoard: TensorBoardWriter?

    /// Appends one JSON object as a line of metrics.jsonl, and its numbers to the TensorBoard
    /// events (train/<key> for step records, eval/<key> for evaluations). A failed write (a full
    /// disk) throws, naming the file; the lines already written stay whole.
    func appendMetrics(_ record: JSON) throws {
        try metrics.append(record.text + "\n")
        guard case .object(let pairs) = record, let step = pairs.first(where: { $0.0 == "step" }).flatMap({ pair -> Int? in
            if case .int(let s) = pair.1 { return s } else { return nil }
        }) else { return }
        let isEvaluation = pairs.contains { $0.0 == "eval_loss" }
        let scalars: [(tag: String, value: Double)] = pairs.compactMap { key, value in
            guard ["loss", "accuracy", "lr", "grad_norm", "samples_per_s", "eval_loss", "eval_accuracy"].contains(key) else { return nil }
            let name = isEvaluation ? "eval/" + key.replacingOccurrences(of: "eval_", with: "") : "train/" + key
            switch value {
            case .number(let v): return (name, v)
            case .int(let v): return (name, Double(v))
            default: return nil
            }
        }
        if tensorBoard == nil { tensorBoard = try TensorBoardWriter(directory: path) }
        try tensorBoard?.scalars(scalars, step: step)
    }

    func writeWeights(_ model: Sequential, _ parameters: [Tensor], file: String = "final.safetensors",
                             metadata: [String: String] = [:]) throws {
        let entries = zip(model.parameterNames, parameters).map { Safetensors.Entry($0, $1) }
        try Safetensors.write(entries, metadata: metadata, to: "\(path)/\(file)")
    }

    /// Rewrites curves.svg from the step records so far and any evaluation points.
    /// `durable: false` for the refreshes during a run (no fsync: the plot is derived from
    /// metrics.jsonl, and the final one is written durably).
    func writeCurves(title: String, steps: [StepRecord], evaluations: [(step: Int, loss: Double, accuracy: Double?)],
                            durable: Bool = true) throws {
        let loss = Curves.thin(steps.map { (Double($0.step), $0.loss) })
        let accuracy = Curves.thin(steps.compactMap { r in r.accuracy.map { (Double(r.step), $0) } })
        let svg = Curves.svg(
            title: title,
            loss: [Curves.Series(name: "training loss", color: "#1f77b4", points: loss),
                   Curves.Series(name: "evaluation loss", color: "#d62728", points: evaluations.map { (Double($0.step), $0.loss) }, dashed: true)],
            accuracy: [Curves.Series(name: "training accuracy", color: "#1f77b4", points: accuracy),
                       Curves.Series(name: "evaluation accuracy", color: "#d62728",
                                     points: evaluations.compactMap { e in e.accuracy.map { (Double(e.step), $0) } }, dashed: true)])
        try AtomicFile.write(svg, to: "\(path)/curves.svg", durable: durable)
    }

    func writeSummary(_ summary: JSON) throws {
        try AtomicFile.write(summary.text + "\n", to: "\(path)/summary.json")
    }
}

/// `--run-dir` names a directory that already holds something: refused, so nothing is lost.
package struct RunDirectoryError: Error, CustomStringConvertible {
    package var path: String
    package var contents: [String]

    package var description: String {
        let shown = contents.sorted().prefix(4).joined(separator: ", ") + (contents.count > 4 ? ", …" : "")
        return "\(path) is not empty (\(shown)); a run directory is never overwritten. Give a new --run-dir, " +
            "or continue that run with 'cohort train --resume \(path)'"
    }
}
