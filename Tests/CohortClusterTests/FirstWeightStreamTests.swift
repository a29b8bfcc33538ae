@testable import CohortCluster
import CohortTestSupport
import Foundation
import Testing

/// Workers whose gradients go up the network without relays sum their first weight's gradient
/// row range by row range while the first chunks are on the wire (`FirstWeightRows`), and start
/// the next step's first layer while its weights arrive (`FirstLayerAhead`).
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
}
