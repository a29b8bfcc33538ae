import CohortTraining
import Foundation

/// Relays among the workers across the network (`RelayTopology`): set up with a streamed
/// step's first assignment, and taken apart when one of them dies. A dead worker's relay group
/// is computed again without relays (its whole range, by the others), and the workers after it
/// in the weights chain get the whole weights from the coordinator. The sums, and so the
/// weights, are the same either way.
extension Coordinator {
    /// Deals the whole tree out with relays, when the step streams and at least two live
    /// workers across the network can relay; false (nothing sent) otherwise.
    func assignWithRelays(_ pool: [WorkerState], in exchange: inout StepExchange) throws -> Bool {
        guard options.relays, !relaysOff, exchange.stream != nil, !careful, !exchange.relaysDealt else { return false }
        exchange.relaysDealt = true
        let dealt = deal(pool, step: exchange.version, tree: exchange.tree)
        let pool = dealt.map(\.worker), ranges = dealt.map(\.part)
        let relays = pool.map(\.canRelay)
        guard relays.filter({ $0 }).count >= 2 else { return false }
        let topology = RelayTopology(tree: exchange.tree, parts: ranges, relays: relays)
        let ids = ranges.indices.map { nextTaskID + UInt64($0) }
        for (i, worker) in zip(ranges.indices, pool) {
            let part = topology.parts[i]
            var plan = RelayPlan()
            plan.children = part.children.map { RelayPlan.Child(taskID: ids[$0], range: topology.parts[$0].merged) }
            plan.upstream = part.upstream.map { pool[$0].hello.relay! }
            plan.forwardWeights = part.forwardTo.map { pool[$0].hello.relay! }
            let root = topology.root(of: i)
            let inGroup = !topology.parts[root].children.isEmpty
            sendTask(ranges[i], to: worker, in: &exchange, id: ids[i], relay: plan, group: inGroup ? ids[root] : nil)
        }
        exchange.chain = topology.chain.map { pool[$0].id }
        logger.debug("step \(exchange.version): relays \(topology.parts.enumerated().filter { $0.element.upstream != nil }.map { "\(pool[$0.offset].id)→\(pool[$0.element.upstream!].id)" }), weights chain \(exchange.chain)")
        return true
    }

    /// The step's parts of the tree and the workers they go to, by `options.dealing`: evenly, or
    /// along the tree with this machine's workers first, or whichever `dealingTuner` found faster.
    func deal(_ pool: [WorkerState], step: UInt64, tree: GradientTree) -> [(worker: WorkerState, part: Range<Int>)] {
        let even = Array(zip(pool, GradientTree.parts(of: tree.root, count: pool.count)))
        let local = pool.filter(\.usesSharedWeights), remote = pool.filter(\.canRelay)
        guard options.dealing != .even, local.count + remote.count == pool.count,
              let parts = Dealing.treeParts(root: tree.root, local: local.count, remote: remote.count) else { return even }
        let alongTree = Array(zip(local + remote, parts))
        if alongTree.map(\.1) == even.map(\.1), alongTree.map(\.0.id) == even.map(\.0.id) { return even }
        var dealing = options.dealing
        if dealing == .auto {
            dealing = dealingTuner.dealing(forStep: step, pool: pool.map(\.id)) { choice, medians in
                let ms = { (d: Dealing) in String(format: "%.1f ms", medians[d]! * 1000) }
                logger.info("micro-batches are dealt \(choice == .tree ? "along the tree" : "evenly") from now on: a step took \(ms(.tree)) along the tree and \(ms(.even)) evenly (medians of \(DealingTuner.trialSteps) steps each, alternating)")
            }
        }
        lastDealing = dealing
        return dealing == .tree ? alongTree : even
    }

