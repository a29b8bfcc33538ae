import CohortCluster
import Foundation
import ZeroMQ

/// `cohort train` as one task of a Slurm job step (`srun cohort train …`, or the job script
/// cluster/slurm/cohort.sbatch): task 0 runs the coordinator and a local worker, every other
/// task a worker that uses its task's cores. They meet at the first node of the step, on a
/// port derived from the job id (or `--port`), encrypted with CURVE keys made for the job in
/// the run directory, which the tasks share (Slurm clusters share their file systems).
struct SlurmTask {
    let procID: Int
    let tasks: Int
    let jobID: Int
    let nodeList: String
    /// Cores this task may use.
    let cores: Int

    /// The task this process is, when it runs in a Slurm job step of several tasks (not in the
    /// job's batch script, which has no step id). COHORT_SLURM=0 turns this off.
    static func current(environment: [String: String] = ProcessInfo.processInfo.environment) -> SlurmTask? {
        guard environment["COHORT_SLURM"] != "0", environment["SLURM_STEP_ID"] != nil,
              let procID = environment["SLURM_PROCID"].flatMap(Int.init), let tasks = environment["SLURM_NTASKS"].flatMap(Int.init),
              tasks >= 2, let jobID = environment["SLURM_JOB_ID"].flatMap(Int.init) else { return nil }
        let nodeList = environment["SLURM_STEP_NODELIST"] ?? environment["SLURM_JOB_NODELIST"] ?? "localhost"
        let cores = environment["SLURM_CPUS_PER_TASK"].flatMap(Int.init)
            ?? environment["SLURM_CPUS_ON_NODE"].flatMap(Int.init).map { max(1, $0 / max(1, Int(environment["SLURM_NTASKS_PER_NODE"] ?? "") ?? 1)) }
            ?? 1
        return SlurmTask(procID: procID, tasks: tasks, jobID: jobID, nodeList: nodeList, cores: cores)
    }

    /// The step's first node, where task 0 runs the coordinator (`scontrol show hostnames`
    /// expands Slurm's compressed list, such as node[01-04]).
    func coordinatorHost() throws -> String {
        if !nodeList.contains("[") && !nodeList.contains(",") { return nodeList }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["scontrol", "show", "hostnames", nodeList]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard let first = text.split(separator: "\n").first else { throw UsageError("cannot expand the Slurm node list \(nodeList)") }
        return String(first)
    }

    /// A port of the job's own, so that jobs sharing a node do not collide.
    func port(_ given: Int?) -> Int { given ?? 20000 + jobID % 30000 }

    /// The job's CURVE keys, under the run directory: task 0 makes them (the secret files mode
    /// 0600); the others wait for them to appear on the shared file system.
    struct Keys {
        let directory: String
        var coordinatorSecret: String { "\(directory)/coordinator.key_secret" }
        var coordinatorPublic: String { "\(directory)/coordinator.key" }
        var authorized: String { "\(directory)/workers" }
        var workerSecret: String { "\(directory)/worker.key_secret" }

        func make() throws {
            try FileManager.default.createDirectory(atPath: authorized, withIntermediateDirectories: true)
            for file in [coordinatorSecret, coordinatorPublic, workerSecret, "\(authorized)/worker.key", "\(directory)/worker.key"] { unlink(file) }
            _ = try CurveKeyFile.write(try CurveKeyPair.generate(), base: "\(directory)/coordinator", comment: "coordinator of a Slurm job")
            let worker = try CurveKeyPair.generate()
            _ = try CurveKeyFile.write(worker, base: "\(directory)/worker", comment: "workers of a Slurm job")
            _ = try CurveKeyFile.writePublic(worker.publicKey, base: "\(authorized)/worker", comment: "workers of a Slurm job")
        }

        /// Waits (up to `seconds`) for task 0's keys.
        func wait(seconds: Double) throws {
            let deadline = Date().addingTimeInterval(seconds)
            while !(FileManager.default.fileExists(atPath: workerSecret) && FileManager.default.fileExists(atPath: coordinatorPublic)) {
                guard Date() < deadline else { throw UsageError("no job keys appeared in \(directory) within \(Int(seconds)) s; is the run directory on a file system every node shares?") }
                usleep(100_000)
            }
        }
    }
}
