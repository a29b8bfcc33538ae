import CBLAS
import CohortData
import CohortExperiment
import CohortNN
import CohortTensor
import Foundation

// `make bench`: one JSON object per line. Speed lives here, never in timed tests.

BLAS.tuneAllocator()
BLAS.setThreads(1)

/// `cohort-bench NAME…` runs only the benchmarks whose name contains one of the arguments.
let filters = Array(CommandLine.arguments.dropFirst())
func selected(_ name: String) -> Bool { filters.isEmpty || filters.contains { name.contains($0) } }

func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

/// Best-of-N seconds per call of `body`, after a warm-up, running at least `minimum` seconds per trial.
func measure(trials: Int = 5, minimum: Double = 0.2, _ body: () -> Void) -> Double {
    body()
    var best = Double.infinity
    for _ in 0..<trials {
        var calls = 0
        let start = now()
        repeat { body(); calls += 1 } while now() - start < minimum
        best = min(best, (now() - start) / Double(calls))
    }
    return best
}

func emit(_ pairs: KeyValuePairs<String, Any>) {
    let body = pairs.map { key, value -> String in
        switch value {
        case let d as Double: return "\"\(key)\":\(String(format: "%.4g", d))"
        case let i as Int: return "\"\(key)\":\(i)"
        default: return "\"\(key)\":\"\(value)\""
        }
    }
    FileHandle.standardOutput.write(Data(("{" + body.joined(separator: ",") + "}\n").utf8))
}

// MARK: sgemm through the Tensor API against raw cblas_sgemm

struct Shape { let name: String; let m, n, k: Int; let ta, tb: Bool }
let shapes = [
    Shape(name: "512x512x512", m: 512, n: 512, k: 512, ta: false, tb: false),
    Shape(name: "mlp_forward 128x784 . (512x784)T", m: 128, n: 512, k: 784, ta: false, tb: true),
    Shape(name: "mlp_grad_weight (128x512)T . 128x784", m: 512, n: 784, k: 128, ta: true, tb: false),
    Shape(name: "mlp_grad_input 128x512 . 512x784", m: 128, n: 784, k: 512, ta: false, tb: false),
]
for s in shapes where selected("sgemm") {
    let a = Tensor.uniform(s.ta ? [s.k, s.m] : [s.m, s.k], low: -1, high: 1, seed: 1, stream: .init(purpose: 1))
    let b = Tensor.uniform(s.tb ? [s.n, s.k] : [s.k, s.n], low: -1, high: 1, seed: 2, stream: .init(purpose: 1))
    var c = [Float](repeating: 0, count: s.m * s.n)
    let flops = 2.0 * Double(s.m * s.n * s.k)
    let raw = a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in
        c.withUnsafeMutableBufferPointer { pc in
            measure {
                cblas_sgemm(CblasRowMajor, s.ta ? CblasTrans : CblasNoTrans, s.tb ? CblasTrans : CblasNoTrans,
                            Int32(s.m), Int32(s.n), Int32(s.k), 1, pa.baseAddress, Int32(a.shape[1]),
                            pb.baseAddress, Int32(b.shape[1]), 0, pc.baseAddress, Int32(s.n))
            }
        }
    } }
    var sink: Float = 0
    let api = measure { sink += a.matmul(b, transposeSelf: s.ta, transposeOther: s.tb)[flat: 0] }
    emit(["bench": "sgemm", "shape": s.name, "threads": 1, "raw_gflops": flops / raw / 1e9,
          "tensor_gflops": flops / api / 1e9, "tensor_vs_raw": raw / api])
}

// MARK: MLP 784-512-10, forward + backward + SGD update, batch 128, one thread

if selected("mlp_train_step") { do {
    let model = try Sequential(inputShape: [784], layers: [
        Linear(inFeatures: 784, outFeatures: 512), Activation.relu, Linear(inFeatures: 512, outFeatures: 10),
    ])
    var parameters = model.initialParameters(.pytorch, seed: 1)
    var optimizer = Optimizer(rule: SGD(), learningRate: 0.01, parameters: parameters)
    let batch = 128
    let x = Tensor.uniform([batch, 784], seed: 3, stream: .init(purpose: 9))
    let y = Tensor(shape: [batch], (0..<batch).map { Float($0 % 10) })
    let gradient = MicroBatchGradient(model: model, loss: .softmaxCrossEntropy, reduction: .mean)
    let update = StepUpdate(reduction: .mean, clipNorm: nil)
    let seconds = measure(minimum: 0.5) {
        let sum = gradient(parameters: parameters, inputs: x, targets: y, context: .init(training: true))
        _ = update.apply(sum, batchSize: batch, parameters: &parameters, optimizer: &optimizer)
    }
    emit(["bench": "mlp_train_step", "model": "784-512-10", "batch": batch, "threads": 1,
          "step_ms": seconds * 1e3, "samples_per_s": Double(batch) / seconds])
} catch {
    print("{\"bench\":\"mlp_train_step\",\"error\":\"\(error)\"}")
} }

// MARK: data pipeline: MNIST load and decode, batch assembly as a share of a training step