    /// Takes a relay group off the books (its late messages are then dropped) and returns the
    /// leaves it was to report, to be dealt out again.
    func voidGroup(_ group: UInt64, in exchange: inout StepExchange) -> Range<Int> {
        let range = exchange.outstanding[group]?.range ?? 0..<0
        for (id, job) in exchange.outstanding where job.group == group {
            exchange.outstanding[id] = nil
            exchange.incoming[id] = nil
        }
        logger.debug("step \(exchange.version): relay group of task \(group) (micro-batches \(range)) is computed again without relays")
        return range
    }

    /// `worker` left the weights chain: the workers after it get no more forwarded chunks, and
    /// lose those they had; they get the whole weights before their next task.
    func breakChain(at worker: UInt32, in exchange: inout StepExchange) {
        guard let i = exchange.chain.firstIndex(of: worker) else { return }
        for id in exchange.chain[i...] { exchange.chunksSent[id] = nil }
        exchange.chain.removeSubrange(i...)
        if exchange.chain.count < 2 { exchange.chain = [] }
    }

    /// A worker died after the step that streamed the current weights down its chain: those
    /// after it may be waiting for chunks that will never come, so they get the whole weights now.
    func relayLost(_ worker: WorkerState) {
        guard let chain = lastWeightsChain, chain.version == weightsVersion, let i = chain.workers.firstIndex(of: worker.id) else { return }
        for id in chain.workers[(i + 1)...] {
            guard let after = workers[id], after.alive, after.weightsVersion == chain.version else { continue }
            trySend(after, .weights, step: chain.version, body: WeightsMessage(version: weightsVersion).encode(),
                    tensors: [.zeroCopy(weights.bytes, owner: weights)])
        }
        lastWeightsChain = (chain.version, Array(chain.workers[..<i]))
    }

    /// A task past its deadline in a step that relays: the relays are the likely cause (workers
    /// that cannot reach each other's relay sockets, behind a firewall or on separate links), so
    /// relaying stops for the rest of the run instead of workers being set aside. Every relay
    /// group is dealt out again without relays, and the workers of the weights chain get the
    /// whole weights first. A worker that misses its next deadline as well has stalled.
    /// Returns whether it did this.
    func relaysFailed(_ exchange: inout StepExchange) throws -> Bool {
        let now = Date()
        guard !relaysOff else { return false }
        if let unreachable = relaysUnreachable {
            logger.warning("\(unreachable); relaying is off for the rest of the run")
        } else {
            guard !exchange.chain.isEmpty || exchange.outstanding.values.contains(where: { $0.group != nil }),
                  let late = exchange.outstanding.values.first(where: { now > $0.deadline && workers[$0.worker]?.alive == true })
            else { return false }
            logger.warning("worker \(late.worker) did not answer its task within \(String(format: "%.1f", late.deadline.timeIntervalSince(late.sent))) s while workers relayed for each other; relaying is off for the rest of the run (can the workers reach each other's relay sockets?)")
        }
        relaysOff = true
        relaysUnreachable = nil
        for id in exchange.chain.dropFirst() where workers[id]?.weightsVersion == weightsVersion { workers[id]?.weightsVersion = .max }
        if let chain = lastWeightsChain, chain.version == weightsVersion {
            for id in chain.workers.dropFirst() where workers[id]?.weightsVersion == weightsVersion { workers[id]?.weightsVersion = .max }
        }
        exchange.chain = []
        exchange.chunksSent = [:]
        lastWeightsChain = nil
        var ranges: [Range<Int>] = []
        for (id, job) in exchange.outstanding where job.group != nil || now > job.deadline {
            guard exchange.outstanding[id] != nil else { continue }
            ranges.append(job.group.map { voidGroup($0, in: &exchange) } ?? job.range)
            exchange.outstanding[id] = nil
            exchange.incoming[id] = nil
        }
        for range in ranges.sorted(by: { $0.lowerBound < $1.lowerBound }) { try assign(range, in: &exchange) }
        // A worker still waiting for weights from the chain gets them whole now.
        broadcastWeights(to: liveWorkers.filter { !$0.usesSharedWeights }, step: exchange.version)
        return true
    }
}
