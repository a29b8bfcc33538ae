import Foundation

/// A grid of config overrides, as `cohort sweep --grid key=v1,v2 … --seeds N` gives it: every
/// combination of the values, each with each seed, in a fixed order (the first grid key varies
/// slowest), and a directory name for each point.
package struct SweepPlan: Sendable, Equatable, Codable {
    package struct Axis: Sendable, Equatable, Codable {
        package var key: String
        package var values: [String]
    }

    package struct Point: Sendable, Equatable {
        /// The overrides, as `--set` takes them, in the axes' order (the seed last).
        package var settings: [(key: String, value: String)]
        package var directoryName: String

        package static func == (a: Point, b: Point) -> Bool {
            a.directoryName == b.directoryName && a.settings.map(\.key) == b.settings.map(\.key)
                && a.settings.map(\.value) == b.settings.map(\.value)
        }
    }

    package var config: String
    package var axes: [Axis]
    /// Seeds to run each combination with (nil: the config's own seed only).
    package var seeds: [UInt64]?

    /// Reads `--grid` arguments (`key=v1,v2,…`) and the seed count.
    package init(config: String, grids: [String], seeds: Int?, baseSeed: UInt64) throws(SweepError) {
        self.config = config
        axes = []
        for grid in grids {
            guard let eq = grid.firstIndex(of: "="), eq != grid.startIndex else {
                throw SweepError("--grid \(grid): expected dotted.key=value1,value2,…")
            }
            let key = String(grid[..<eq])
            let values = grid[grid.index(after: eq)...].split(separator: ",", omittingEmptySubsequences: false)
                .map { $0.trimmingCharacters(in: .whitespaces) }
            guard !values.isEmpty, !values.contains(where: \.isEmpty) else { throw SweepError("--grid \(grid): a value is empty") }
            guard !axes.contains(where: { $0.key == key }) else { throw SweepError("--grid \(key) is given twice") }
            guard key != "seed" || seeds == nil else { throw SweepError("--grid seed and --seeds both set the seed; give one") }
            axes.append(Axis(key: key, values: values))
        }
        if let seeds {
            guard seeds >= 1 else { throw SweepError("--seeds must be at least 1") }
            self.seeds = (0..<UInt64(seeds)).map { baseSeed + $0 }
        }
        guard !points.isEmpty else { throw SweepError("the sweep has no points: give --grid key=v1,v2 or --seeds N") }
        if points.count > 10_000 { throw SweepError("the sweep has \(points.count) points; more than 10,000 is surely a mistake") }
    }

    /// Every point, the first axis varying slowest and the seed fastest.
    package var points: [Point] {
        var combinations: [[(key: String, value: String)]] = [[]]
        for axis in axes {
            combinations = combinations.flatMap { prefix in axis.values.map { prefix + [(axis.key, $0)] } }
        }
        if let seeds {
            combinations = combinations.flatMap { prefix in seeds.map { prefix + [("seed", String($0))] } }
        }
        guard !axes.isEmpty || seeds != nil else { return [] }
        // Short names (the last part of each key) unless two keys end alike.
        let lastParts = axes.map { $0.key.split(separator: ".").last.map(String.init) ?? $0.key } + (seeds == nil ? [] : ["seed"])
        let unique = Set(lastParts).count == lastParts.count
        return combinations.map { Point(settings: $0, directoryName: Self.directoryName($0, fullKeys: !unique)) }
    }

    /// `lr-0.1_batch_size-64_seed-2`: the last part of each key (or all of it) and its value,
    /// safe as a file name.
    static func directoryName(_ settings: [(key: String, value: String)], fullKeys: Bool) -> String {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-+")
        func clean(_ s: String) -> String { String(s.map { allowed.contains($0) ? $0 : "_" }) }
        return settings.map { setting in
            clean(fullKeys ? setting.key : String(setting.key.split(separator: ".").last ?? "")) + "-" + clean(setting.value)
        }.joined(separator: "_")
    }
}

/// A sweep that cannot run as asked (exit 2).
package struct SweepError: Error, CustomStringConvertible {
    package var description: String
    package init(_ description: String) { self.description = description }
}
