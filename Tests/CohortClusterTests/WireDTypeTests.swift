@testable import CohortCluster
import CohortTestSupport
import Foundation
import Testing

/// `cluster.wire_dtype: bf16`: gradients and weights travel as bfloat16, and the rounding is part
/// of the arithmetic (every tree node, the weights workers compute on), so where a sum is made
/// does not change a bit.
@Suite(.serialized) struct WireDTypeTests {
    /// One local worker through shared memory, and four workers on loopback tcp without shared
    /// memory, relaying for each other and streaming in bfloat16 (with clip_norm, so some bets
    /// on the clipping factor are lost): the same weights. The socket carries half the bytes of
    /// fp32, and the weights are not fp32's.
    @Test func bf16GivesTheSameWeightsForAnyPlacementAtHalfTheBytes() throws {
        let dir = temporaryDirectory()
        let settings = ["--set", "training.steps=60", "--set", "training.micro_batches=8", "--set", "cluster.threads_per_worker=1",
                        "--set", "training.clip_norm=0.7", "--set", "evaluation.at_end=false"]
        let bf16 = ["--set", "cluster.wire_dtype=bf16"]
        let reference = dir.appendingPathComponent("reference").path, fp32 = dir.appendingPathComponent("fp32").path
        try runReference(reference, settings + bf16)
        try runReference(fp32, settings)

        let run = dir.appendingPathComponent("relayed").path
        let port = 40000 + Int((getpid() + 7919) % 20000)
        let result = try runCohort(["train", "configs/mnist-mlp.yaml", "--workers", "4", "--bind", "tcp://127.0.0.1:\(port)",
                                    "--run-dir", run, "--log-level", "debug", "--set", "cluster.shared_memory=false"] + settings + bf16)
        #expect(result.status == 0, "\(result.stderr.suffix(3000))")
        #expect(result.stderr.contains("relays [\""), "the workers did not relay: \(result.stderr.suffix(2000))")
        let weights = try tensorBytes("\(run)/final.safetensors")
        let same = try tensorBytes("\(reference)/final.safetensors"), other = try tensorBytes("\(fp32)/final.safetensors")
        #expect(weights.count == 4 && weights == same)
        #expect(weights != other)
        let clipped = try metricsRecords(run).filter { $0["clipped"] as? Bool == true }.count
        #expect(clipped > 0 && clipped < 60, "\(clipped) steps clipped: no bet was lost, or none won")
        // 784-512-10: 407,050 values, 2 bytes each; with relays about one model each way in a
        // step that was not clipped (a clipped one sends the weights again, updated anew).
        let model = 407_050 * 2
        let steps = try metricsRecords(run).filter { $0["workers"] != nil && $0["clipped"] as? Bool == false }.dropFirst(2)
        let sent = steps.map { $0["bytes_sent"] as? Int ?? 0 }.sorted(), received = steps.map { $0["bytes_received"] as? Int ?? 0 }.sorted()
        #expect(sent[sent.count / 2] < model * 11 / 10 && received[received.count / 2] < model * 11 / 10, "sent \(sent), received \(received)")
        #expect(received[received.count / 2] >= model)
    }
}
