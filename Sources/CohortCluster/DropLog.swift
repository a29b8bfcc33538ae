import Foundation
import Logging

/// Dropped messages, counted by kind and logged at most once per kind every few seconds with
/// the count since: a peer sending garbage in a loop gets a line now and then, not one per
/// frame (2,000 frames gave 2,037 lines).
struct DropLog {
    static let interval = 5.0
    private(set) var total = 0
    private var since: [String: Int] = [:]
    private var lastLogged: [String: Date] = [:]

    mutating func record(kind: String, _ detail: String, logger: Logger) {
        total += 1
        since[kind, default: 0] += 1
        let now = Date()
        if let last = lastLogged[kind], now.timeIntervalSince(last) < Self.interval { return }
        let count = since[kind]!
        logger.warning("dropped \(count == 1 ? "a message" : "\(count) messages") (\(kind); \(total) dropped in all): \(detail)")
        since[kind] = 0
        lastLogged[kind] = now
    }
}
