import Foundation
import Parallel
import Testing

/// `ResultSlots` is what every parallel read in StackLab (git blobs, node observations, validation) collects into.
/// A lost write there showed as a crash of `Repository.files` (a slot read back empty) about once in a few dozen runs.
@Suite struct ResultSlotsTests {
    @Test func workersWritingNeighbouringSlotsAtOnceLoseNoWrite() {
        let workers = 8
        for round in 0..<200 {
            let count = 2_000 + round
            let slots = ResultSlots<[UInt8]>(count: count)
            DispatchQueue.concurrentPerform(iterations: workers) { worker in
                for index in stride(from: worker, to: count, by: workers) {
                    slots[index] = [UInt8(truncatingIfNeeded: index), UInt8(truncatingIfNeeded: round)]
                }
            }
            let missing = (0..<count).filter { slots[$0] == nil }
            #expect(missing.isEmpty, "round \(round): \(missing.count) of \(count) slots lost their write, first \(missing.prefix(5))")
            if !missing.isEmpty { return }
            #expect(slots.values.enumerated().allSatisfy { $0.element == [UInt8(truncatingIfNeeded: $0.offset), UInt8(truncatingIfNeeded: round)] })
        }
    }
}
