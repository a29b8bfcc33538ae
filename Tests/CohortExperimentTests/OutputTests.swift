@testable import CohortData
@testable import CohortExperiment
@testable import CohortTraining
@testable import CohortTensor
import CohortTestSupport
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing

@Suite struct SafetensorsTests {
    @Test func roundTripKeepsNamesShapesValuesAndMetadata() throws {
        let entries = [
            Safetensors.Entry("0.weight", Tensor.normal([3, 5], seed: 1, stream: .init(purpose: 1))),
            Safetensors.Entry("0.bias", Tensor([1, -2, 3.5])),
            Safetensors.Entry("scalar", Tensor(shape: [], [42])),
        ]
        let data = Safetensors.encode(entries, metadata: ["step": "7"])
        // The layout: u64 little-endian header length, JSON, then data aligned to 8 bytes.
        let headerLength = data.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        #expect(headerLength % 8 == 0)
        #expect(data.count == 8 + headerLength + (15 + 3 + 1) * 4)
        let header = try JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + headerLength))) as! [String: Any]
        #expect((header["0.bias"] as! [String: Any])["dtype"] as? String == "F32")
        let decoded = try Safetensors.decode(data)
        #expect(decoded.metadata == ["step": "7"])
        #expect(decoded.entries.map(\.name) == ["0.weight", "0.bias", "scalar"])
        for (a, b) in zip(decoded.entries, entries) { #expect(a.tensor.bitwiseEqual(b.tensor)) }
    }

    @Test func corruptFilesAreRejected() {
        let good = Safetensors.encode([Safetensors.Entry("w", Tensor([1, 2]))])
        #expect(throws: Safetensors.FormatError.self) { try Safetensors.decode(good.prefix(5)) }
        #expect(throws: Safetensors.FormatError.self) { try Safetensors.decode(good.dropLast(4)) }
        var huge = good
        huge[0] = 0xff; huge[1] = 0xff
        #expect(throws: Safetensors.FormatError.self) { try Safetensors.decode(huge) }
    }
}

