@testable import CohortData
@testable import CohortTensor
import CohortTestSupport
import Foundation
import Testing

/// The smaller commands as a user meets them: eval and predict next to a run, config
/// --defaults, data without a network, trace of a real model.
@Suite(.serialized) struct CommandTests {
    /// A short MNIST MLP run, trained once for the tests below.
    static let mnistRun: String = {
        let run = temporaryDirectory().appendingPathComponent("mlp").path
        _ = try? runCohort(["train", "configs/mnist-mlp.yaml", "--workers", "2", "--run-dir", run, "--quiet",
                            "--set", "training.epochs=2", "--set", "evaluation.at_end=false"])
        return run
    }()

    @Test func evalAndPredictReadTheRunsOwnConfig() throws {
        let run = Self.mnistRun
        let eval = try runCohort(["eval", "\(run)/final.safetensors"])
        #expect(eval.status == 0 && eval.stdout.contains("accuracy") && eval.stdout.contains("confusion matrix"), "\(eval.stderr)")
        // A checkpoint's run is one level up; --set reaches the config.
        let checkpoint = try #require(try FileManager.default.contentsOfDirectory(atPath: "\(run)/checkpoints").first)
        let fromCheckpoint = try runCohort(["eval", "\(run)/checkpoints/\(checkpoint)", "--split", "train",
                                            "--set", "evaluation.limit=100"])
        #expect(fromCheckpoint.status == 0 && fromCheckpoint.stdout.contains("mnist-train"), "\(fromCheckpoint.stderr)")
        // Weights of another model: said plainly.
        let other = try runCohort(["eval", "\(run)/final.safetensors", "--config", "configs/mnist-lenet.yaml"])
        #expect(other.status == 2 && other.stderr.contains("this config's model") && !other.stderr.contains("not a valid safetensors"),
                "\(other.stderr)")
        let lonely = temporaryDirectory().appendingPathComponent("w.safetensors")
        try FileManager.default.copyItem(atPath: "\(run)/final.safetensors", toPath: lonely.path)
        let noConfig = try runCohort(["eval", lonely.path])
        #expect(noConfig.status == 2 && noConfig.stderr.contains("--config") && !noConfig.stderr.contains("Usage:"))
    }

    /// The run's normalization is applied once: raw uint8 images and the same images already
    /// scaled to [0, 1] get the same predictions; --logits prints the raw outputs in full.
    @Test func predictNormalizesOnceAndPrintsLogits() throws {
        let run = Self.mnistRun
        let test = try MNIST.load(directory: mnistDirectory.path, split: .test)
        let raw = test.inputs.rows(0..<50)
        let dir = temporaryDirectory()
        try NPY.encode(raw).write(to: dir.appendingPathComponent("raw.npy"))
        try NPY.encode(raw.map { $0 / 255 }).write(to: dir.appendingPathComponent("scaled.npy"))
        let fromRaw = try runCohort(["predict", "\(run)/final.safetensors", "--input", dir.appendingPathComponent("raw.npy").path])
        let fromScaled = try runCohort(["predict", "\(run)/final.safetensors", "--input", dir.appendingPathComponent("scaled.npy").path])
        #expect(fromRaw.status == 0 && fromScaled.status == 0, "\(fromRaw.stderr)\(fromScaled.stderr)")
        func classes(_ csv: String) -> [String] { csv.split(separator: "\n").dropFirst().map { String($0.split(separator: ",")[1]) } }
        #expect(classes(fromRaw.stdout) == classes(fromScaled.stdout))
        let right = zip(classes(fromScaled.stdout), 0..<50).filter { Int($0) == Int(test.targets[flat: $1]) }.count
        #expect(right >= 40, "\(right) of 50 test digits right")
        #expect(Set(classes(fromScaled.stdout)).count > 3, "every prediction the same class")
        let logits = try runCohort(["predict", "\(run)/final.safetensors", "--input", dir.appendingPathComponent("raw.npy").path, "--logits"])
        let header = logits.stdout.split(separator: "\n").first.map(String.init)
        #expect(header == "index," + (0..<10).map { "z\($0)" }.joined(separator: ","))
        let first = logits.stdout.split(separator: "\n")[1].split(separator: ",").dropFirst().compactMap { Float($0) }
        #expect(first.count == 10 && first.contains { $0 < 0 })
    }

    @Test func configDefaultsPrintsEveryKeyAndReadsBack() throws {
        let result = try runCohort(["config", "configs/quickstart.yaml", "--defaults"])
        #expect(result.status == 0, "\(result.stderr)")
        for key in ["heartbeat_timeout: 10", "every_minutes: 5", "weight_decay: 0", "reduction: mean", "micro_batches: 4",
                    "normalize: none", "keep_last: 3", "min_workers: 1", "shuffle: true"] {
            #expect(result.stdout.contains(key), "\(key)")
        }
        let full = temporaryDirectory().appendingPathComponent("full.yaml")
        try result.stdout.write(to: full, atomically: true, encoding: .utf8)
        #expect(try runCohort(["config", full.path]).status == 0)
    }

    @Test func dataWithoutANetworkSaysWhatToDo() throws {
        let target = temporaryDirectory().appendingPathComponent("mnist").path
        let process = Process()
        process.executableURL = try cohortExecutable()
        process.arguments = ["data", "mnist", "--to", target]
        var environment = childEnvironment
        environment["COHORT_MNIST_MIRRORS"] = "http://127.0.0.1:9/"   // discard port: refused at once
        process.environment = environment
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 1 && text.contains("by hand") && text.contains("--mirror"), "\(text)")
        #expect(!text.contains("NSCocoaErrorDomain"))
        #expect(try runCohort(["data", "mnist", "--bogus"]).status == 2)
        // A local directory works as a mirror (here the tests' MNIST, with its own checksums).
        let local = try runCohort(["data", "mnist", "--to", target, "--mirror", mnistDirectory.path])
        #expect(local.status == 1 && local.stderr.contains("MD5"), "\(local.stderr)")
    }

    @Test func traceSummarizesLargeTensors() throws {
        let short = try runCohort(["trace", "configs/mnist-mlp.yaml", "--steps", "1"])
        #expect(short.status == 0 && short.stdout.utf8.count < 20_000 && short.stdout.contains("tensor [512, 784]"), "\(short.stderr)")
        let full = try runCohort(["trace", "configs/mnist-mlp.yaml", "--steps", "1", "--full"])
        #expect(full.status == 0 && full.stdout.utf8.count > 1_000_000)
    }

    /// Off a terminal every log line says when (ISO 8601), so do the workers' logs; debug shows
    /// the joins, tasks and results; an evaluation says it is running.
    @Test func logsSayWhenAndDebugShowsTheExchange() throws {
        let run = temporaryDirectory().appendingPathComponent("run").path
        let result = try runCohort(["train", "configs/xor.yaml", "--workers", "2", "--run-dir", run, "--log-level", "debug",
                                    "--set", "training.steps=20", "--set", "data.validation=0.25"])
        #expect(result.status == 0, "\(result.stderr)")
        let stamp = #/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z /#
        let lines = result.stdout.split(separator: "\n")
        #expect(!lines.isEmpty && lines.allSatisfy { $0.firstMatch(of: stamp) != nil }, "\(result.stdout)")
        let worker = try String(contentsOfFile: "\(run)/workers/worker-1.log", encoding: .utf8).split(separator: "\n")
        #expect(!worker.isEmpty && worker.allSatisfy { $0.firstMatch(of: stamp) != nil }, "\(worker)")
        #expect(result.stdout.contains("joined") && result.stderr.contains("micro-batches") && result.stderr.contains("done by worker"))
        #expect(worker.contains { $0.contains("debug: step") }, "--log-level debug reaches the local workers: \(worker)")
        #expect(result.stdout.contains("evaluating on"))
    }

    @Test func versionAndCompletion() throws {
        let version = try runCohort(["--version"])
        #expect(version.status == 0 && version.stdout.firstMatch(of: #/^cohort \d+\.\d+\.\d+ \(commit ([0-9a-f]{12}(-dirty)?|unknown)\)/#) != nil,
                "\(version.stdout)")
        let completion = try runCohort(["--generate-completion-script", "bash"])
        #expect(completion.status == 0 && completion.stdout.contains("yaml"))
    }
}
