import Foundation

/// Where `data.name: mnist` (or `fashion_mnist`) looks when the config gives no `data.path`:
/// `$COHORT_DATA`, then `data/mnist` beside the config, then `~/.cache/cohort/mnist` (where
/// `cohort data mnist` puts it). Fashion-MNIST uses `fashion-mnist` in the last two.
package struct MNISTSearch: Sendable {
    package let fashion: Bool
    /// The directory of the config file being read.
    package let configDirectory: String

    package init(fashion: Bool, configDirectory: String) {
        self.fashion = fashion; self.configDirectory = configDirectory
    }

    var folderName: String { fashion ? "fashion-mnist" : "mnist" }

    /// The default download directory, `~/.cache/cohort/<name>`.
    package static func cacheDirectory(fashion: Bool) -> String {
        let home = ProcessInfo.processInfo.environment["HOME"] ?? NSHomeDirectory()
        return "\(home)/.cache/cohort/\(fashion ? "fashion-mnist" : "mnist")"
    }

    /// The places in order, each with how to name it in a message (nil: not set).
    package var places: [(label: String, path: String?)] {
        let environment = ProcessInfo.processInfo.environment["COHORT_DATA"]
        let beside = URL(fileURLWithPath: configDirectory).appendingPathComponent("data/\(folderName)").standardized.path
        return [("$COHORT_DATA", environment.flatMap { $0.isEmpty ? nil : $0 }),
                ("beside the config", beside),
                ("the download cache", Self.cacheDirectory(fashion: fashion))]
    }

    /// The first place that is a directory holding the training images.
    package func find() -> String? {
        places.compactMap(\.path).first { directory in
            ["train-images-idx3-ubyte.gz", "train-images-idx3-ubyte"].contains {
                FileManager.default.fileExists(atPath: "\(directory)/\($0)")
            }
        }
    }

    /// What to say when no place has it: every place tried, and how to get the files.
    package var notFoundMessage: String {
        let tried = places.map { "\($0.label) (\($0.path ?? "not set"))" }.joined(separator: ", ")
        return "no \(fashion ? "Fashion-MNIST" : "MNIST") found; looked in \(tried). Download it with 'cohort data mnist\(fashion ? " --fashion" : "")' " +
            "(it goes to \(Self.cacheDirectory(fashion: fashion))), or set data.path to a directory holding the four IDX files"
    }
}
