@testable import CohortCluster
import CohortTestSupport
import CohortTraining
import Foundation
import Testing

/// One OpenBLAS kernel family per run, so that machines with different CPUs train the same
/// weights. A machine is simulated with OPENBLAS_CORETYPE (the kernels its OpenBLAS would load)
/// and COHORT_SIMULATE_CPU (the most its CPU can run).
@Suite struct BLASFamilyTests {
    @Test func familiesOfCoresAndCPUs() {
        #expect(BLASFamily(coreName: "Zen") == .haswell && BLASFamily(coreName: "Haswell") == .haswell)
        #expect(BLASFamily(coreName: "Cooperlake") == .cooperlake && BLASFamily(coreName: "SkylakeX") == .skylakex)
        #expect(BLASFamily(coreName: "NEOVERSEN1") == nil)
        let avx2: Set = ["pni", "ssse3", "sse4_2", "avx", "avx2", "fma"]
        #expect(BLASFamily.runnable(cpuFlags: avx2) == [.haswell, .sandybridge, .nehalem, .core2, .prescott])
        #expect(BLASFamily.runnable(cpuFlags: avx2.union(["avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"])).first == .skylakex)
        // Agreeing workers keep what they loaded; a mix takes the fastest family they all run.
        #expect(BLASFamily.choose(loaded: ["haswell", "haswell"], runnable: [["skylakex", "haswell"], ["haswell"]]) == "haswell")
        #expect(BLASFamily.choose(loaded: ["skylakex", "haswell"], runnable: [["skylakex", "haswell", "sandybridge"], ["haswell", "sandybridge"]]) == "haswell")
        #expect(BLASFamily.choose(loaded: ["armv8", "haswell"], runnable: [["armv8"], ["haswell"]]) == nil)
    }

    /// Two workers on "machines" of different CPU families (one that goes no further than
    /// Sandybridge's AVX) train the bytes of one worker on the family they share; on its own
    /// kernels this machine trains other bytes, which is what the mix would otherwise blend.
    @Test func mixedCPUFamiliesGiveTheBytesOfOneWorker() throws {
        let dir = temporaryDirectory()
        let settings = ["--quiet", "--set", "training.steps=40", "--set", "evaluation.at_end=false", "--set", "cluster.threads_per_worker=1"]
        let pinned = dir.appendingPathComponent("pinned").path, native = dir.appendingPathComponent("native").path
        #expect(try runCohort(["train", "configs/mnist-mlp.yaml", "--workers", "1", "--run-dir", pinned, "--set", "cluster.blas_kernel=sandybridge"] + settings).status == 0)
        #expect(try runCohort(["train", "configs/mnist-mlp.yaml", "--workers", "1", "--run-dir", native] + settings).status == 0)
        #expect(try tensorBytes("\(pinned)/final.safetensors") != tensorBytes("\(native)/final.safetensors"),
                "Sandybridge's kernels gave this machine's bytes: the test would prove nothing")

