import ArgumentParser
import CohortExperiment

struct Trace: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print every forward value, the loss, every gradient and the updated parameters, step by step.",
        discussion: """
        Made for checking a hand computation: try it on configs/lecture-2-2-1.yaml, the \
        worked example of the lecture notes, and compare with the table in the notes.
        """
    )

    @OptionGroup var options: ConfigOptions

    @Option(help: "Number of iterations to trace (default: training.steps, or the whole run).")
    var steps: Int?

    @Option(help: "Decimal places printed.")
    var decimals = 4

    @Flag(help: "Print every value of large tensors too (by default those of more than \(LectureTrace.summaryThreshold) values are summarized).")
    var full = false

    func run() throws {
        let experiment = try Experiment(config: try options.load())
        try LectureTrace.run(experiment, steps: steps, decimals: decimals, full: full) { print($0) }
    }
}
