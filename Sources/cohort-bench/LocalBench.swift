import Foundation

// MARK: `cohort train` on this machine against PyTorch on the same models, side by side

/// The models of the local table: each config at batch 128 (as the configs train), for about
/// the same few seconds per run.
struct LocalModel {
    let name: String
    let steps: Int

    static let all = [LocalModel(name: "mnist-mlp", steps: 800), LocalModel(name: "mnist-lenet", steps: 60),
                      LocalModel(name: "mnist-lstm", steps: 150), LocalModel(name: "mnist-gru", steps: 150)]
}

/// PyTorch's training loop on `threads` threads (bench/pytorch_reference.py local), in samples/s;
/// nil when torch is not installed.
func pytorchLocalRun(_ model: LocalModel, threads: Int) throws -> Double? {
    guard let m = try pytorchReference(["local", "--model", model.name, "--threads", "\(threads)", "--steps", "\(model.steps)",
                                        "--batch", "128"]) else { return nil }
    guard let rate = m["samples_per_s"] as? Double else { throw BenchError("the PyTorch loop gave no samples/s") }
    return rate
}

/// For each model, `cohort train` (its defaults: one worker per core, one thread each) and
/// PyTorch on 1 and on all cores take turns for `rounds` rounds; each line gives best and
/// median of each (steady samples/s), Cohort's ratio to the better PyTorch, and Cohort's share
/// of the step outside worker compute. `cohort-bench local-mnist-lstm` runs one model. The
/// configs train as they are: `mnist-gru` uses the lecture's GRU equations, PyTorch its own.
func localBench(rounds: Int = 3) {
    let cores = ProcessInfo.processInfo.activeProcessorCount
    for model in LocalModel.all where selected("local-\(model.name)") {
        do {
            var cohort: [DistributedRun] = [], torch1: [Double] = [], torchAll: [Double] = []
            for _ in 0..<rounds {
                cohort.append(try distributedRun(config: "configs/\(model.name).yaml", workers: cores,
                                                 overrides: ["training.batch_size=128", "training.steps=\(model.steps)"]))
                if let rate = try pytorchLocalRun(model, threads: 1) { torch1.append(rate) }
                if let rate = try pytorchLocalRun(model, threads: cores) { torchAll.append(rate) }
            }
            // PyTorch's figure is a steady loop; Cohort's steady rate (the batch over the median
            // step) is the one to hold against it. The wall rate also counts starting workers.
            let rates = cohort.map { Double($0.batch) / $0.stepSeconds }, wall = cohort.map(\.samplesPerSecond)
            let steadyShare = median(cohort.map { $0.overheadSeconds / $0.stepSeconds })
            var pairs: [(String, Any)] = [("bench", "local_vs_pytorch"), ("config", model.name), ("batch", 128), ("workers", cores),
                                          ("cohort_samples_per_s_best", rates.max() ?? .nan), ("cohort_samples_per_s_median", median(rates)),
                                          ("cohort_wall_samples_per_s_median", median(wall)),
                                          ("cohort_step_ms", median(cohort.map(\.stepSeconds)) * 1e3),
                                          ("cohort_share_outside_compute", steadyShare),
                                          ("cohort_compute_ms", median(cohort.map(\.computeSeconds)) * 1e3),
                                          ("cohort_handoff_ms", median(cohort.map(\.handoffSeconds)) * 1e3),
                                          ("cohort_reduce_ms", median(cohort.map(\.reduceSeconds)) * 1e3),
                                          ("cohort_update_ms", median(cohort.map(\.updateSeconds)) * 1e3)]
            if !torch1.isEmpty && !torchAll.isEmpty {
                let best = max(torch1.max()!, torchAll.max()!), medianBest = max(median(torch1), median(torchAll))
                pairs += [("torch_1_thread_best", torch1.max()!), ("torch_1_thread_median", median(torch1)),
                          ("torch_\(cores)_threads_best", torchAll.max()!), ("torch_\(cores)_threads_median", median(torchAll)),
                          ("ratio_to_best_torch_best", (rates.max() ?? .nan) / best), ("ratio_to_best_torch_median", median(rates) / medianBest)]
            }
            pairs.append(("rounds", rounds))
            emitPairs(pairs)
        } catch {
            emitLine("{\"bench\":\"local_vs_pytorch\",\"config\":\"\(model.name)\",\"error\":\"\(error)\"}")
        }
    }
}
