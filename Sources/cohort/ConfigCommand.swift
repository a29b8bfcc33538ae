import ArgumentParser
import CohortExperiment

struct ShowConfig: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "config", abstract: "Validate a config and print it resolved.")

    @OptionGroup var options: ConfigOptions

    func run() throws {
        let config = try options.load()
        _ = try Experiment(config: config)
        print(config.resolvedYAML, terminator: "")
    }
}
