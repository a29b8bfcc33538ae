import CBLAS
import CohortData
import CohortExperiment
import CohortNN
import CohortTensor
import CohortTraining
import Foundation

// `make bench`: one JSON object per line. Speed lives here, never in timed tests.

BLAS.tuneAllocator()
BLAS.setThreads(1)

/// `cohort-bench NAME…` runs only the benchmarks whose name contains one of the arguments;
/// `=NAME` selects that name exactly.
let filters = Array(CommandLine.arguments.dropFirst())
func selected(_ name: String) -> Bool {
    filters.isEmpty || filters.contains { $0.hasPrefix("=") ? name == $0.dropFirst() : name.contains($0) }
}

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

/// MNIST for the benchmarks: where configs find it ($COHORT_DATA, configs/data/mnist, the
/// download cache), else the subset shipped in data/mnist-subset (speed does not need all of it).
let mnistDirectory = MNISTSearch(fashion: false, configDirectory: "configs").find() ?? "data/mnist-subset"

/// Runs a benchmark that may fail (a missing dataset, say): its error becomes a JSON line too.
func benchmark(_ name: String, _ body: () throws -> Void) {
    do { try body() } catch { print("{\"bench\":\"\(name)\",\"error\":\"\(error)\"}") }
}

func emit(_ pairs: KeyValuePairs<String, Any>) { emitPairs(Array(pairs)) }

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
    let directory = mnistDirectory
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
    benchmark(name) {
        BLAS.setThreads(threads)
        defer { BLAS.setThreads(1) }
        let config = try ExperimentConfig.load(path: path, overrides: ["data.name=xor"])
        let model = try config.model.spec.makeModel()
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
    }
}

trainStepBench(name: "lenet_train_step", config: "configs/mnist-lenet.yaml", threads: 2)
trainStepBench(name: "lenet_train_step_1thread", config: "configs/mnist-lenet.yaml", threads: 1)
trainStepBench(name: "lstm_train_step", config: "configs/mnist-lstm.yaml", threads: 2)
trainStepBench(name: "lstm_train_step_1thread", config: "configs/mnist-lstm.yaml", threads: 1)

// MARK: MLP, LeNet and LSTM trainer steps in one process, the micro-batches on parallel threads

/// The trainer's whole step on MNIST (batch assembly, forward, backward, tree sum, update) with
/// the in-process executor, as the config says (batch 128 in 4 micro-batches of 32): the
/// micro-batches on `threads` threads with one BLAS thread each (the same sums, bit for bit, as
/// one thread or two worker processes).
func trainerStepBench(name: String, config path: String, threads: Int) {
    guard selected(name) else { return }
    benchmark(name) {
        BLAS.setThreads(1)
        let config = try ExperimentConfig.load(path: path, overrides: [
            "data.path=\(mnistDirectory)", "training.batch_size=128", "training.steps=100000",
        ])
        let experiment = try Experiment(config: config)
        var trainer = Trainer(experiment: experiment)
        var executor = LocalExecutor(experiment: experiment, threads: threads)
        let seconds = measure(trials: 3, minimum: 1) { _ = try! trainer.runStep(with: &executor) }
        emit(["bench": name, "batch": 128, "micro_batches": config.training.microBatches, "threads": threads, "blas_threads": 1,
              "step_ms": seconds * 1e3, "samples_per_s": 128 / seconds])
    }
}

trainerStepBench(name: "mlp_trainer_step", config: "configs/mnist-mlp.yaml", threads: 2)
trainerStepBench(name: "mlp_trainer_step_1thread", config: "configs/mnist-mlp.yaml", threads: 1)
trainerStepBench(name: "lenet_trainer_step", config: "configs/mnist-lenet.yaml", threads: 2)
trainerStepBench(name: "lenet_trainer_step_1thread", config: "configs/mnist-lenet.yaml", threads: 1)
trainerStepBench(name: "lstm_trainer_step", config: "configs/mnist-lstm.yaml", threads: 2)
trainerStepBench(name: "lstm_trainer_step_1thread", config: "configs/mnist-lstm.yaml", threads: 1)

