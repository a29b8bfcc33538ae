import ArgumentParser
import CohortCluster
import CohortData
import CohortExperiment
import CohortTensor
import Foundation
import ZeroMQ
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// The release; `buildCommit` (BuildStamp.swift, written by the BuildStamp plugin) says which
/// commit the executable was built from.
let cohortVersion = "0.5.0"

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
        version: "cohort \(cohortVersion) (commit \(buildCommit))",
        subcommands: [Train.self, Sweep.self, WorkerCommand.self, Evaluate.self, Predict.self, Inspect.self, Trace.self, ShowConfig.self, DataCommand.self, Keygen.self]
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
        } catch let error as UsageError {
            FileHandle.standardError.write(Data("cohort: \(error.message)\n".utf8))
            Glibc.exit(ExitStatus.usage)
        } catch let error as RunDirectoryError {
            FileHandle.standardError.write(Data("cohort: \(error)\n".utf8))
            Glibc.exit(ExitStatus.usage)
        } catch let error as TrainingInterrupted {
            Glibc.exit(128 + error.signal)
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

/// A mistake in how a command was called, said plainly: exit 2 without ArgumentParser's usage
/// text (which would only hide the message).
struct UsageError: Error {
    var message: String
    init(_ message: String) { self.message = message }
}

/// Options shared by the commands that read a config.
struct ConfigOptions: ParsableArguments {
    @Argument(help: "The experiment's YAML config (see configs/README.md).", completion: .file(extensions: ["yaml", "yml"]))
    var config: String

    @Option(name: .customLong("set"), help: ArgumentHelp("Override a config key, e.g. --set optimizer.lr=0.1 (repeatable).", valueName: "dotted.key=value"))
    var overrides: [String] = []

    func load() throws -> ExperimentConfig {
        try ExperimentConfig.load(path: config, overrides: overrides)
    }
}

func stderrLine(_ s: String) { FileHandle.standardError.write(Data((s + "\n").utf8)) }
func stdoutLine(_ s: String) { FileHandle.standardOutput.write(Data((s + "\n").utf8)) }

