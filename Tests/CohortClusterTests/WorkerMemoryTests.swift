@testable import CohortCluster
import CohortTestSupport
import Foundation
import Testing

/// Workers report their peak memory with every result (`peak_rss_mb` in metrics.jsonl and
/// summary.json), and it stops growing once a run is under way: a leak shows within a few dozen
/// steps. A GRU once leaked 3.3 MB a micro-batch; here that is about 330 MB by step 60.
@Suite struct WorkerMemoryTests {
    @Test func workersDoNotGrowAsTheyTrain() throws {
        let dir = temporaryDirectory()
        for config in ["mnist-gru", "mnist-lstm", "mnist-rnn", "mnist-mlp", "mnist-residual", "mnist-lenet"] {
            let run = dir.appendingPathComponent(config).path
            let result = try runCohort(["train", "configs/\(config).yaml", "--workers", "2", "--run-dir", run, "--quiet",
                                        "--set", "training.steps=60", "--set", "cluster.threads_per_worker=1",
                                        "--set", "evaluation.at_end=false", "--set", "checkpoint.at_end=false"])
            #expect(result.status == 0, "\(config): \(result.stderr)")
            // Per step, per worker: the peak so far, in MiB.
            let peaks = try metricsRecords(run).compactMap { record -> [Double]? in
                (record["workers"] as? [[String: Any]])?.compactMap { $0["peak_rss_mb"] as? Double }
            }
            try #require(peaks.count == 60 && peaks.allSatisfy { $0.count == 2 && $0.allSatisfy { $0 > 10 } }, "\(config): \(peaks.prefix(3))")
            for worker in 0..<2 {
                let growth = peaks[59][worker] - peaks[9][worker]
                #expect(growth < 16, "\(config): worker \(worker + 1) grew by \(growth) MiB from step 10 to step 60")
            }
            let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(run)/summary.json"))) as? [String: Any]
            let workers = summary?["workers"] as? [[String: Any]] ?? []
            #expect(workers.map { $0["peak_rss_mb"] as? Double } == peaks[59].map { $0 }, "\(config): \(workers)")
        }
    }
}
