import CohortTraining
import Foundation

/// One OpenBLAS kernel family for every worker of a run (see `BLASFamily`): pinned by
/// `cluster.blas_kernel`, or chosen by `auto` from the workers there at start. A worker that
/// loaded another family is told to restart with the run's; one whose CPU cannot run it is
/// refused, with the reason.
extension Coordinator {
    /// The SHUTDOWN for a worker that cannot compute with `family` as it is, or nil.
    func blasAnswer(to hello: Hello, family: String) -> ShutdownMessage? {
        if !hello.blasRunnable.contains(family) {
            let reason = "this worker's CPU cannot run the run's BLAS kernels (\(family), cluster.blas_kernel); " +
                "it can run \(hello.blasRunnable.isEmpty ? "none of them" : hello.blasRunnable.joined(separator: ", "))"
            logger.warning("refused a worker from \(hello.host) pid \(hello.pid): \(reason)")
            return ShutdownMessage(reason: reason, refused: true)
        }
        guard hello.blasLoaded != family else { return nil }
        logger.info("worker from \(hello.host) pid \(hello.pid) loaded the \(hello.blasLoaded) BLAS kernels: it restarts with \(family)")
        return ShutdownMessage(reason: "restart with the \(family) BLAS kernels", refused: false, rejoinWithBLAS: family)
    }

    /// Chooses the family when the run starts (with `auto`), and sends the workers that loaded
    /// another one away to restart with it. True when some did: they are waited for again.
    func settleBLASFamily() throws -> Bool {
        guard blasFamily == nil else { return false }
        let live = liveWorkers
        guard let family = BLASFamily.choose(loaded: live.map(\.hello.blasLoaded), runnable: live.map(\.hello.blasRunnable)) else {
            let offers = live.map { "\($0.hello.host) pid \($0.hello.pid): \($0.hello.blasRunnable.joined(separator: ", "))" }
            throw ClusterError("the workers have no BLAS kernel family in common (\(offers.joined(separator: "; "))); " +
                               "name one in cluster.blas_kernel, and workers that cannot run it are refused")
        }
        blasFamily = family
        let movers = live.filter { $0.hello.blasLoaded != family }
        let restarting = movers.isEmpty ? "" : " (\(movers.count) restart with it)"
        logger.info("BLAS kernels: \(family) for every worker\(restarting)")
        for worker in movers {
            trySend(worker, .shutdown, step: 0, body: blasAnswer(to: worker.hello, family: family)!.encode())
            // Not a death: nothing was assigned yet, and the same process comes back.
            worker.alive = false
            if let results = worker.results { retiredSharedMemory.append(results) }
            worker.results = nil
            workers[worker.id] = nil
        }
        return !movers.isEmpty
    }
}
