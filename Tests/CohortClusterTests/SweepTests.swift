@testable import CohortExperiment
import CohortTestSupport
import Foundation
import Testing

/// cohort sweep: every combination of a grid, each a real run, compared in sweep.csv and
/// sweep.svg; an interrupted sweep continues where it stopped.
@Suite(.serialized) struct SweepTests {
    @Test func thePlanIsEveryCombinationWithEachSeed() throws {
        let plan = try SweepPlan(config: "c.yaml", grids: ["optimizer.lr=0.01,0.1", "training.batch_size=64, 128"], seeds: 3, baseSeed: 5)
        #expect(plan.points.count == 12)
        #expect(plan.points[0].settings.map(\.value) == ["0.01", "64", "5"] && plan.points[11].settings.map(\.value) == ["0.1", "128", "7"])
        #expect(plan.points[1].directoryName == "lr-0.01_batch_size-64_seed-6")
        #expect(Set(plan.points.map(\.directoryName)).count == 12)
        // Two keys ending alike keep their whole names, so no two points share a directory.
        let clash = try SweepPlan(config: "c.yaml", grids: ["optimizer.lr=1,2", "other.lr=3"], seeds: nil, baseSeed: 0)
        #expect(clash.points.map(\.directoryName) == ["optimizer.lr-1_other.lr-3", "optimizer.lr-2_other.lr-3"])
        #expect(throws: SweepError.self) { try SweepPlan(config: "c.yaml", grids: ["optimizer.lr"], seeds: nil, baseSeed: 0) }
        #expect(throws: SweepError.self) { try SweepPlan(config: "c.yaml", grids: [], seeds: nil, baseSeed: 0) }
    }

    @Test func aSweepRunsComparesAndContinuesAfterCtrlC() throws {
        let dir = temporaryDirectory()
        let name = "sweep-\(UUID().uuidString.prefix(8))"
        let arguments = ["sweep", "configs/quickstart.yaml", "--grid", "optimizer.lr=0.05,0.2", "--seeds", "2", "--name", name,
                         "--workers", "2", "--set", "training.steps=1500", "--set", "data.validation=0.2",
                         "--set", "evaluation.every_steps=500"]
        let sweep = packageRoot.appendingPathComponent("runs/\(name)").path
        defer { try? FileManager.default.removeItem(atPath: sweep) }
        let dry = try runCohort(arguments + ["--dry-run"])
        #expect(dry.status == 0 && dry.stdout.split(separator: "\n").count == 4 && !FileManager.default.fileExists(atPath: sweep))
        // Stop the sweep during its second point.
        let first = try startCohort(arguments, log: dir.appendingPathComponent("first.log"))
        let second = "\(sweep)/lr-0.05_seed-\(2)"
        _ = waitForSteps(second, 100)
        kill(first.processIdentifier, SIGINT)
        first.waitUntilExit()
        let log = (try? String(contentsOf: dir.appendingPathComponent("first.log"), encoding: .utf8)) ?? ""
        #expect(first.terminationStatus == 130, "\(log)")
        let kept = try Data(contentsOf: URL(fileURLWithPath: "\(sweep)/lr-0.05_seed-1/final.safetensors"))
        // The same command continues: the finished point is kept, the interrupted one resumed.
        let again = try runCohort(arguments)
        #expect(again.status == 0, "\(again.stdout)\(again.stderr)")
        #expect(again.stdout.contains("[1/4] optimizer.lr=0.05 seed=1: done before, kept"), "\(again.stdout)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: "\(sweep)/lr-0.05_seed-1/final.safetensors")) == kept)
        let rows = try String(contentsOfFile: "\(sweep)/sweep.csv", encoding: .utf8).split(separator: "\n")
        #expect(rows.first == "point,optimizer.lr,seed,status,train_loss,train_accuracy,eval_loss,eval_accuracy,wall_time_s,samples_per_s,run_dir")
        #expect(rows.count == 5 && rows.dropFirst().allSatisfy { $0.contains(",done,") })
        let svg = try String(contentsOfFile: "\(sweep)/sweep.svg", encoding: .utf8)
        #expect(svg.contains("evaluation loss") && svg.contains("final evaluation accuracy") && svg.contains("lr-0.2_seed-2"))
        // The interrupted point ends as if it had run straight.
        let straight = dir.appendingPathComponent("straight").path
        #expect(try runCohort(["train", "configs/quickstart.yaml", "--workers", "2", "--run-dir", straight, "--quiet",
                               "--set", "training.steps=1500", "--set", "data.validation=0.2", "--set", "evaluation.every_steps=500",
                               "--set", "optimizer.lr=0.05", "--set", "seed=2"]).status == 0)
        #expect(try tensorBytes("\(second)/final.safetensors") == tensorBytes("\(straight)/final.safetensors"))
        // Another grid under the same name is refused.
        let other = try runCohort(["sweep", "configs/quickstart.yaml", "--grid", "optimizer.lr=0.3", "--name", name])
        #expect(other.status == 2 && other.stderr.contains("another sweep"))
    }
}
