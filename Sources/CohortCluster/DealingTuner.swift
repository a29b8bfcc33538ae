import CohortTraining
import Foundation

/// `cluster.dealing: auto`: runs the even and the tree dealing on alternate steps and keeps the
/// faster. Which one wins depends on what the machines and links are like: the tree dealing
/// halves the coordinator's incoming bytes but gives its machine half of every batch to compute.
/// A step is timed from its first task to the next step's, the streamed step's period (the
/// update and the next weights' way down are part of it). Both dealings add along the same tree,
/// so trying them changes no bit. Within `tolerance` the tree wins: at the same speed, the
/// dealing that leaves more of the coordinator's link to everything else is the better one, and
/// only the tree keeps that link to about one model each way.
struct DealingTuner {
    /// Steps not timed first (connections being made, first-use probes), then steps timed per dealing.
    static let warmUpSteps = 3
    static let trialSteps = 6
    /// The even dealing must be this much faster to be kept. Six steps a dealing on a busy
    /// machine are noisy: on the 2-core bench machine the MLP at 4 hosts took 32.3–33.7 ms a
    /// step either way in alternating runs, yet one bench run's trials found the even dealing
    /// more than 5% faster and kept it, with two sums (3.2 MB) coming in a step.
    static let tolerance = 1.15

    /// The workers the timings are of; when they change, it measures again.
    private var pool: [UInt32] = []
    private var last: (step: UInt64, dealing: Dealing, start: Date)?
    private var seconds: [Dealing: [Double]] = [:]
    private var warmedUp = 0
    private(set) var choice: Dealing?

    /// The dealing for `step`, which starts now on `pool`. `decided` hears of a choice once, with
    /// the median step time of each dealing.
    mutating func dealing(forStep step: UInt64, pool ids: [UInt32], now: Date = Date(),
                          decided: (Dealing, _ medians: [Dealing: Double]) -> Void) -> Dealing {
        if ids != pool { self = DealingTuner(); pool = ids }
        if choice == nil, let last, last.step + 1 == step {
            if warmedUp < Self.warmUpSteps {
                warmedUp += 1
            } else {
                seconds[last.dealing, default: []].append(now.timeIntervalSince(last.start))
            }
        }
        let even = seconds[.even] ?? [], tree = seconds[.tree] ?? []
        if choice == nil, even.count >= Self.trialSteps, tree.count >= Self.trialSteps {
            // The middle value, as the coordinator's task deadlines take it.
            let medians: [Dealing: Double] = [.even: even.sorted()[even.count / 2], .tree: tree.sorted()[tree.count / 2]]
            choice = medians[.tree]! <= medians[.even]! * Self.tolerance ? .tree : .even
            decided(choice!, medians)
        }
        let dealing = choice ?? (warmedUp < Self.warmUpSteps || tree.count >= even.count ? .even : .tree)
        last = (step, dealing, now)
        return dealing
    }
}