// MARK: the coordinator's update of the MLP's 407,050 weights (SGD, Nesterov), on 1 and 2 threads

if selected("optimizer_update") {
    let shapes = [[512, 784], [512], [10, 512], [10]]
    func filled(_ shape: [Int], _ k: Int) -> Tensor {
        let n = shape.reduce(1, *)
        return Tensor(shape: shape, (0..<n).map { Float(($0 * 7919 + k) % 1000) / 1000 - 0.5 })
    }
    var parameters = shapes.map { filled($0, 1) }
    let gradients = shapes.map { filled($0, 2) }
    for lanes in [1, 2] {
        var optimizer = Optimizer(rule: SGD(momentum: 0.9, nesterov: true), learningRate: 0.01, parameters: parameters)
        optimizer.lanes = lanes
        let seconds = measure { optimizer.apply(to: &parameters, gradients: gradients, scale: 1.0 / 512) }
        emit(["bench": "optimizer_update", "parameters": 407_050, "threads": lanes, "ms": seconds * 1e3])
    }
}

// MARK: the distributed trainer: samples/s with 1 and 2 local worker processes

/// One `cohort train` run: its wall-clock samples/s (summary.json) and, from metrics.jsonl after
/// 10 warm-up steps, the median step time and the median time not covered by the slowest
/// worker's compute (the coordinator's overhead: exchange, reduce, update).
struct DistributedRun {
    var samplesPerSecond: Double
    var stepSeconds: Double
    var overheadSeconds: Double
    /// Medians of the step's parts: the slowest worker's compute, the hand-offs around it (the
    /// exchange less that compute), and the coordinator's reduce and update.
    var computeSeconds = 0.0, handoffSeconds = 0.0, reduceSeconds = 0.0, updateSeconds = 0.0
    var batch: Int
}

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    return sorted.isEmpty ? .nan : sorted[sorted.count / 2]
}

func distributedRun(config: String, workers: Int, overrides: [String], threadsPerWorker: Int? = 1) throws -> DistributedRun {
    let cohort = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("cohort").path
    let run = NSTemporaryDirectory() + "cohort-bench-\(workers)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    defer { try? FileManager.default.removeItem(atPath: run) }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: cohort)
    process.arguments = ["train", config, "--workers", "\(workers)", "--run-dir", run, "--quiet",
                         "--set", "evaluation.at_end=false", "--set", "checkpoint.at_end=false",
                         "--set", "data.path=\(mnistDirectory)"] + overrides.flatMap { ["--set", $0] }
        + (threadsPerWorker.map { ["--set", "cluster.threads_per_worker=\($0)"] } ?? [])
    try process.run()
    process.waitUntilExit()
    guard process.terminationStatus == 0,
          let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(run)/summary.json"))) as? [String: Any]
    else { throw DataError(file: run, "cohort train failed (exit \(process.terminationStatus))") }
    var steps: [Double] = [], overheads: [Double] = [], batch = 0
    var computes: [Double] = [], handoffs: [Double] = [], reduces: [Double] = [], updates: [Double] = []
    for line in try String(contentsOfFile: "\(run)/metrics.jsonl", encoding: .utf8).split(separator: "\n").dropFirst(10) {
        guard let m = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
              let step = m["step_time_s"] as? Double, let ws = m["workers"] as? [[String: Any]] else { continue }
        let compute = ws.compactMap { $0["compute_s"] as? Double }.max() ?? 0
        steps.append(step); overheads.append(max(0, step - compute))
        computes.append(compute); handoffs.append(max(0, (m["exchange_s"] as? Double ?? compute) - compute))
        reduces.append(m["reduce_s"] as? Double ?? 0); updates.append(m["update_s"] as? Double ?? 0)
        batch = m["samples"] as? Int ?? batch
    }
    var result = DistributedRun(samplesPerSecond: summary["samples_per_s"] as? Double ?? 0, stepSeconds: median(steps),
                                overheadSeconds: median(overheads), batch: batch)
    (result.computeSeconds, result.handoffSeconds) = (median(computes), median(handoffs))
    (result.reduceSeconds, result.updateSeconds) = (median(reduces), median(updates))
    return result
}

