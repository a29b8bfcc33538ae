@testable import CohortCluster
import CohortTraining
import Foundation
import Testing

/// `cluster.dealing: auto`: the tuner times both dealings on alternate steps after a warm-up,
/// keeps the faster (the tree within 15%), and starts again when the workers change.
@Suite struct DealingTunerTests {
    /// Runs steps `steps` on `pool`, each taking `seconds(dealing)`; returns the dealings used.
    func run<Steps: Sequence<UInt64>>(_ tuner: inout DealingTuner, steps: Steps, pool: [UInt32], clock: inout Date,
             decisions: inout [Dealing], seconds: (Dealing) -> Double) -> [Dealing] {
        var used: [Dealing] = []
        for step in steps {
            let dealing = tuner.dealing(forStep: step, pool: pool, now: clock) { choice, _ in decisions.append(choice) }
            used.append(dealing)
            clock += seconds(dealing)
        }
        return used
    }

    @Test func keepsTheFasterDealing() {
        let warm = DealingTuner.warmUpSteps, trials = DealingTuner.trialSteps
        // The even dealing 25% faster is kept; 12.5% or 3% faster is not.
        let cases = [(0.18, 0.23, Dealing.tree), (0.040, 0.032, .even), (0.036, 0.032, .tree), (0.0335, 0.0325, .tree)]
        for (tree, even, expected) in cases {
            var tuner = DealingTuner(), clock = Date(timeIntervalSince1970: 0), decisions: [Dealing] = []
            let used = run(&tuner, steps: 0..<40, pool: [1, 2, 3, 4], clock: &clock, decisions: &decisions) { $0 == .tree ? tree : even }
            // Warm-up steps go evenly, then the two alternate, then the choice holds.
            #expect(Array(used.prefix(warm)) == Array(repeating: .even, count: warm))
            #expect(Array(used[warm..<(warm + 2 * trials)]) == (0..<trials).flatMap { _ in [Dealing.even, .tree] })
            #expect(decisions == [expected] && used[(warm + 2 * trials)...].allSatisfy { $0 == expected }, "\(used)")
        }
    }

    @Test func measuresAgainWhenTheWorkersChange() {
        var tuner = DealingTuner(), clock = Date(timeIntervalSince1970: 0), decisions: [Dealing] = []
        _ = run(&tuner, steps: 0..<30, pool: [1, 2, 3, 4], clock: &clock, decisions: &decisions) { $0 == .tree ? 0.1 : 0.2 }
        #expect(decisions == [.tree] && tuner.choice == .tree)
        // Worker 3 died: the links and the work are other now.
        let used = run(&tuner, steps: 30..<60, pool: [1, 2, 4], clock: &clock, decisions: &decisions) { $0 == .tree ? 0.3 : 0.2 }
        #expect(used.first == .even && decisions == [.tree, .even] && used.last == .even)
    }

    /// A step that did not follow the last one (a step without relays came between) is not timed.
    @Test func timesOnlyConsecutiveSteps() {
        var tuner = DealingTuner(), clock = Date(timeIntervalSince1970: 0), decisions: [Dealing] = []
        _ = run(&tuner, steps: stride(from: UInt64(0), to: 80, by: 2), pool: [1, 2], clock: &clock,
                decisions: &decisions) { _ in 0.1 }
        #expect(decisions.isEmpty && tuner.choice == nil)
    }
}
