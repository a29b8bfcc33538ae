/// What one step did, for metrics and progress.
package struct StepRecord: Sendable {
    package var step: Int
    package var epoch: Int
    package var loss: Double
    package var accuracy: Double?
    package var learningRate: Float
    package var gradientNorm: Double
    package var clipped: Bool
    package var samples: Int
    package var seconds: Double
    /// Coordinator time in the fixed-tree sum and in clip + optimizer update.
    package var reduceSeconds: Double = 0
    package var updateSeconds: Double = 0
    /// What a distributed executor reports (per-worker compute, bytes, broadcast).
    package var exchange: ExchangeMetrics?
    /// The step's loss or gradient was not finite and `on_nonfinite: skip` left the weights.
    package var skipped = false

    package init(step: Int, epoch: Int, loss: Double, accuracy: Double?, learningRate: Float, gradientNorm: Double,
                 clipped: Bool, samples: Int, seconds: Double, reduceSeconds: Double = 0, updateSeconds: Double = 0,
                 exchange: ExchangeMetrics? = nil) {
        self.step = step; self.epoch = epoch; self.loss = loss; self.accuracy = accuracy; self.learningRate = learningRate
        self.gradientNorm = gradientNorm; self.clipped = clipped; self.samples = samples; self.seconds = seconds
        self.reduceSeconds = reduceSeconds; self.updateSeconds = updateSeconds; self.exchange = exchange
    }
}

/// One step of a distributed executor: who computed for how long, and what crossed the sockets.
package struct ExchangeMetrics: Sendable {
    package struct WorkerTime: Sendable {
        package var id: Int
        package var computeSeconds: Double
        /// The worker's peak resident memory so far, in bytes (0: not reported).
        package var peakResidentBytes: Int
        package init(id: Int, computeSeconds: Double, peakResidentBytes: Int = 0) {
            self.id = id; self.computeSeconds = computeSeconds; self.peakResidentBytes = peakResidentBytes
        }
    }
    package var workers: [WorkerTime]
    package var liveWorkers: Int
    /// Time spent sending weights, and in the whole exchange (first task out to last result in).
    package var broadcastSeconds: Double
    package var exchangeSeconds: Double
    package var bytesSent: Int
    package var bytesReceived: Int

    package init(workers: [WorkerTime], liveWorkers: Int, broadcastSeconds: Double, exchangeSeconds: Double,
                 bytesSent: Int, bytesReceived: Int) {
        self.workers = workers; self.liveWorkers = liveWorkers; self.broadcastSeconds = broadcastSeconds
        self.exchangeSeconds = exchangeSeconds; self.bytesSent = bytesSent; self.bytesReceived = bytesReceived
    }
}

/// A distributed executor's totals over a run.
package struct ExecutorSummary: Sendable {
    package struct Worker: Sendable {
        package var id: Int
        package var host: String
        package var pid: Int
        package var threads: Int
        package var tasks: Int
        package var computeSeconds: Double
        package var aliveAtEnd: Bool
        /// The worker lacked the dataset, so its tasks carried the samples.
        package var samplesSentWithTasks: Bool
        /// Its peak resident memory, in bytes (0: not reported).
        package var peakResidentBytes: Int

        package init(id: Int, host: String, pid: Int, threads: Int, tasks: Int, computeSeconds: Double,
                     aliveAtEnd: Bool, samplesSentWithTasks: Bool, peakResidentBytes: Int = 0) {
            self.id = id; self.host = host; self.pid = pid; self.threads = threads; self.tasks = tasks
            self.computeSeconds = computeSeconds; self.aliveAtEnd = aliveAtEnd; self.samplesSentWithTasks = samplesSentWithTasks
            self.peakResidentBytes = peakResidentBytes
        }
    }
    package var workers: [Worker]
    package var bytesSent: Int
    package var bytesReceived: Int
    package var droppedMessages: Int
    /// Share of the run in which the workers were not computing: the price of distribution.
    package var shareOutsideWorkerCompute: Double
    /// How the last relayed step was dealt (`Dealing`, `even` or `tree`), when the choice arose.
    package var dealing: Dealing?

    package init(workers: [Worker], bytesSent: Int, bytesReceived: Int, droppedMessages: Int, shareOutsideWorkerCompute: Double) {
        self.workers = workers; self.bytesSent = bytesSent; self.bytesReceived = bytesReceived
        self.droppedMessages = droppedMessages; self.shareOutsideWorkerCompute = shareOutsideWorkerCompute
    }
}
