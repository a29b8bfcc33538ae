import ArgumentParser
import CohortData
import CohortExperiment
import CohortTensor
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Exit codes: 0 success, 1 runtime failure, 2 usage or config error.
enum ExitStatus {
    static let runtimeFailure: Int32 = 1
    static let usage: Int32 = 2
}

@main
struct Cohort: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cohort",
        abstract: "Data-parallel neural-network training from a YAML config.",
        discussion: """
        Examples:
          cohort train configs/quickstart.yaml
          cohort train configs/xor.yaml --set optimizer.lr=0.5 --run-dir runs/xor-fast
          cohort trace configs/lecture-2-2-1.yaml
          cohort config configs/quickstart.yaml --set training.epochs=3
        """,
        subcommands: [Train.self, Trace.self, ShowConfig.self, DataCommand.self]
    )

    /// ArgumentParser exits 64 on usage errors; Cohort promises 2, so parse and exit by hand.
    static func main() {
        BLAS.tuneAllocator()
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let error as ConfigError {
            FileHandle.standardError.write(Data("cohort: config error: \(error)\n".utf8))
            Glibc.exit(ExitStatus.usage)
        } catch let error as DataError {
            FileHandle.standardError.write(Data("cohort: data error: \(error)\n".utf8))
            Glibc.exit(ExitStatus.usage)
        } catch let error as ExitCode {
            Glibc.exit(error.rawValue)
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                print(fullMessage(for: error))
                Glibc.exit(0)
            }
            let message = fullMessage(for: error)
            FileHandle.standardError.write(Data("\(message)\n".utf8))
            let isUsage = code == .validationFailure || code.rawValue == 64
            Glibc.exit(isUsage ? ExitStatus.usage : ExitStatus.runtimeFailure)
        }
    }
}

/// Options shared by the commands that read a config.
struct ConfigOptions: ParsableArguments {
    @Argument(help: "The experiment's YAML config (see configs/README.md).")
    var config: String

    @Option(name: .customLong("set"), help: ArgumentHelp("Override a config key, e.g. --set optimizer.lr=0.1 (repeatable).", valueName: "dotted.key=value"))
    var overrides: [String] = []

    func load() throws -> ExperimentConfig {
        try ExperimentConfig.load(path: config, overrides: overrides)
    }
}

func stderrLine(_ s: String) { FileHandle.standardError.write(Data((s + "\n").utf8)) }
func stdoutLine(_ s: String) { FileHandle.standardOutput.write(Data((s + "\n").utf8)) }

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a model and write its run directory.",
        discussion: """
        Writes config.yaml (resolved), metrics.jsonl (one JSON object per step), final.safetensors
        (PyTorch parameter names) and summary.json to the run directory, by default runs/<name>.
        """
    )

    @OptionGroup var options: ConfigOptions

    @Option(help: "Directory for the run's outputs (default: runs/<config name>, never overwriting).")
    var runDir: String?

    @Flag(help: "Print nothing but errors.")
    var quiet = false

    func run() throws {
        let config = try options.load()
        let experiment = try Experiment(config: config)
        let directory = try RunDirectory(explicit: runDir, name: config.name, resolvedConfig: config.resolvedYAML)
        var executor = LocalExecutor(experiment: experiment)
        do {
            _ = try TrainingRun.run(experiment, executor: &executor, runDirectory: directory) { line in
                if !quiet { stdoutLine(line) }
            }
        } catch {
            stderrLine("cohort: training failed: \(error)")
            throw ExitCode(ExitStatus.runtimeFailure)
        }
    }
}

struct Trace: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print every forward value, the loss, every gradient and the updated parameters, step by step.",
        discussion: """
        Made for checking a hand computation: try it on configs/lecture-2-2-1.yaml, the worked
        example of the lecture notes, and compare with the table in the notes.
        """
    )

    @OptionGroup var options: ConfigOptions

    @Option(help: "Number of iterations to trace (default: training.steps, or the whole run).")
    var steps: Int?

    @Option(help: "Decimal places printed.")
    var decimals = 4

    func run() throws {
        let experiment = try Experiment(config: try options.load())
        try LectureTrace.run(experiment, steps: steps, decimals: decimals) { print($0) }
    }
}

struct ShowConfig: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "config", abstract: "Validate a config and print it resolved.")

    @OptionGroup var options: ConfigOptions

    func run() throws {
        let config = try options.load()
        _ = try Experiment(config: config)
        print(config.resolvedYAML, terminator: "")
    }
}

struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Fetch datasets.",
        discussion: """
        Examples:
          cohort data mnist --to data/mnist
          cohort data mnist --fashion --to data/fashion-mnist
        Then point a config at the directory (data.path) or set COHORT_DATA to it.
        """,
        subcommands: [FetchMNIST.self]
    )
}

struct FetchMNIST: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mnist",
        abstract: "Download MNIST (or Fashion-MNIST) from public mirrors and check the MD5 of each file."
    )

    @Option(help: "Directory to put the four .gz files in.")
    var to: String

    @Flag(help: "Fashion-MNIST instead of MNIST.")
    var fashion = false

    @Option(help: "A mirror base URL to try first (repeatable); file:// works too.")
    var mirror: [String] = []

    func run() throws {
        let mirrors = mirror + (fashion ? MNISTDownload.fashionMirrors : MNISTDownload.mnistMirrors)
        try MNISTDownload.fetch(to: to, mirrors: mirrors,
                                checksums: fashion ? MNISTDownload.fashionChecksums : MNISTDownload.mnistChecksums,
                                log: stdoutLine)
        stdoutLine("done: \(to)")
    }
}
