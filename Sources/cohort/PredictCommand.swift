import ArgumentParser
import CohortData
import CohortExperiment
import CohortTensor
import Foundation

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run trained weights on new samples and print the predictions as CSV.",
        discussion: """
        The input is a .npy array of samples ([N, ...] in the model's input shape, \
        float32, float64 or uint8) or a headerless CSV of numbers, one sample per row. Inputs \
        get the config's normalization (data.normalize, fitted on its training set). Output: \
        one row per sample with the predicted class and the class probabilities (softmax for \
        cross_entropy, sigmoid for the BCE losses), or the raw outputs for regression losses.

        Example:
          cohort predict runs/mnist-lenet/final.safetensors \\
              --config configs/mnist-lenet.yaml --input digits.npy
        """
    )

    @Argument(help: "A safetensors file written by cohort train.")
    var checkpoint: String

    @Option(help: "The config that describes the model and its data preparation.")
    var config: String

    @Option(help: "Samples: a .npy file or a headerless CSV of numbers.")
    var input: String

    @Option(help: "Write the CSV here instead of standard output.")
    var output: String?

    func run() throws {
        let config = try ExperimentConfig.load(path: config)
        let experiment = try Experiment(config: config)
        let parameters: [Tensor]
        var samples: Tensor
        do {
            parameters = try Experiment.loadWeights(checkpoint, for: experiment.model)
            samples = try Self.readSamples(input)
        } catch {
            stderrLine("cohort predict: \(error)")
            throw ExitCode(ExitStatus.usage)
        }
        let features = experiment.model.inputShape.reduce(1, *)
        guard samples.count % max(features, 1) == 0, samples.count > 0 else {
            stderrLine("cohort predict: \(input): \(samples.count) values do not make samples of \(features)")
            throw ExitCode(ExitStatus.usage)
        }
        let n = samples.count / features
        samples = samples.reshaped([n] + experiment.model.inputShape)
        // The same preparation as training: raw samples through the config's normalization.
        let raw = try config.data.loadRawTraining(seed: config.seed)
        let normalizer = Normalizer(fitting: config.data.normalization, to: raw)
        samples = normalizer.apply(Dataset(name: "input", inputs: samples, targets: Tensor.zeros([n]))).inputs
        BLAS.setThreads(ProcessInfo.processInfo.activeProcessorCount)
        let z = experiment.model.predict(samples, parameters: parameters)
        let (rows, columns) = z.matrixShape
        var lines: [String] = []
        let loss = config.training.loss
        let classify = loss.isClassification
        lines.append((classify ? ["index", "prediction"] : ["index"]) .joined(separator: ",") + "," +
                     (0..<columns).map { classify ? "p\($0)" : "y\($0)" }.joined(separator: ","))
        for r in 0..<rows {
            var values = (0..<columns).map { Double(z[flat: r * columns + $0]) }
            var prediction = ""
            if loss == .softmaxCrossEntropy {
                let top = values.max() ?? 0
                let e = values.map { Foundation.exp($0 - top) }
                let total = e.reduce(0, +)
                values = e.map { $0 / total }
                prediction = String(values.indices.max { values[$0] < values[$1] } ?? 0)
            } else if classify {
                if loss != .binaryCrossEntropy && loss != .hinge { values = values.map { 1 / (1 + Foundation.exp(-$0)) } }
                let threshold = loss == .hinge ? 0.0 : 0.5
                prediction = values.map { $0 > threshold ? "1" : "0" }.joined(separator: ";")
            }
            let cells = values.map { String(format: "%.6g", $0) }
            lines.append(([String(r)] + (classify ? [prediction] : []) + cells).joined(separator: ","))
        }
        let text = lines.joined(separator: "\n") + "\n"
        if let output { try AtomicFile.write(text, to: output) } else { FileHandle.standardOutput.write(Data(text.utf8)) }
    }

    static func readSamples(_ path: String) throws -> Tensor {
        if path.hasSuffix(".npy") { return try NPY.read(path: path) }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw DataError(file: path, "cannot read the file") }
        var values: [Float] = [], width: Int?
        for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: true).enumerated() {
            let cells = line.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            guard width == nil || width == cells.count else { throw DataError(file: path, line: i + 1, "has \(cells.count) values, earlier rows \(width!)") }
            width = cells.count
            for cell in cells {
                guard let v = Float(cell) else { throw DataError(file: path, line: i + 1, "'\(cell)' is not a number") }
                values.append(v)
            }
        }
        return Tensor(shape: [values.count / max(width ?? 1, 1), width ?? 0], values)
    }
}