if selected("data") { do {
    let directory = ProcessInfo.processInfo.environment["COHORT_DATA"] ?? "../shared/data/mnist"
    var train: Dataset?
    let loadSeconds = measure(trials: 3, minimum: 0) { train = try? MNIST.load(directory: directory, split: .train) }
    guard let train else { throw DataError(file: directory, "MNIST not found") }
    emit(["bench": "mnist_load", "images": train.count, "seconds": loadSeconds])

    let scaled = Normalizer(fitting: .scale, to: train).apply(train)
    let model = try Sequential(inputShape: [784], layers: [
        Linear(inFeatures: 784, outFeatures: 512), Activation.relu, Linear(inFeatures: 512, outFeatures: 10),
    ])
    let parameters = model.initialParameters(.pytorch, seed: 1)
    let gradient = MicroBatchGradient(model: model, loss: .softmaxCrossEntropy, reduction: .mean)
    let order = seededPermutation(train.count, seed: 1, stream: .init(purpose: 3))
    var assembler = BatchAssembler()
    var cursor = 0
    func nextIndices() -> [Int] {
        defer { cursor = (cursor + 128) % (train.count - 128) }
        return Array(order[cursor..<(cursor + 128)])
    }
    let assemble = measure { _ = assembler.assemble(nextIndices(), from: scaled) }
    let step = measure {
        let (x, y) = assembler.assemble(nextIndices(), from: scaled)
        _ = gradient(parameters: parameters, inputs: x, targets: y, context: .init(training: true))
    }
    emit(["bench": "batch_assembly", "batch": 128, "assemble_us": assemble * 1e6, "step_ms": step * 1e3,
          "share_of_step": assemble / step])
} catch {
    print("{\"bench\":\"data\",\"error\":\"\(error)\"}")
} }

// MARK: LeNet and LSTM training steps in one process, two BLAS threads, batch 128

/// Samples/s of forward + backward + update for a config's model on random data of its shape.
func trainStepBench(name: String, config path: String, threads: Int) {
    guard selected(name) else { return }
    do {
        BLAS.setThreads(threads)
        defer { BLAS.setThreads(1) }
        let config = try ExperimentConfig.load(path: path, overrides: ["data.name=xor"])
        let model = try Sequential(inputShape: config.model.inputShape, layers: config.model.layers.map(\.layer))
        var parameters = model.initialParameters(.pytorch, seed: 1)
        var optimizer = config.optimizer.make(parameters: parameters)
        let batch = 128
        let x = Tensor.uniform([batch] + config.model.inputShape, seed: 3, stream: .init(purpose: 9))
        let y = Tensor(shape: [batch], (0..<batch).map { Float($0 % 10) })
        let gradient = MicroBatchGradient(model: model, loss: config.training.loss, reduction: .mean)
        let update = StepUpdate(reduction: .mean, clipNorm: config.training.clipNorm)
        let seconds = measure(trials: 3, minimum: 1) {
            let sum = gradient(parameters: parameters, inputs: x, targets: y, context: .init(training: true, sampleIndices: Array(0..<batch)))
            _ = update.apply(sum, batchSize: batch, parameters: &parameters, optimizer: &optimizer)
        }
        emit(["bench": name, "batch": batch, "threads": threads, "step_ms": seconds * 1e3, "samples_per_s": Double(batch) / seconds])
    } catch {
        print("{\"bench\":\"\(name)\",\"error\":\"\(error)\"}")
    }
}

trainStepBench(name: "lenet_train_step", config: "configs/mnist-lenet.yaml", threads: 2)
trainStepBench(name: "lenet_train_step_1thread", config: "configs/mnist-lenet.yaml", threads: 1)
trainStepBench(name: "lstm_train_step", config: "configs/mnist-lstm.yaml", threads: 2)
trainStepBench(name: "lstm_train_step_1thread", config: "configs/mnist-lstm.yaml", threads: 1)

// MARK: the distributed trainer: samples/s with 1 and 2 local worker processes

/// Runs `cohort train` and reads its summary and metrics.
func distributedBench(name: String, config: String, workers: Int, overrides: [String]) {
    guard selected("distributed") || selected(name) else { return }
    let cohort = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("cohort").path
    let run = NSTemporaryDirectory() + "cohort-bench-\(name)-\(workers)-\(getpid())"
    defer { try? FileManager.default.removeItem(atPath: run) }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: cohort)
    process.arguments = ["train", config, "--workers", "\(workers)", "--run-dir", run, "--quiet",
                         "--set", "cluster.threads_per_worker=1"] + overrides.flatMap { ["--set", $0] }
    do {
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0,
              let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(run)/summary.json"))) as? [String: Any]
        else { throw DataError(file: run, "cohort train failed (exit \(process.terminationStatus))") }
        // Per step: the time not covered by the slowest worker's compute is the coordinator's
        // overhead (exchange, reduce, update, broadcast). The first 10 steps warm up.
        let lines = try String(contentsOfFile: "\(run)/metrics.jsonl", encoding: .utf8).split(separator: "\n").dropFirst(10)
        var stepTotal = 0.0, overhead = 0.0
        for line in lines {
            guard let m = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let step = m["step_time_s"] as? Double, let ws = m["workers"] as? [[String: Any]] else { continue }
            let compute = ws.compactMap { $0["compute_s"] as? Double }.max() ?? 0
            stepTotal += step; overhead += max(0, step - compute)
        }
        let steps = Double(max(lines.count, 1))
        emit(["bench": "distributed_train", "config": name, "workers": workers, "threads_per_worker": 1,
              "samples_per_s": summary["samples_per_s"] as? Double ?? 0,
              "step_ms": stepTotal / steps * 1e3, "coordinator_overhead_ms": overhead / steps * 1e3,
              "coordinator_overhead_share": overhead / max(stepTotal, 1e-12)])
    } catch {
        print("{\"bench\":\"distributed_train\",\"config\":\"\(name)\",\"error\":\"\(error)\"}")
    }
}

for workers in [1, 2] {
    distributedBench(name: "mnist-mlp", config: "configs/mnist-mlp.yaml", workers: workers,
                     overrides: ["training.batch_size=512", "training.micro_batches=4", "training.steps=150"])
}
for workers in [1, 2] {
    distributedBench(name: "mnist-lenet", config: "configs/mnist-lenet.yaml", workers: workers,
                     overrides: ["training.batch_size=128", "training.micro_batches=4", "training.steps=40"])
}
