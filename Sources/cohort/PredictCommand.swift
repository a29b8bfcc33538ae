import ArgumentParser
import CohortData
import CohortExperiment
import CohortNN
import CohortTensor
import Foundation

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run trained weights on new samples and print the predictions as CSV.",
        discussion: """
        The input is a .npy array of samples ([N, ...] in the model's input shape, \
        float32, float64 or uint8) or a headerless CSV of numbers, one sample per row. Inputs \
        get the run's normalization (data.normalize, fitted on its training set) once: with \
        normalize: scale, input already in [0, 1] is taken as scaled. Output: one row per \
        sample with the predicted class and the class probabilities (softmax for \
        cross_entropy, sigmoid for the BCE losses), the raw outputs for regression losses, or \
        with --logits the raw outputs at full precision.

        Example:
          cohort predict runs/mnist-lenet/final.safetensors --input digits.npy
        """
    )

    @OptionGroup var trained: TrainedWeightsOptions

    @Option(help: "Samples: a .npy file or a headerless CSV of numbers.", completion: .file(extensions: ["npy", "csv"]))
    var input: String

    @Option(help: "Write the CSV here instead of standard output.")
    var output: String?

    @Flag(help: "Print the model's raw outputs (logits) at full precision instead of classes and probabilities.")
    var logits = false

    func run() throws {
        let (experiment, parameters) = try trained.load(command: "cohort predict")
        var samples: Tensor
        do { samples = try Self.readSamples(input) } catch { throw UsageError("cohort predict: \(error)") }
        let features = experiment.model.inputShape.reduce(1, *)
        guard samples.count % max(features, 1) == 0, samples.count > 0 else {
            throw UsageError("cohort predict: \(input): \(samples.count) values do not make samples of \(features)")
        }
        let n = samples.count / features
        samples = try prepare(samples.reshaped([n] + experiment.model.inputShape), for: experiment)
        BLAS.setThreads(ProcessInfo.processInfo.activeProcessorCount)
        let z = experiment.model.predict(samples, parameters: parameters)
        let text = logits ? Self.rawTable(z) : Self.predictionTable(z, loss: experiment.config.training.loss)
        if let output { try AtomicFile.write(text, to: output) } else { FileHandle.standardOutput.write(Data(text.utf8)) }
    }

    /// The training data's preparation, applied once: raw samples through the normalizer fitted
    /// on the run's training set. For `scale` (÷ 255) input that is already in [0, 1] is left as
    /// it is: dividing it again would feed the model near-zero images.
    func prepare(_ samples: Tensor, for experiment: Experiment) throws -> Tensor {
        let data = experiment.config.data
        if data.normalization == .scale, samples.maxAbs <= 1 {
            stderrLine("cohort predict: input is already in [0, 1]; not scaling it again")
            return samples
        }
        let raw = try data.loadRawTraining(seed: experiment.config.seed)
        let normalizer = Normalizer(fitting: data.normalization, to: raw)
        return normalizer.apply(Dataset(name: "input", inputs: samples, targets: Tensor.zeros([samples.shape[0]]))).inputs
    }

    /// index, then each raw output to 9 significant digits (exact for Float32).
    static func rawTable(_ z: Tensor) -> String {
        let (rows, columns) = z.matrixShape
        var lines = ["index," + (0..<columns).map { "z\($0)" }.joined(separator: ",")]
        for r in 0..<rows {
            lines.append(([String(r)] + (0..<columns).map { String(format: "%.9g", Double(z[flat: r * columns + $0])) }).joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// index, the predicted class (classification) and the probabilities, or the outputs.
    static func predictionTable(_ z: Tensor, loss: Loss) -> String {
        let (rows, columns) = z.matrixShape
        let classify = loss.isClassification
        var lines = [(classify ? ["index", "prediction"] : ["index"]).joined(separator: ",") + "," +
                     (0..<columns).map { classify ? "p\($0)" : "y\($0)" }.joined(separator: ",")]
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
        return lines.joined(separator: "\n") + "\n"
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
