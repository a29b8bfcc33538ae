import CohortTraining

// How the trainer's records read in metrics.jsonl and summary.json (field names are the files'
// documented format: README.md, "A run writes").

extension StepRecord {
    package var json: JSON {
        var pairs: [(String, JSON)] = [
            ("step", .int(step)), ("epoch", .int(epoch)), ("loss", .number(loss)),
        ]
        if let accuracy { pairs.append(("accuracy", .number(accuracy))) }
        pairs += [
            ("lr", .number(Double("\(learningRate)") ?? Double(learningRate))), ("grad_norm", .number(gradientNorm)), ("clipped", .bool(clipped)),
            ("samples", .int(samples)), ("step_time_s", .number(seconds)),
            ("samples_per_s", .number(seconds > 0 ? Double(samples) / seconds : 0)),
            ("reduce_s", .number(reduceSeconds)), ("update_s", .number(updateSeconds)),
        ]
        if skipped { pairs.append(("skipped", .bool(true))) }
        return .object(pairs + (exchange?.json ?? []))
    }
}

extension ExchangeMetrics {
    var json: [(String, JSON)] {
        let perWorker: [JSON] = workers.map {
            .object([("id", .int($0.id)), ("compute_s", .number($0.computeSeconds))] + Self.peakMB($0.peakResidentBytes))
        }
        return [("workers", .array(perWorker)), ("live_workers", .int(liveWorkers)),
                ("broadcast_s", .number(broadcastSeconds)), ("exchange_s", .number(exchangeSeconds)),
                ("bytes_sent", .int(bytesSent)), ("bytes_received", .int(bytesReceived))]
    }
}

extension ExchangeMetrics {
    /// `peak_rss_mb`, the worker's peak resident memory in MiB, when it reported one.
    static func peakMB(_ bytes: Int) -> [(String, JSON)] {
        bytes > 0 ? [("peak_rss_mb", .number((Double(bytes) / 1_048_576 * 10).rounded() / 10))] : []
    }
}

extension ExecutorSummary {
    var json: [(String, JSON)] {
        let perWorker: [JSON] = workers.map {
            .object([("id", .int($0.id)), ("host", .string($0.host)), ("pid", .int($0.pid)),
                     ("threads", .int($0.threads)), ("tasks", .int($0.tasks)), ("compute_s", .number($0.computeSeconds)),
                     ("alive_at_end", .bool($0.aliveAtEnd)), ("samples_sent_with_tasks", .bool($0.samplesSentWithTasks))]
                    + ExchangeMetrics.peakMB($0.peakResidentBytes))
        }
        return [("workers", .array(perWorker)), ("bytes_sent", .int(bytesSent)), ("bytes_received", .int(bytesReceived)),
                ("dropped_messages", .int(droppedMessages)),
                ("share_outside_worker_compute", .number(shareOutsideWorkerCompute))]
            + (dealing.map { [("dealing", .string($0.rawValue))] } ?? [])
    }
}