        let run = dir.appendingPathComponent("mixed").path
        let (coordinator, endpoint) = try startExternalRun(dir, run: run, settings: settings)
        let older = try startCohort(["worker", "--connect", endpoint, "--config", "configs/mnist-mlp.yaml", "--timeout", "20"],
                                    log: dir.appendingPathComponent("older.log"),
                                    environment: ["OPENBLAS_CORETYPE": "Sandybridge", "COHORT_SIMULATE_CPU": "sandybridge"])
        let newer = try startCohort(["worker", "--connect", endpoint, "--config", "configs/mnist-mlp.yaml", "--timeout", "20"],
                                    log: dir.appendingPathComponent("newer.log"))
        coordinator.waitUntilExit()
        older.waitUntilExit()
        newer.waitUntilExit()
        let log = (try? String(contentsOf: dir.appendingPathComponent("coordinator.log"), encoding: .utf8)) ?? ""
        let newerLog = (try? String(contentsOf: dir.appendingPathComponent("newer.log"), encoding: .utf8)) ?? ""
        #expect(coordinator.terminationStatus == 0 && older.terminationStatus == 0 && newer.terminationStatus == 0, "\(log)\n\(newerLog)")
        #expect(newerLog.contains("restarting with them") && newerLog.contains("sandybridge BLAS kernels"), "\(newerLog)")
        #expect(try tensorBytes("\(run)/final.safetensors") == tensorBytes("\(pinned)/final.safetensors"))
    }

    /// A run pinned to a family refuses a worker whose CPU cannot run it, saying why; the run
    /// goes on with the workers that can. A misspelt family is a config error.
    @Test func aWorkerThatCannotRunThePinnedFamilyIsRefused() throws {
        let dir = temporaryDirectory()
        let run = dir.appendingPathComponent("run").path
        let (coordinator, endpoint) = try startExternalRun(dir, run: run, settings: [
            "--quiet", "--set", "training.steps=20", "--set", "evaluation.at_end=false", "--set", "cluster.min_workers=1",
            "--set", "cluster.blas_kernel=haswell"])
        let old = try runCohort(["worker", "--connect", endpoint, "--timeout", "20"], environment: ["COHORT_SIMULATE_CPU": "sandybridge"])
        #expect(old.status == 2 && old.stderr.contains("cannot run the run's BLAS kernels (haswell") && old.stderr.contains("sandybridge"), "\(old.stderr)")
        let able = try runCohort(["worker", "--connect", endpoint, "--timeout", "20"])
        coordinator.waitUntilExit()
        #expect(able.status == 0 && coordinator.terminationStatus == 0)

        let bad = try runCohort(["train", "configs/quickstart.yaml", "--set", "cluster.blas_kernel=skylake", "--run-dir", dir.appendingPathComponent("bad").path])
        #expect(bad.status == 2 && bad.stderr.contains("cluster.blas_kernel") && bad.stderr.contains("did you mean 'skylakex'"), "\(bad.stderr)")
    }
}

extension BLASFamilyTests {
    /// A run keeps the family it began with in RUN_DIR/blas_kernel: resumed on a machine whose
    /// own kernels differ, it computes with the run's and continues bit for bit.
    @Test func aResumedRunKeepsItsFamily() throws {
        let dir = temporaryDirectory()
        let settings = ["--quiet", "--set", "training.steps=20", "--set", "evaluation.at_end=false", "--set", "cluster.threads_per_worker=1"]
        let pinned = dir.appendingPathComponent("pinned").path
        #expect(try runCohort(["train", "configs/mnist-mlp.yaml", "--workers", "1", "--run-dir", pinned,
                               "--set", "cluster.blas_kernel=sandybridge"] + settings).status == 0)
        #expect(try runCohort(["train", "--resume", pinned, "--set", "training.steps=40", "--quiet"]).status == 0)

        // Begun on an older machine alone (auto: its sandybridge), continued on this one.
        let run = dir.appendingPathComponent("moved").path
        let (coordinator, endpoint) = try startExternalRun(dir, run: run, settings: settings + ["--set", "cluster.min_workers=1"])
        let older = try runCohort(["worker", "--connect", endpoint, "--config", "configs/mnist-mlp.yaml", "--timeout", "20"],
                                  environment: ["OPENBLAS_CORETYPE": "Sandybridge", "COHORT_SIMULATE_CPU": "sandybridge"])
        coordinator.waitUntilExit()
        #expect(older.status == 0 && coordinator.terminationStatus == 0, "\(older.stderr)")
        #expect(try String(contentsOfFile: "\(run)/blas_kernel", encoding: .utf8) == "sandybridge\n")
        let resumed = try runCohort(["train", "--resume", run, "--set", "training.steps=40", "--workers", "1"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(try tensorBytes("\(run)/final.safetensors") == tensorBytes("\(pinned)/final.safetensors"))
    }
}
