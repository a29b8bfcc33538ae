import ArgumentParser
import CohortExperiment
import Foundation
import Logging

/// Where the CLI's log lines go. Info and notice lines are the run's story and go to standard
/// output (above the progress bar when there is one); warnings and errors go to standard error
/// with their level in front. A worker writes everything to standard error, which its
/// coordinator collects in workers/worker-N.log.
final class LogOutput: @unchecked Sendable {
    static let shared = LogOutput()

    private let lock = NSLock()
    private var bar: ProgressBar?
    /// Prefix of every line, e.g. "[worker 1234] ".
    var prefix = ""
    var everythingToStandardError = false
    /// Put an ISO 8601 time (UTC, milliseconds) before every line: on for logs that end up in
    /// files (a coordinator not on a terminal, every worker), where a line must say when.
    var timestamps = false
    private let clock: ISO8601DateFormatter = {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter
    }()

    /// While a bar is attached, lines are printed above it and the periodic step lines are
    /// left out (the bar shows the step).
    func attach(_ bar: ProgressBar?) { lock.withLock { self.bar = bar } }

    func write(level: Logger.Level, message: String, metadata: Logger.Metadata) {
        lock.withLock {
            let isStepLine = metadata[TrainingRun.progressMetadataKey] != nil
            if isStepLine && bar != nil { return }
            var line = timestamps ? clock.string(from: Date()) + " " + prefix : prefix
            switch level {
            case .trace, .debug: line += "\(level): "
            case .info, .notice: break
            case .warning: line += "warning: "
            case .error, .critical: line += "error: "
            }
            line += message
            let extra = metadata.filter { $0.key != TrainingRun.progressMetadataKey }.sorted { $0.key < $1.key }
            if !extra.isEmpty { line += " " + extra.map { "\($0.key)=\($0.value)" }.joined(separator: " ") }
            let toStandardError = everythingToStandardError || level >= .warning || level <= .debug
            if let bar {
                bar.print(line, toStandardError: toStandardError)
            } else {
                (toStandardError ? FileHandle.standardError : FileHandle.standardOutput).write(Data((line + "\n").utf8))
            }
        }
    }
}

/// swift-log's handler for the CLI: formats through `LogOutput`.
struct CohortLogHandler: LogHandler {
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]
    let output: LogOutput

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var merged = metadata
        if let explicit = event.metadata { merged.merge(explicit) { $1 } }
        output.write(level: event.level, message: event.message.description, metadata: merged)
    }
}

/// `--log-level` and `COHORT_LOG_LEVEL`: trace, debug, info (default), notice, warning, error
/// or critical.
enum LogSetup {
    static let levels = Logger.Level.allCases.map(\.rawValue).joined(separator: ", ")

    static func level(_ option: String?, quiet: Bool = false) throws -> Logger.Level {
        if let text = option ?? ProcessInfo.processInfo.environment["COHORT_LOG_LEVEL"] {
            guard let level = Logger.Level(rawValue: text.lowercased()) else {
                throw ValidationError("log level '\(text)' is not one of \(levels)")
            }
            return level
        }
        return quiet ? .warning : .info
    }

    /// The level `bootstrap` installed.
    nonisolated(unsafe) private(set) static var installed: Logger.Level = .info

    /// Installs the handler once per process, at `level`.
    static func bootstrap(_ level: Logger.Level) {
        installed = level
        LoggingSystem.bootstrap { _ in CohortLogHandler(logLevel: level, output: LogOutput.shared) }
    }
}