@Suite struct CLITests {
    @Test func badConfigExitsTwoNamingTheKeyAndLine() throws {
        let dir = temporaryDirectory()
        let config = dir.appendingPathComponent("bad.yaml")
        let text = try String(contentsOf: packageRoot.appendingPathComponent("configs/xor.yaml"), encoding: .utf8)
            .replacingOccurrences(of: "  lr: 0.5", with: "  lr: zero")
        try text.write(to: config, atomically: true, encoding: .utf8)
        let result = try runCohort(["train", config.path, "--run-dir", dir.appendingPathComponent("run").path])
        #expect(result.status == 2)
        #expect(result.stderr.contains("optimizer.lr"))
        #expect(result.stderr.contains("bad.yaml:24"))
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("run").path))
        #expect(try runCohort(["train", "configs/xor.yaml", "--set", "training.stepz=3"]).status == 2)
        #expect(try runCohort(["train"]).status == 2)
        #expect(try runCohort(["train", "no/such/file.yaml"]).status == 2)
        #expect(try runCohort(["--help"]).status == 0)
    }

    @Test func badDataExitsTwoNamingTheFileAndLine() throws {
        let dir = temporaryDirectory()
        let csv = dir.appendingPathComponent("points.csv")
        try "x1,x2,label\n0.1,0.2,0\n0.3,oops,1\n".write(to: csv, atomically: true, encoding: .utf8)
        let config = dir.appendingPathComponent("csv.yaml")
        try """
        data: {name: csv, path: \(csv.path), label: label}
        model: {input: 2, layers: [{linear: {out: 2}}]}
        training: {loss: cross_entropy, batch_size: 2, steps: 1}
        optimizer: {lr: 0.1}
        """.write(to: config, atomically: true, encoding: .utf8)
        let result = try runCohort(["train", config.path, "--run-dir", dir.appendingPathComponent("run").path])
        #expect(result.status == 2)
        #expect(result.stderr.contains("points.csv:3") && result.stderr.contains("'oops' is not a number"), "\(result.stderr)")
        try "x1,x2,label\n0.1,0.2,0\n0.3,0.4,1\n".write(to: csv, atomically: true, encoding: .utf8)
        let good = try runCohort(["train", config.path, "--run-dir", dir.appendingPathComponent("run2").path])
        #expect(good.status == 0, "\(good.stderr)")
    }

    @Test func trainWritesTheRunDirectory() throws {
        let dir = temporaryDirectory().appendingPathComponent("run")
        let result = try runCohort(["train", "configs/xor.yaml", "--run-dir", dir.path, "--set", "training.steps=300"])
        #expect(result.status == 0, "\(result.stderr)")
        let metrics = try String(contentsOf: dir.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
            .split(separator: "\n")
        #expect(metrics.count == 300)
        let first = try JSONSerialization.jsonObject(with: Data(metrics[0].utf8)) as! [String: Any]
        #expect(first["step"] as? Int == 1 && first["epoch"] as? Int == 0 && first["loss"] is Double)
        let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("summary.json"))) as! [String: Any]
        // XOR from random initial weights: all four points right.
        #expect(summary["train_accuracy"] as? Double == 1)
        let weights = try Safetensors.read(path: dir.appendingPathComponent("final.safetensors").path)
        #expect(weights.entries.map(\.name) == ["0.weight", "0.bias", "2.weight", "2.bias"])
        #expect(weights.entries.map(\.tensor.shape) == [[4, 2], [4], [1, 4], [1]])
        let config = try String(contentsOf: dir.appendingPathComponent("config.yaml"), encoding: .utf8)
        #expect(config.contains("steps: 300"))
    }

    @Test func curvesEvaluationsInspectAndEval() throws {
        let dir = temporaryDirectory().appendingPathComponent("run")
        let result = try runCohort(["train", "configs/quickstart.yaml", "--run-dir", dir.path, "--quiet", "--workers", "1",
                                    "--set", "training.epochs=4", "--set", "data.validation=0.25", "--set", "evaluation.every_steps=20"])
        #expect(result.status == 0, "\(result.stderr)")
        let lines = try String(contentsOf: dir.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n")
        let evaluations = try lines.map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }.filter { $0["eval_loss"] != nil }
        // 1,500 training samples in batches of 64: 94 steps; evaluations at 20, 40, 60, 80 and the end.
        #expect(evaluations.count == 5 && evaluations.allSatisfy { $0["eval_set"] as? String == "spirals-validation" })
        // curves.svg: well-formed XML with both panels, their axes labels and legends.
        let svg = try Data(contentsOf: dir.appendingPathComponent("curves.svg"))
        let text = String(decoding: svg, as: UTF8.self)
        #expect(XMLParser(data: svg).parse())
        for label in ["training loss", "evaluation loss", "training accuracy", "evaluation accuracy", ">step<", ">loss<", ">accuracy<"] {
            #expect(text.contains(label), "curves.svg lacks \(label)")
        }
        #expect(text.components(separatedBy: "<polyline").count - 1 == 4)

        let weights = dir.appendingPathComponent("final.safetensors").path
        let eval = try runCohort(["eval", weights, "--config", "configs/quickstart.yaml", "--split", "train"])
        #expect(eval.status == 0, "\(eval.stderr)")
        #expect(eval.stdout.contains("accuracy") && eval.stdout.contains("confusion matrix") && eval.stdout.contains("recall"))
        let inspect = try runCohort(["inspect", weights])
        #expect(inspect.status == 0 && inspect.stdout.contains("4.weight") && inspect.stdout.contains("[2, 64]"))
        #expect(try runCohort(["inspect", "configs/xor.yaml"]).status == 2)
        #expect(try runCohort(["eval", weights, "--config", "configs/xor.yaml"]).status == 2, "weights of another model")
    }

    /// The axes of curves.svg read as a person would draw them: round ticks, the loss axis
    /// reaching to the next one above the data. (mnist-lstm's run: steps 6 to 2345, loss 2.3 down.)
    @Test func curvesHaveRoundTicks() {
        let loss: [(x: Double, y: Double)] = (0..<390).map { k in
            let step = Double(6 + 6 * k), value: Double = 2.3 * exp(-Double(k) / 40)
            return (step, value)
        }
        let accuracy: [(x: Double, y: Double)] = loss.map { ($0.x, 1 - $0.y / 2.4) }
        let svg = Curves.svg(title: "t", loss: [.init(name: "training loss", color: "blue", points: loss)],
                             accuracy: [.init(name: "training accuracy", color: "blue", points: accuracy)])
        func labels(anchor: String) -> [String] {
            svg.components(separatedBy: "<text ").filter { $0.contains("text-anchor=\"\(anchor)\"") && !$0.contains("rotate") }
                .compactMap { $0.split(separator: ">").dropFirst().first?.split(separator: "<").first.map(String.init) }
        }
        #expect(labels(anchor: "end") == ["0", "0.5", "1", "1.5", "2", "2.5", "0", "0.25", "0.5", "0.75", "1"])
        #expect(labels(anchor: "middle").filter { Int($0) != nil } == ["500", "1000", "1500", "2000", "500", "1000", "1500", "2000"])
    }

    @Test func predictWritesClassesAndProbabilities() throws {
        let dir = temporaryDirectory()
        let run = dir.appendingPathComponent("run")
        #expect(try runCohort(["train", "configs/quickstart.yaml", "--run-dir", run.path, "--quiet", "--workers", "1",
                               "--set", "training.epochs=30", "--set", "evaluation.at_end=false"]).status == 0)
        // The first 40 training points, as a user would hand them over from NumPy.
        let data = SyntheticDataset.spirals.generate(samples: 2000, noise: 0.05, seed: 1)
        let npy = dir.appendingPathComponent("points.npy")
        try NPY.encode(data.inputs.rows(0..<40)).write(to: npy)
        let result = try runCohort(["predict", run.appendingPathComponent("final.safetensors").path,
                                    "--config", "configs/quickstart.yaml", "--input", npy.path])
        #expect(result.status == 0, "\(result.stderr)")
        let rows = result.stdout.split(separator: "\n").dropFirst().map { $0.split(separator: ",") }
        #expect(rows.count == 40)
        let right = rows.enumerated().filter { Int($1[1]) == Int(data.targets[flat: $0]) }.count
        #expect(right >= 36, "\(right) of 40 training points classified right")
        #expect(rows.allSatisfy { abs((Double($0[2]) ?? 0) + (Double($0[3]) ?? 0) - 1) < 1e-5 })
        try "1,2,3\n".write(to: dir.appendingPathComponent("bad.csv"), atomically: true, encoding: .utf8)
        #expect(try runCohort(["predict", run.appendingPathComponent("final.safetensors").path, "--config", "configs/quickstart.yaml",
                               "--input", dir.appendingPathComponent("bad.csv").path]).status == 2)
    }

    @Test func traceCommandPrintsTheLectureTable() throws {
        let result = try runCohort(["trace", "configs/lecture-2-2-1.yaml"])
        #expect(result.status == 0)
        #expect(result.stdout.contains("Iteration 3") && result.stdout.contains("0.9150"))
    }
}

