import ArgumentParser
import CohortExperiment
import Foundation

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the tensors of a safetensors file: names, shapes, statistics and metadata.",
        discussion: "Example: cohort inspect runs/mnist-lenet/final.safetensors"
    )

    @Argument(help: "A safetensors file.")
    var checkpoint: String

    func run() throws {
        let file: (entries: [Safetensors.Entry], metadata: [String: String])
        do { file = try Safetensors.read(path: checkpoint) } catch {
            stderrLine("cohort inspect: \(error)")
            throw ExitCode(ExitStatus.usage)
        }
        print("\(checkpoint): \(file.entries.count) tensors, \(file.entries.reduce(0) { $0 + $1.tensor.count }) values")
        for (key, value) in file.metadata.sorted(by: { $0.key < $1.key }) { print("  metadata \(key) = \(value)") }
        let nameWidth = file.entries.map(\.name.count).max() ?? 4
        for entry in file.entries {
            let t = entry.tensor
            let values = t.scalars
            let mean = values.isEmpty ? 0 : Double(t.sum()) / Double(values.count)
            let std = values.isEmpty ? 0 : (t.squaredNorm() / Double(values.count) - mean * mean).squareRoot()
            let shape = "[" + t.shape.map(String.init).joined(separator: ", ") + "]"
            print("  " + entry.name.padding(toLength: nameWidth, withPad: " ", startingAt: 0) + "  F32 " +
                  shape.padding(toLength: 20, withPad: " ", startingAt: 0) +
                  String(format: "min %9.4f  max %9.4f  mean %9.4f  std %8.4f", values.min() ?? 0, values.max() ?? 0, mean, std))
        }
    }
}
