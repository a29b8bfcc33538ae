import ArgumentParser
import CohortCluster
import CohortData
import CohortExperiment
import Foundation
import Logging
import ZeroMQ

/// `cohort train` in a Slurm job step of several tasks (see `SlurmTask`).
extension Train {
    /// runs/<name>-<job id>: the same for every task of the job.
    func slurmRunDirectory(_ config: ExperimentConfig, _ slurm: SlurmTask) -> String {
        "runs/\(config.name)-\(slurm.jobID)"
    }

    /// Task 0: the job's keys in the run directory, a CURVE bind on every interface at the job's
    /// port, one local worker (unless --workers says otherwise), and the others awaited.
    func slurmCoordinator(_ slurm: SlurmTask, runDirectory: String, flags: inout ClusterFlags, config: inout ClusterConfig) throws {
        let keys = SlurmTask.Keys(directory: "\(runDirectory)/slurm")
        try keys.make()
        flags.bind = flags.bind ?? "tcp://0.0.0.0:\(slurm.port(port))"
        flags.secretKey = keys.coordinatorSecret
        flags.authorizedKeys = keys.authorized
        flags.workers = flags.workers ?? 1
        config.threadsPerWorker = config.threadsPerWorker ?? slurm.cores
        config.minWorkers = max(config.minWorkers ?? 1, (flags.workers ?? 1) + slurm.tasks - 1)
        Logger(label: "cohort.train").info("Slurm job \(slurm.jobID): task 0 of \(slurm.tasks) coordinates at \(flags.bind!), run \(runDirectory)")
    }

    /// Tasks 1…: a worker on this task's cores, connecting to the step's first node with the
    /// job's keys, reading its own copy of the data (the same files, on the shared file system).
    func runSlurmWorker(_ slurm: SlurmTask, config: ExperimentConfig, experiment: Experiment) throws {
        let directory = runDir ?? slurmRunDirectory(config, slurm)
        let keys = SlurmTask.Keys(directory: "\(directory)/slurm")
        try keys.wait(seconds: 120)
        LogOutput.shared.prefix = "[task \(slurm.procID)] "
        var options = Worker.Options(endpoint: "tcp://\(try slurm.coordinatorHost()):\(slurm.port(port))", threads: slurm.cores,
                                     localData: experiment.dataset)
        options.coordinatorTimeout = 120
        do {
            options.serverKey = try CurveKeyFile.readPublic(keys.coordinatorPublic)
            options.curve = try CurveKeyFile.readSecret(keys.workerSecret)
        } catch {
            throw UsageError("\(error)")
        }
        let worker = Worker(options: options, logger: Logger(label: "cohort.worker"))
        switch try worker.run() {
        case .shutdown: return
        case .refused(let reason), .failed(let reason), .coordinatorLost(let reason):
            stderrLine("cohort: Slurm task \(slurm.procID): \(reason)")
            throw ExitCode(ExitStatus.runtimeFailure)
        case .rejoinWithBLAS(let family):
            stderrLine("cohort: Slurm task \(slurm.procID): \(BLASMachine.reexec(as: family))")
            throw ExitCode(ExitStatus.runtimeFailure)
        }
    }
}
