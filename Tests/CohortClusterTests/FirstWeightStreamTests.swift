@testable import CohortCluster
import CohortTestSupport
import Foundation
import Testing

/// The streamed step across the network. Workers whose gradients go up without relays sum their
/// first weight's gradient row range by row range while the first chunks are on the wire
/// (`FirstWeightRows`), and start the next step's first layer while its weights arrive
/// (`FirstLayerAhead`). With `clip_norm`, the coordinator bets that a step is not clipped only
/// when the step before was not (`StreamedUpdate.bets`), so a run whose steps are nearly all
/// clipped sends each step's weights once, not a void generation first.
@Suite(.serialized) struct FirstWeightStreamTests {
    /// Two workers on loopback tcp, without shared memory or relays, on one thread and on two:
    /// the weights of one local worker through shared memory, in float32 (rows) and in bfloat16
    /// with clip_norm (whole, where some steps are updated twice).
    @Test func rowRangesChangeNoBit() throws {
        let dir = temporaryDirectory()
        let settings = ["--set", "training.steps=40", "--set", "training.micro_batches=8", "--set", "evaluation.at_end=false"]
        let port = 40000 + Int((getpid() + 4409) % 20000)
        for (name, extra) in [("fp32", [String]()), ("bf16", ["--set", "cluster.wire_dtype=bf16", "--set", "training.clip_norm=0.7"])] {
            let reference = dir.appendingPathComponent("reference-\(name)").path
            try runReference(reference, settings + extra + ["--set", "cluster.threads_per_worker=1"])
            for threads in [1, 2] {
                let run = dir.appendingPathComponent("\(name)-\(threads)").path
                let result = try runCohort(["train", "configs/mnist-mlp.yaml", "--workers", "2", "--bind", "tcp://127.0.0.1:\(port)",
                                            "--run-dir", run, "--log-level", "debug", "--set", "cluster.shared_memory=false",
                                            "--set", "cluster.relays=false", "--set", "cluster.threads_per_worker=\(threads)"]
                                           + settings + extra)
                #expect(result.status == 0, "\(result.stderr.suffix(3000))")
                for worker in 1...2 {
                    let log = (try? String(contentsOfFile: "\(run)/workers/worker-\(worker).log", encoding: .utf8)) ?? ""
                    let taken = log.components(separatedBy: "first weight's gradient in row ranges").count - 1
                    let expected = name == "fp32" ? 40 : 0
                    #expect(taken == expected, "\(name), \(threads) threads: worker \(worker) sent \(taken) steps in row ranges")
                    // Every step after the first starts from the first layer computed while its
                    // weights arrived (`FirstLayerAhead`).
                    let ahead = log.components(separatedBy: "starts from its first layer computed ahead").count - 1
                    #expect(ahead == 39, "\(name), \(threads) threads: worker \(worker) computed \(ahead) steps' first layer ahead")
                }
                #expect(try tensorBytes("\(run)/final.safetensors") == tensorBytes("\(reference)/final.safetensors"),
                        "\(name), \(threads) threads")
            }
        }
    }

    /// Two workers on loopback tcp without shared memory, relaying (the coordinator sends one
    /// model a step), `clip_norm` 0.2, which clips all but a few steps of the MLP: one model
    /// down per step, and the weights of one local worker.
    @Test func aClippedRunSendsTheWeightsOnce() throws {
        let dir = temporaryDirectory()
        let settings = ["--set", "training.steps=30", "--set", "training.micro_batches=8", "--set", "training.clip_norm=0.2",
                        "--set", "evaluation.at_end=false", "--set", "cluster.threads_per_worker=1"]
        let reference = dir.appendingPathComponent("reference").path
        try runReference(reference, settings)
        let run = dir.appendingPathComponent("run").path
        let port = 40000 + Int((getpid() + 5417) % 20000)
        let result = try runCohort(["train", "configs/mnist-mlp.yaml", "--workers", "2", "--bind", "tcp://127.0.0.1:\(port)",
                                    "--run-dir", run, "--quiet", "--set", "cluster.shared_memory=false"] + settings)
        #expect(result.status == 0, "\(result.stderr.suffix(3000))")
        #expect(try tensorBytes("\(run)/final.safetensors") == tensorBytes("\(reference)/final.safetensors"))
        let steps = try metricsRecords(run).filter { $0["workers"] != nil }
        let clipped = steps.filter { $0["clipped"] as? Bool == true }.count
        #expect(clipped >= 25, "\(clipped) of \(steps.count) steps clipped")
        // After the first step (the whole weights to each worker as they join), one model down.
        let model = 407_050 * 4
        let sent = steps.dropFirst(2).map { $0["bytes_sent"] as? Int ?? 0 }.sorted()
        #expect(!sent.isEmpty && sent[sent.count / 2] < model * 11 / 10, "bytes sent per step: \(sent)")
    }
}
