import CohortTraining

/// What the coordinator measured: per step for metrics.jsonl, per run for summary.json.
extension Coordinator {
    package func exchangeMetrics() -> ExchangeMetrics? {
        let perWorker = workers.values.sorted { $0.id < $1.id }.filter { $0.stepComputeSeconds > 0 }.map {
            ExchangeMetrics.WorkerTime(id: Int($0.id), computeSeconds: $0.stepComputeSeconds, peakResidentBytes: Int($0.peakResidentBytes))
        }
        return ExchangeMetrics(workers: perWorker, liveWorkers: liveWorkerCount, broadcastSeconds: stepBroadcastSeconds,
                               exchangeSeconds: stepExchangeSeconds, bytesSent: stepBytesSent, bytesReceived: stepBytesReceived)
    }

    package func summary(wallSeconds: Double) -> ExecutorSummary? {
        let all = workers.values.sorted { $0.id < $1.id }
        let perWorker = all.map {
            ExecutorSummary.Worker(id: Int($0.id), host: $0.hello.host, pid: $0.hello.pid, threads: $0.hello.threads, tasks: $0.tasks,
                                   computeSeconds: $0.computeSeconds, aliveAtEnd: $0.alive, samplesSentWithTasks: $0.sendsSamples,
                                   peakResidentBytes: Int($0.peakResidentBytes))
        }
        // Share of the run in which the workers were not computing: the price of distribution.
        let computing = all.map(\.computeSeconds).max() ?? 0
        var summary = ExecutorSummary(workers: perWorker, bytesSent: bytesSent, bytesReceived: bytesReceived, droppedMessages: droppedMessages,
                                      shareOutsideWorkerCompute: wallSeconds > 0 ? max(0, 1 - computing / wallSeconds) : 0)
        summary.dealing = lastDealing
        return summary
    }
}