/// 1 and 2 local workers, alternated for `trials` rounds so that a noisy spell of this shared VM
/// hits both alike; each figure is the best round's.
func distributedBench(name: String, config: String, overrides: [String], trials: Int = 5) {
    guard selected("distributed") || selected(name) else { return }
    var best: [Int: DistributedRun] = [:]
    do {
        for _ in 0..<trials {
            for workers in [1, 2] {
                let run = try distributedRun(config: config, workers: workers, overrides: overrides)
                if let b = best[workers], b.stepSeconds <= run.stepSeconds { continue }
                best[workers] = run
            }
        }
    } catch {
        print("{\"bench\":\"distributed_train\",\"config\":\"\(name)\",\"error\":\"\(error)\"}")
        return
    }
    for workers in [1, 2] {
        let r = best[workers]!
        emit(["bench": "distributed_train", "config": name, "workers": workers, "threads_per_worker": 1, "batch": r.batch,
              "samples_per_s": r.samplesPerSecond, "steady_samples_per_s": Double(r.batch) / r.stepSeconds,
              "step_ms": r.stepSeconds * 1e3, "coordinator_overhead_ms": r.overheadSeconds * 1e3,
              "coordinator_overhead_share": r.overheadSeconds / r.stepSeconds, "trials": trials])
    }
    emit(["bench": "distributed_speedup", "config": name, "workers": 2,
          "speedup": best[2]!.samplesPerSecond / best[1]!.samplesPerSecond,
          "steady_speedup": best[1]!.stepSeconds / best[2]!.stepSeconds])
}

distributedBench(name: "mnist-mlp", config: "configs/mnist-mlp.yaml",
                 overrides: ["training.batch_size=512", "training.micro_batches=4", "training.steps=300"])
distributedBench(name: "mnist-lenet", config: "configs/mnist-lenet.yaml",
                 overrides: ["training.batch_size=128", "training.micro_batches=4", "training.steps=60"])

/// At default threads one worker computes its micro-batches on every core, one BLAS thread each
/// (so its weights equal those of several workers): it should be about as fast as one worker per
/// core. `--workers 1` and `--workers 2` alternate for five rounds; the best round counts.
func defaultThreadsBench(trials: Int = 5) {
    guard selected("default_threads") else { return }
    let overrides = ["training.batch_size=128", "training.micro_batches=4", "training.steps=400"]
    var best: [Int: DistributedRun] = [:]
    do {
        for _ in 0..<trials {
            for workers in [1, 2] {
                let run = try distributedRun(config: "configs/mnist-mlp.yaml", workers: workers, overrides: overrides, threadsPerWorker: nil)
                if let b = best[workers], b.samplesPerSecond >= run.samplesPerSecond { continue }
                best[workers] = run
            }
        }
    } catch {
        print("{\"bench\":\"default_threads\",\"error\":\"\(error)\"}")
        return
    }
    emit(["bench": "default_threads", "config": "mnist-mlp", "batch": 128, "cores": ProcessInfo.processInfo.activeProcessorCount,
          "one_worker_samples_per_s": best[1]!.samplesPerSecond, "workers_per_core_samples_per_s": best[2]!.samplesPerSecond,
          "ratio": best[1]!.samplesPerSecond / best[2]!.samplesPerSecond, "trials": trials])
}

defaultThreadsBench()

localBench()
blasFamilyBench()
lanBench()
