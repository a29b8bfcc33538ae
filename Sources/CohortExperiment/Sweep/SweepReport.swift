import Foundation

/// What the points of a sweep gave, read back from their run directories: sweep.csv (one row a
/// point: its settings, final training and evaluation loss and accuracy, wall time, samples/s)
/// and sweep.svg (the evaluation-loss curves overlaid, and the final evaluation accuracy of each
/// point).
package struct SweepReport {
    package struct Row {
        package var point: SweepPlan.Point
        package var status: String
        package var summary: [String: Any]
        package var evaluations: [(x: Double, y: Double)]
        package var trainingLoss: [(x: Double, y: Double)]
    }

    package var rows: [Row]

    /// Reads every point's summary.json and metrics.jsonl (a point not run yet has neither).
    package init(plan: SweepPlan, directory: String) {
        rows = plan.points.map { point in
            let run = "\(directory)/\(point.directoryName)"
            let summary = (try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(run)/summary.json")))) as? [String: Any] ?? [:]
            var evaluations: [(x: Double, y: Double)] = [], training: [(x: Double, y: Double)] = []
            let lines = ((try? String(contentsOfFile: "\(run)/metrics.jsonl", encoding: .utf8)) ?? "").split(separator: "\n")
            for line in lines {
                guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                      let step = object["step"] as? Int else { continue }
                if let loss = object["eval_loss"] as? Double { evaluations.append((Double(step), loss)) }
                else if let loss = object["loss"] as? Double { training.append((Double(step), loss)) }
            }
            let status = summary.isEmpty ? "not run" : summary["interrupted"] as? Bool == true ? "interrupted" : "done"
            return Row(point: point, status: status, summary: summary, evaluations: evaluations, trainingLoss: training)
        }
    }

    static let columns = ["train_loss", "train_accuracy", "eval_loss", "eval_accuracy", "wall_time_s", "samples_per_s"]

    package var csv: String {
        let keys = rows.first?.point.settings.map(\.key) ?? []
        var lines = [(["point"] + keys + ["status"] + Self.columns + ["run_dir"]).joined(separator: ",")]
        for row in rows {
            let values = Self.columns.map { key -> String in
                guard let v = row.summary[key] as? Double else { return "" }
                return String(format: "%.6g", v)
            }
            lines.append(([row.point.directoryName] + row.point.settings.map(\.value) + [row.status] + values + [row.point.directoryName])
                .map(Self.csvField).joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    static func csvField(_ s: String) -> String {
        s.contains(",") || s.contains("\"") ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
    }

    static let palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]

    /// Left: the evaluation-loss curves (or, where a point was evaluated once only, its
    /// training loss); right: each point's final evaluation accuracy as a bar.
    package func svg(title: String) -> String {
        let periodic = rows.contains { $0.evaluations.count >= 2 }
        let series = rows.enumerated().map { i, row in
            Curves.Series(name: row.point.directoryName, color: Self.palette[i % Self.palette.count],
                          points: periodic ? row.evaluations : Curves.thin(row.trainingLoss, limit: 200))
        }
        let height = max(400.0, 80 + Double(rows.count) * 22)
        var out = """
        <svg xmlns="http://www.w3.org/2000/svg" width="1100" height="\(Int(height))" viewBox="0 0 1100 \(Int(height))" font-family="sans-serif" font-size="12">
        <rect width="100%" height="100%" fill="white"/>
        <text x="550" y="20" text-anchor="middle" font-size="15">\(Curves.escape(title))</text>

        """
        out += Curves.panel(series, x: 60, y: 40, width: 460, height: height - 100,
                            yLabel: periodic ? "evaluation loss" : "training loss", fixedRange: nil)
        out += accuracyBars(x: 740, y: 40, width: 300)
        return out + "</svg>\n"
    }

    /// One horizontal bar a point, the final evaluation accuracy on a 0-1 axis.
    func accuracyBars(x: Double, y: Double, width: Double) -> String {
        var s = "<text x=\"\(x + width / 2)\" y=\"\(y + 8)\" text-anchor=\"middle\">final evaluation accuracy</text>\n"
        for tick in stride(from: 0.0, through: 1.0, by: 0.25) {
            let tx = x + tick * width
            s += "<line x1=\"\(tx)\" y1=\"\(y + 16)\" x2=\"\(tx)\" y2=\"\(y + 24 + Double(rows.count) * 22)\" stroke=\"#eee\"/>\n"
            s += "<text x=\"\(tx)\" y=\"\(y + 38 + Double(rows.count) * 22)\" text-anchor=\"middle\">\(Curves.format(tick))</text>\n"
        }
        for (i, row) in rows.enumerated() {
            let top = y + 20 + Double(i) * 22
            s += "<text x=\"\(x - 6)\" y=\"\(top + 13)\" text-anchor=\"end\">\(Curves.escape(row.point.directoryName))</text>\n"
            guard let accuracy = row.summary["eval_accuracy"] as? Double else {
                s += "<text x=\"\(x + 4)\" y=\"\(top + 13)\" fill=\"#999\">\(row.status == "done" ? "no evaluation" : row.status)</text>\n"
                continue
            }
            s += "<rect x=\"\(x)\" y=\"\(top)\" width=\"\(max(0, min(1, accuracy)) * width)\" height=\"16\" fill=\"\(Self.palette[i % Self.palette.count])\"/>\n"
            s += "<text x=\"\(x + max(0, min(1, accuracy)) * width + 4)\" y=\"\(top + 13)\">\(String(format: "%.4f", accuracy))</text>\n"
        }
        return s
    }
}
