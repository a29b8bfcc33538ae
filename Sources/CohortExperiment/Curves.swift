import CohortTraining
import Foundation

/// curves.svg: training loss (and accuracy) against the step, with evaluation points, axes,
/// labels and a legend. Plain SVG, so any browser opens it.
enum Curves {
    struct Series {
        var name: String
        var color: String
        var points: [(x: Double, y: Double)]
        var dashed = false

        init(name: String, color: String, points: [(x: Double, y: Double)], dashed: Bool = false) {
            self.name = name; self.color = color; self.points = points; self.dashed = dashed
        }
    }

    /// Two panels side by side: loss (left) and accuracy (right, if any series has points).
    static func svg(title: String, loss: [Series], accuracy: [Series]) -> String {
        let width = 960.0, height = 400.0
        var out = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))" font-family="sans-serif" font-size="12">
        <rect width="100%" height="100%" fill="white"/>
        <text x="\(width / 2)" y="20" text-anchor="middle" font-size="15">\(escape(title))</text>

        """
        out += panel(loss, x: 60, y: 40, width: 400, height: 300, yLabel: "loss", fixedRange: nil)
        if accuracy.contains(where: { !$0.points.isEmpty }) {
            out += panel(accuracy, x: 540, y: 40, width: 400, height: 300, yLabel: "accuracy", fixedRange: (0, 1), legendAtBottom: true)
        }
        return out + "</svg>\n"
    }

    static func panel(_ series: [Series], x: Double, y: Double, width: Double, height: Double,
                      yLabel: String, fixedRange: (Double, Double)?, legendAtBottom: Bool = false) -> String {
        let all = series.flatMap(\.points).filter { $0.y.isFinite }
        guard !all.isEmpty else { return "" }
        let x0 = all.map(\.x).min()!, x1 = max(all.map(\.x).max()!, x0 + 1)
        var (y0, y1) = fixedRange ?? (min(0, all.map(\.y).min()!), all.map(\.y).max()!)
        if y1 <= y0 { y1 = y0 + 1 }
        // The value axis reaches out to round ticks; the step axis keeps the run's steps.
        let yStep = tickStep(for: y1 - y0)
        if fixedRange == nil { (y0, y1) = ((y0 / yStep).rounded(.down) * yStep, (y1 / yStep).rounded(.up) * yStep) }
        func px(_ v: Double) -> Double { x + (v - x0) / (x1 - x0) * width }
        func py(_ v: Double) -> Double { y + height - (v - y0) / (y1 - y0) * height }
        var s = "<g>\n<rect x=\"\(x)\" y=\"\(y)\" width=\"\(width)\" height=\"\(height)\" fill=\"none\" stroke=\"#999\"/>\n"
        for vy in ticks(from: y0, to: y1, step: yStep) {
            s += "<line x1=\"\(x)\" y1=\"\(py(vy))\" x2=\"\(x + width)\" y2=\"\(py(vy))\" stroke=\"#eee\"/>\n"
            s += "<text x=\"\(x - 6)\" y=\"\(py(vy) + 4)\" text-anchor=\"end\">\(format(vy))</text>\n"
        }
        for vx in ticks(from: x0, to: x1, step: max(1, tickStep(for: x1 - x0))) {
            s += "<text x=\"\(px(vx))\" y=\"\(y + height + 16)\" text-anchor=\"middle\">\(Int(vx.rounded()))</text>\n"
        }
        s += "<text x=\"\(x + width / 2)\" y=\"\(y + height + 34)\" text-anchor=\"middle\">step</text>\n"
        s += "<text x=\"\(x - 44)\" y=\"\(y + height / 2)\" text-anchor=\"middle\" transform=\"rotate(-90 \(x - 44) \(y + height / 2))\">\(yLabel)</text>\n"
        let shown = series.filter { !$0.points.isEmpty }.count
        // Loss falls and accuracy rises: put each legend where the curves are not. Its box fits
        // the longest name (about 7 px a character at this font size).
        let legendTop = legendAtBottom ? y + height - Double(shown) * 16 - 10 : y + 2
        let legendWidth = max(152, 36 + 7 * Double(series.map(\.name.count).max() ?? 0))
        let legendLeft = x + width - legendWidth - 4
        s += "<rect x=\"\(legendLeft)\" y=\"\(legendTop)\" width=\"\(legendWidth)\" height=\"\(Double(shown) * 16 + 6)\" fill=\"white\" fill-opacity=\"0.85\" stroke=\"#ccc\"/>\n"
        var row = 0
        for line in series where !line.points.isEmpty {
            let path = line.points.filter { $0.y.isFinite }.map { "\(format(px($0.x), 1)),\(format(py(Swift.min(Swift.max($0.y, y0), y1)), 1))" }
            let dash = line.dashed ? " stroke-dasharray=\"5,3\"" : ""
            s += "<polyline fill=\"none\" stroke=\"\(line.color)\" stroke-width=\"1.5\"\(dash) points=\"\(path.joined(separator: " "))\"/>\n"
            if line.points.count <= 50 {
                for p in line.points where p.y.isFinite { s += "<circle cx=\"\(px(p.x))\" cy=\"\(py(p.y))\" r=\"2.5\" fill=\"\(line.color)\"/>\n" }
            }
            let ly = legendTop + 14 + Double(row) * 16
            row += 1
            s += "<line x1=\"\(legendLeft + 6)\" y1=\"\(ly - 4)\" x2=\"\(legendLeft + 26)\" y2=\"\(ly - 4)\" stroke=\"\(line.color)\" stroke-width=\"2\"\(dash)/>\n"
            s += "<text x=\"\(legendLeft + 31)\" y=\"\(ly)\">\(escape(line.name))</text>\n"
        }
        return s + "</g>\n"
    }

    /// About a quarter of `span`, rounded to the nearest 1, 2, 2.5 or 5 × 10ᵏ (Heckbert's "nice
    /// numbers"), so the ticks read 0, 0.5, 1, … or 500, 1000, … instead of 0.575, 1.15, ….
    static func tickStep(for span: Double) -> Double {
        let raw = span / 4, magnitude = pow(10, (log10(raw)).rounded(.down))
        return [1, 2, 2.5, 5, 10].map { $0 * magnitude }.min { abs($0 - raw) < abs($1 - raw) }!
    }

    /// The multiples of `step` in [low, high], computed as k·step so that they do not drift.
    static func ticks(from low: Double, to high: Double, step: Double) -> [Double] {
        let first = (low / step - 1e-9).rounded(.up), last = (high / step + 1e-9).rounded(.down)
        guard first <= last else { return [] }
        return (Int(first)...Int(last)).map { Double($0) * step }
    }

    static func format(_ v: Double, _ decimals: Int? = nil) -> String {
        if let decimals { return String(format: "%.\(decimals)f", v) }
        return abs(v) >= 100 ? String(format: "%.0f", v) : String(format: "%.3g", v)
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }

    /// Averages consecutive points into at most `limit` points, so long runs stay light.
    static func thin(_ points: [(x: Double, y: Double)], limit: Int = 400) -> [(x: Double, y: Double)] {
        guard points.count > limit else { return points }
        let group = (points.count + limit - 1) / limit
        return stride(from: 0, to: points.count, by: group).map { start in
            let chunk = points[start..<min(start + group, points.count)]
            return (chunk.last!.x, chunk.map(\.y).reduce(0, +) / Double(chunk.count))
        }
    }
}
