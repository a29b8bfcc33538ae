import ArgumentParser
import CohortExperiment
import Foundation

struct ShowConfig: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Validate a config and print it resolved.",
        discussion: """
        Examples:
          cohort config configs/quickstart.yaml --set training.epochs=3
          cohort config configs/mnist-mlp.yaml --defaults   # every key, defaults included
        """)

    @OptionGroup var options: ConfigOptions

    @Flag(help: "Print every key with the value a run would use, defaults included (null: unset).")
    var defaults = false

    func run() throws {
        let config = try options.load()
        _ = try Experiment(config: config)
        guard defaults else { return print(config.resolvedYAML, terminator: "") }
        let cluster = ClusterLaunch.everyKey(config.cluster, cores: ProcessInfo.processInfo.activeProcessorCount)
        print(config.everyKeyYAML(cluster: cluster), terminator: "")
    }
}
