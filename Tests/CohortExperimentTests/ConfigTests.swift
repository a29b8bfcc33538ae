@testable import CohortExperiment
@testable import CohortTensor
import CohortTestSupport
import Foundation
import Testing

@Suite struct ConfigTests {
    let valid = """
    seed: 1
    data:
      name: xor
      samples: 4
    model:
      input: 2
      layers:
        - linear: {out: 4}
        - tanh
        - linear: {out: 1}
    training:
      loss: bce_with_logits
      batch_size: 4
      steps: 5
    optimizer:
      name: sgd
      lr: 0.5
    """

    func error(_ text: String, overrides: [String] = []) -> ConfigError? {
        do {
            let config = try ExperimentConfig.parse(text, file: "test.yaml", overrides: overrides)
            _ = try Experiment(config: config)
            return nil
        } catch let error as ConfigError {
            return error
        } catch {
            Issue.record("unexpected error \(error)")
            return nil
        }
    }

    @Test func everyShippedConfigIsValid() throws {
        let dir = packageRoot.appendingPathComponent("configs")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".yaml") }
        #expect(files.count >= 3)
        for file in files {
            // The MNIST configs read the tests' MNIST (the full set, or the shipped subset).
            let config = try ExperimentConfig.load(path: dir.appendingPathComponent(file).path,
                                                   overrides: file.hasPrefix("mnist") ? ["data.path=\(mnistDirectory.path)"] : [])
            _ = try Experiment(config: config)
        }
    }

    @Test func validConfigParses() throws {
        let config = try ExperimentConfig.parse(valid, file: "test.yaml")
        #expect(config.training.steps == 5 && config.optimizer.lr == 0.5 && config.name == "test")
    }

    @Test func unknownKeyGetsDidYouMeanWithLine() throws {
        let e = try #require(error(valid.replacingOccurrences(of: "  batch_size: 4", with: "  batch_sise: 4")))
        #expect(e.keyPath == "training.batch_sise")
        #expect(e.line == 13)
        #expect(e.message.contains("did you mean 'batch_size'"))
    }

    @Test func wrongTypeAndRangeNameKeyAndLine() throws {
        let e = try #require(error(valid.replacingOccurrences(of: "lr: 0.5", with: "lr: fast")))
        #expect(e.keyPath == "optimizer.lr" && e.line == 17 && e.message.contains("expected a number"))
        let r = try #require(error(valid.replacingOccurrences(of: "batch_size: 4", with: "batch_size: 0")))
        #expect(r.keyPath == "training.batch_size" && r.line == 13 && r.message.contains("at least 1"))
        let m = try #require(error(valid.replacingOccurrences(of: "  steps: 5", with: "  steps: 5\n  micro_batches: 8")))
        #expect(m.keyPath == "training.micro_batches" && m.line == 15)
    }

    @Test func wireDTypeIsReadAndATypoIsNamed() throws {
        let bf16 = try ExperimentConfig.parse(valid + "\ncluster:\n  wire_dtype: bf16\n", file: "test.yaml")
        #expect(bf16.cluster.wireDType == .bf16 && bf16.gradientSpec.wireDType == .bf16)
        #expect(try ExperimentConfig.parse(valid, file: "test.yaml").gradientSpec.wireDType == .fp32)
        let typo = try #require(error(valid + "\ncluster:\n  wire_dtype: bf61\n"))
        #expect(typo.keyPath == "cluster.wire_dtype" && typo.line == 19 && typo.message.contains("did you mean 'bf16'"), "\(typo)")
    }

    @Test func dealingIsReadAndATypoIsNamed() throws {
        #expect(try ExperimentConfig.parse(valid + "\ncluster:\n  dealing: tree\n", file: "test.yaml").cluster.dealing == .tree)
        #expect(try ExperimentConfig.parse(valid, file: "test.yaml").cluster.dealing == nil)
        let typo = try #require(error(valid + "\ncluster:\n  dealing: evne\n"))
        #expect(typo.keyPath == "cluster.dealing" && typo.line == 19 && typo.message.contains("did you mean 'even'"), "\(typo)")
    }

    @Test func badValuesAndLayers() throws {
        let loss = try #require(error(valid.replacingOccurrences(of: "bce_with_logits", with: "bce_with_logit")))
        #expect(loss.keyPath == "training.loss" && loss.message.contains("did you mean 'bce_with_logits'"))
        let layer = try #require(error(valid.replacingOccurrences(of: "- tanh", with: "- tahn")))
        #expect(layer.keyPath == "model.layers[1]" && layer.line == 9 && layer.message.contains("did you mean 'tanh'"))
        let shape = try #require(error(valid.replacingOccurrences(of: "- linear: {out: 1}", with: "- linear: {in: 3, out: 1}")))
        #expect(shape.keyPath == "model.layers[2]" && shape.line == 10 && shape.message.contains("needs 3 input features"))
        let missing = try #require(error(valid.replacingOccurrences(of: "  loss: bce_with_logits\n", with: "")))
        #expect(missing.keyPath == "training" && missing.message.contains("missing required key 'loss'"))
        let syntax = try #require(error("data: [unclosed"))
        #expect(syntax.line != nil && syntax.message.contains("YAML"))
    }

    @Test func initFromLoadsWeightsAndChecksNamesAndShapes() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cohort-init-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let good = dir.appendingPathComponent("good.safetensors").path
        let weights = [Safetensors.Entry("0.weight", Tensor.ones([4, 2])), Safetensors.Entry("0.bias", Tensor([1, 2, 3, 4])),
                       Safetensors.Entry("2.weight", Tensor.ones([1, 4])), Safetensors.Entry("2.bias", Tensor([7]))]
        try Safetensors.write(weights, to: good)
        let config = try ExperimentConfig.parse(valid, file: "test.yaml", overrides: ["model.init_from=\(good)"])
        let experiment = try Experiment(config: config)
        #expect(experiment.initialParameters[3].scalars == [7] && experiment.initialParameters[1].scalars == [1, 2, 3, 4])

        let bad = dir.appendingPathComponent("bad.safetensors").path
        try Safetensors.write([weights[0], weights[1], Safetensors.Entry("2.weight", Tensor.ones([4, 1])), weights[3]], to: bad)
        let e = try #require(error(valid, overrides: ["model.init_from=\(bad)"]))
        #expect(e.keyPath == "model.init_from" && e.message.contains("'2.weight'") && e.message.contains("[4, 1]"))
        let missing = try #require(error(valid, overrides: ["model.init_from=\(dir.path)/none.safetensors"]))
        #expect(missing.message.contains("no such file"))
    }

    @Test func overridesApplyAndAreValidated() throws {
        let config = try ExperimentConfig.parse(valid, file: "test.yaml", overrides: ["optimizer.lr=0.25", "training.steps=9"])
        #expect(config.optimizer.lr == 0.25 && config.training.steps == 9)
        #expect(config.resolvedYAML.contains("0.25"))
        let e = try #require(error(valid, overrides: ["optimizer.lr=-1"]))
        #expect(e.keyPath == "optimizer.lr" && e.file.contains("--set"))
        let typo = try #require(error(valid, overrides: ["optimiser.lr=1"]))
        #expect(typo.message.contains("did you mean 'optimizer'"))
    }

    /// Each optimizer takes its own settings: weight_decay reaches SGD, Adam and RMSprop (and
    /// AdamW keeps its 0.01 default), and another optimizer's setting is refused by name.
    @Test func optimizerSettingsBelongToTheirOptimizer() throws {
        for name in ["sgd", "adam", "rmsprop"] {
            let config = try ExperimentConfig.parse(valid, file: "test.yaml", overrides: ["optimizer.name=\(name)", "optimizer.weight_decay=0.02"])
            #expect(config.optimizer.weightDecay == 0.02, "\(name)")
            #expect("\(config.optimizer.rule)".contains("weightDecay: 0.02"), "\(config.optimizer.rule)")
        }
        #expect(try ExperimentConfig.parse(valid, file: "test.yaml", overrides: ["optimizer.name=adamw"]).optimizer.weightDecay == 0.01)
        #expect(try ExperimentConfig.parse(valid, file: "test.yaml", overrides: ["optimizer.name=adam"]).optimizer.weightDecay == 0)
        let momentum = try #require(error(valid, overrides: ["optimizer.name=adam", "optimizer.momentum=0.9"]))
        #expect(momentum.keyPath == "optimizer.momentum" && momentum.message.contains("adam has no 'momentum'"), "\(momentum)")
        let betas = try #require(error(valid, overrides: ["optimizer.betas=[0.9, 0.99]"]))
        #expect(betas.keyPath == "optimizer.betas" && betas.message.contains("sgd has no 'betas'"))
        let typo = try #require(error(valid, overrides: ["optimizer.weight_decy=0.1"]))
        #expect(typo.message.contains("did you mean 'weight_decay'"))
    }
}
