@testable import CohortExperiment
import CohortTestSupport
import Foundation
import Testing

/// What happens to a run around its steps: stopped by a signal, checkpointed by default,
/// resumed or extended, never overwritten.
@Suite(.serialized) struct RunLifecycleTests {
    /// quickstart at constant learning rate, so a run extended later equals one run straight.
    static let quick = ["--set", "optimizer.schedule.name=constant", "--set", "evaluation.at_end=false", "--quiet"]

    func summary(_ run: String) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(run)/summary.json"))) as! [String: Any]
    }

    func checkpoints(_ run: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "\(run)/checkpoints")) ?? []).filter { $0.hasSuffix(".safetensors") }.sorted()
    }

    /// Ctrl-C (and SIGTERM) mid-run: the step ends, a checkpoint, an interrupted summary.json and
    /// the plot are written, the exit status is 130 (143), the workers go too, and --resume ends
    /// with the bytes of an uninterrupted run.
    @Test(arguments: [(SIGINT, Int32(130)), (SIGTERM, Int32(143))])
    func aSignalStopsAtAStepBoundaryAndTheRunResumes(signal: Int32, status: Int32) throws {
        let dir = temporaryDirectory()
        let settings = ["--set", "training.steps=1200", "--set", "checkpoint.every_minutes=0"] + Self.quick
        let reference = dir.appendingPathComponent("reference").path
        #expect(try runCohort(["train", "configs/mnist-mlp.yaml", "--workers", "2", "--run-dir", reference] + settings).status == 0)
        let run = dir.appendingPathComponent("stopped").path
        let coordinator = try startCohort(["train", "configs/mnist-mlp.yaml", "--workers", "2", "--run-dir", run] + settings,
                                          log: dir.appendingPathComponent("coordinator.log"))
        let seen = waitForSteps(run, 200)
        kill(coordinator.processIdentifier, signal)
        coordinator.waitUntilExit()
        let log = (try? String(contentsOf: dir.appendingPathComponent("coordinator.log"), encoding: .utf8)) ?? ""
        #expect(seen >= 200 && coordinator.terminationStatus == status, "\(log)")
        let stopped = try summary(run)
        let step = try #require(stopped["steps"] as? Int)
        #expect(stopped["interrupted"] as? Bool == true && step >= 200 && step < 1200)
        #expect(checkpoints(run) == ["step-\(step).safetensors"])
        #expect(FileManager.default.fileExists(atPath: "\(run)/curves.svg") && !FileManager.default.fileExists(atPath: "\(run)/final.safetensors"))
        #expect(log.contains("cohort train --resume"), "\(log)")
        #expect(workerProcesses(of: run).isEmpty, "the workers outlived their coordinator")
        let resumed = try runCohort(["train", "--resume", run, "--quiet"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(try tensorBytes("\(run)/final.safetensors") == tensorBytes("\(reference)/final.safetensors"))
        #expect(try summary(run)["interrupted"] == nil)
    }

    /// A second Ctrl-C does not wait for the step: the coordinator quits at once (130), and its
    /// workers, which watch it, follow.
    @Test func aSecondCtrlCQuitsAtOnce() throws {
        let dir = temporaryDirectory()
        let run = dir.appendingPathComponent("run").path
        // LeNet at a large batch: a step is long enough for both signals to land inside it.
        let coordinator = try startCohort(["train", "configs/mnist-lenet.yaml", "--workers", "2", "--run-dir", run, "--quiet",
                                           "--set", "training.batch_size=1024", "--set", "training.steps=40"],
                                          log: dir.appendingPathComponent("coordinator.log"))
        _ = waitForSteps(run, 2)
        kill(coordinator.processIdentifier, SIGINT)
        // Apart, or the kernel may merge the two into one pending signal (then the step ends
        // as for one Ctrl-C, which under a loaded machine can take seconds).
        usleep(300_000)
        kill(coordinator.processIdentifier, SIGINT)
        let start = Date()
        coordinator.waitUntilExit()
        #expect(coordinator.terminationStatus == 130 && Date().timeIntervalSince(start) < 5)
        let deadline = Date().addingTimeInterval(10)
        while !workerProcesses(of: run).isEmpty && Date() < deadline { usleep(100_000) }
        #expect(workerProcesses(of: run).isEmpty, "the workers outlived their coordinator")
    }

    @Test func checkpointsAreOnByDefaultAndAFinishedRunCanBeExtended() throws {
        let dir = temporaryDirectory()
        let straight = dir.appendingPathComponent("straight").path
        #expect(try runCohort(["train", "configs/quickstart.yaml", "--workers", "2", "--run-dir", straight,
                               "--set", "training.steps=90"] + Self.quick).status == 0)
        let run = dir.appendingPathComponent("extended").path
        #expect(try runCohort(["train", "configs/quickstart.yaml", "--workers", "2", "--run-dir", run,
                               "--set", "training.steps=60"] + Self.quick).status == 0)
        #expect(checkpoints(run) == ["step-60.safetensors"], "a checkpoint at the end, with no checkpoint keys set")
        let extended = try runCohort(["train", "--resume", run, "--set", "training.steps=90", "--quiet"])
        #expect(extended.status == 0, "\(extended.stderr)")
        #expect(try tensorBytes("\(run)/final.safetensors") == tensorBytes("\(straight)/final.safetensors"))
        #expect(try String(contentsOfFile: "\(run)/config.yaml", encoding: .utf8).contains("steps: 90"))
    }

    @Test func resumeSaysWhatIsWrongWithoutAUsageLine() throws {
        let dir = temporaryDirectory()
        let none = dir.appendingPathComponent("none").path
        #expect(try runCohort(["train", "configs/xor.yaml", "--workers", "1", "--run-dir", none, "--quiet",
                               "--set", "checkpoint.at_end=false", "--set", "checkpoint.every_minutes=0"]).status == 0)
        let missing = try runCohort(["train", "--resume", none])
        #expect(missing.status == 2 && missing.stderr.contains("no checkpoint") && missing.stderr.contains("checkpoint.every_minutes"),
                "\(missing.stderr)")
        #expect(!missing.stderr.contains("Usage:"))

        let run = dir.appendingPathComponent("run").path
        #expect(try runCohort(["train", "configs/xor.yaml", "--workers", "1", "--run-dir", run, "--quiet"]).status == 0)
        let changed = try runCohort(["train", "--resume", run, "--set", "optimizer.lr=0.7"])
        #expect(changed.status == 2 && changed.stderr.contains("optimizer.lr") && changed.stderr.contains("training.steps"), "\(changed.stderr)")
        #expect(!changed.stderr.contains("Usage:"))
    }

    @Test func aRunDirectoryIsNeverOverwritten() throws {
        let run = temporaryDirectory().appendingPathComponent("run").path
        #expect(try runCohort(["train", "configs/xor.yaml", "--workers", "1", "--run-dir", run, "--quiet"]).status == 0)
        let before = try Data(contentsOf: URL(fileURLWithPath: "\(run)/metrics.jsonl"))
        let again = try runCohort(["train", "configs/xor.yaml", "--workers", "1", "--run-dir", run, "--quiet", "--set", "training.steps=3"])
        #expect(again.status == 2 && again.stderr.contains("not empty") && again.stderr.contains("--resume"), "\(again.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: "\(run)/metrics.jsonl")) == before)
    }

    /// `training.steps: 0` writes the initial weights, to export or inspect them.
    @Test func zeroStepsWritesTheInitialWeights() throws {
        let run = temporaryDirectory().appendingPathComponent("run").path
        let result = try runCohort(["train", "configs/quickstart.yaml", "--run-dir", run, "--quiet", "--set", "training.steps=0"])
        #expect(result.status == 0, "\(result.stderr)")
        let experiment = try Experiment(config: try ExperimentConfig.load(path: packageRoot.appendingPathComponent("configs/quickstart.yaml").path))
        let written = try Experiment.loadWeights("\(run)/final.safetensors", for: experiment.model)
        #expect(zip(written, experiment.initialParameters).allSatisfy { $0.bitwiseEqual($1) })
    }
}

/// Worker processes whose command line names this run directory (local workers read its config).
func workerProcesses(of run: String) -> [Int32] {
    let pids = (try? FileManager.default.contentsOfDirectory(atPath: "/proc"))?.compactMap { Int32($0) } ?? []
    return pids.filter { pid in
        guard let raw = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
        let arguments = raw.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        return arguments.contains("worker") && arguments.contains { $0.hasPrefix(run) }
    }
}
