@testable import CohortCluster
import CohortTestSupport
import Foundation
import Testing

/// With `clip_norm`, the streamed step bets that a step is not clipped only when the step before
/// was not (`StreamedUpdate.bets`): a run whose steps are nearly all clipped sends each step's
/// weights once, not a void generation first and then the clipped one.
@Suite(.serialized) struct ClippingBetTests {
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
