import Foundation
import Manifests
import Planning
import Testing
@testable import Reconcile

/// A transfer (a snapshot taken or restored) is reported as it goes: at its start, every twentieth, and at its end.
@Suite struct TransferMeterTests {
    static let change = Change(address: Address(kind: .snapshot, region: "r", tenant: "t", name: "data@nightly"),
                               target: .node(Address(kind: .node, region: "r", name: "n1")), action: .create, reason: .scheduled,
                               operation: .setPower(domain: "x", running: true))

    @Test func aMeterReportsTheStartAtMostEveryIntervalAndTheEnd() {
        final class Events: @unchecked Sendable {
            let lock = NSLock()
            var bytes: [UInt64] = []
            func append(_ event: Applier.ProgressEvent) { lock.withLock { bytes.append(event.transferred?.bytes ?? .max) } }
        }
        let quick = Events()
        let meter = Applier.TransferMeter(Self.change, interval: 3600, progress: { quick.append($0) })
        for _ in 0..<200 { meter.add(1 << 20) }
        meter.finish()
        #expect(quick.bytes == [0, 200 << 20], "the start and the end; nothing between within the interval")

        let slow = Events()
        let paced = Applier.TransferMeter(Self.change, interval: 0.01, progress: { slow.append($0) })
        for _ in 0..<3 {
            usleep(20_000)
            paced.add(1 << 20)
        }
        paced.finish()
        #expect(slow.bytes == [0, 1 << 20, 2 << 20, 3 << 20, 3 << 20], "each add after the interval is reported, then the end")
    }
}