/// The progress bar's rate and ETA come from the steady pace, not from a clock that started
/// before the workers did, and a resumed run counts only the steps still to go.
@Suite struct StepPaceTests {
    @Test func rateAndETAFollowTheSteadySteps() throws {
        var pace = StepPace(window: 10)
        #expect(pace.samplesPerSecond == nil && pace.secondsRemaining(until: 200) == nil)
        // Step 1 ends 5 s after the start (workers spawning), then a step every 10 ms.
        pace.record(step: 1, samples: 128, at: 5.0)
        for step in 2...52 { pace.record(step: step, samples: 128, at: 5.0 + Double(step - 1) * 0.01) }
        #expect(abs(try #require(pace.samplesPerSecond) - 12_800) < 1)
        #expect(abs(try #require(pace.secondsRemaining(until: 200)) - 1.48) < 1e-9)
        // A run resumed at step 120 of 200: after a slow first step, the pace of the rest.
        var resumed = StepPace(window: 10)
        resumed.record(step: 121, samples: 128, at: 30)
        for step in 122...131 { resumed.record(step: step, samples: 128, at: 30 + Double(step - 121) * 0.02) }
        #expect(abs(try #require(resumed.secondsRemaining(until: 200)) - 69 * 0.02) < 1e-9)
    }
}
