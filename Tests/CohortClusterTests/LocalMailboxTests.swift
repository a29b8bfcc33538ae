@testable import CohortCluster
import Dispatch
import Foundation
import Testing
import ZeroMQ

/// The shared-memory mailboxes of workers on the coordinator's machine: one message per box,
/// frames as they were, lengths checked before reading, and a doorbell that wakes a sleeper.
@Suite struct LocalMailboxTests {
    static func path(_ name: String) -> String { "/dev/shm/cohort-\(getpid())-test-\(name)-\(UInt32.random(in: 0...UInt32.max))" }

    @Test func framesArriveAsSentAndTheBoxHoldsOneMessage() throws {
        let path = Self.path("mailbox")
        let coordinator = try LocalMailbox(path: path, create: true)
        let worker = try LocalMailbox(path: path, create: false)   // the worker's own mapping
        let tensor: [Float] = [1, -2.5, 3]
        let buffer = tensor.withUnsafeBytes { UnsafeRawBufferPointer(UnsafeMutableRawBufferPointer.allocate(byteCount: $0.count, alignment: 4)) }
        defer { buffer.deallocate() }
        tensor.withUnsafeBytes { UnsafeMutableRawBufferPointer(mutating: buffer).copyMemory(from: $0) }
        final class Owner {}
        let frames: [OutgoingFrame] = [.bytes(Array("header".utf8)), .bytes([]), .zeroCopy(buffer, owner: Owner())]
        #expect(try worker.down.take() == nil)
        #expect(coordinator.down.post(frames))
        #expect(!coordinator.down.post(frames), "a second message while the first is not taken")
        let taken = try #require(try worker.down.take())
        #expect(taken.map(\.bytes) == [Array("header".utf8), [], tensor.withUnsafeBytes { Array($0) }])
        #expect(try worker.down.take() == nil)
        #expect(coordinator.down.post(frames), "the box is free again once taken")
        // The other direction is a box of its own.
        #expect(try coordinator.up.take() == nil)
        #expect(worker.up.post([.bytes([7])]))
        #expect(try coordinator.up.take()?.map(\.bytes) == [[7]])
    }

    @Test func tooLargeGoesByZeroMQAndBadLengthsAreRefused() throws {
        let mailbox = try LocalMailbox(path: Self.path("limits"), create: true)
        #expect(!mailbox.down.post([.bytes(Array(repeating: 0, count: LocalMailbox.boxBytes))]))
        #expect(try mailbox.down.take() == nil, "nothing was posted")
        // A frame claiming more bytes than the message holds.
        #expect(mailbox.down.post([.bytes([1, 2, 3, 4])]))
        mailbox.down.payload.storeBytes(of: UInt32(1 << 20).littleEndian, toByteOffset: 4, as: UInt32.self)
        #expect(throws: ProtocolError.self) { try mailbox.down.take() }
        #expect(try mailbox.down.take() == nil, "a refused message frees the box")
        // A message length beyond the box.
        #expect(mailbox.down.post([.bytes([1])]))
        mailbox.down.length.pointee = UInt32(LocalMailbox.boxBytes)
        #expect(throws: ProtocolError.self) { try mailbox.down.take() }
    }

    @Test func theDoorbellWakesASleeperAndNeverMissesARing() throws {
        let bell = try Doorbell(path: Self.path("bell"), create: true)
        // A ring between reading the value and sleeping is not missed: the wait returns at once.
        let seen = bell.value
        bell.ring()
        var start = DispatchTime.now()
        bell.wait(seen: seen, timeout: 5)
        #expect(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds < 1_000_000_000)
        // A sleeper is woken by a ring from another thread, long before its timeout.
        let now = bell.value
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.05) { bell.ring() }
        start = DispatchTime.now()
        bell.wait(seen: now, timeout: 10)
        let waited = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
        #expect(waited < 5 && bell.value != now)
        // Without a ring it sleeps for its timeout, no longer.
        start = DispatchTime.now()
        bell.wait(seen: bell.value, timeout: 0.02)
        #expect(Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9 < 5)
    }
}
