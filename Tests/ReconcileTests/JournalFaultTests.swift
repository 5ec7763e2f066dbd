import Dispatch
import Drivers
import Foundation
import GRDB
import Manifests
import Planning
import Reconcile
import StateSQLite
import TestSupport
import Testing

/// A failure whose journal write cannot be made at once (another connection holds the state store's write lock past
/// its busy timeout) is written again at the end of the apply, not dropped.
@Suite struct JournalFaultTests {
    @Test func aFailureTheJournalCannotTakeAtOnceIsWrittenAgainAtTheEndOfTheApply() throws {
        let world = try ConvergeWorld()
        let reconciler = try world.reconciler()
        let node = Address(kind: .node, region: "lab", name: "lab-1")
        let store = try SQLiteState(directory: world.state.path)
        let locker = try DatabaseQueue(path: world.state.path + "/stacklab.sqlite")
        let locked = DispatchSemaphore(value: 0), released = DispatchSemaphore(value: 0)
        var drivers = try reconciler.drivers(for: ["lab"])
        drivers[node] = FailingNode(wrapping: try #require(drivers[node])) { operation in
            guard case .ensureNetwork = operation else { return false }
            // Just before the node refuses: another connection takes the write lock and keeps it past the store's 10 s
            // busy timeout, so the failure's journal write fails with SQLITE_BUSY.
            Thread.detachNewThread {
                try? locker.inDatabase { db in
                    try db.execute(sql: "BEGIN EXCLUSIVE")
                    locked.signal()
                    Thread.sleep(forTimeInterval: 10.8)
                    try db.execute(sql: "COMMIT")
                }
                released.signal()
            }
            locked.wait()
            return true
        }
        let change = Change(address: Address(kind: .network, region: "lab", name: "private"), target: .node(node), action: .create,
                            reason: .new, operation: .ensureNetwork(network: "private", bridge: "br100"))
        let plan = Plan(revision: nil, regions: ["lab"], observed: [:], changes: [change], unmanaged: [], errors: [])
        let report = try Applier(attempts: 1).apply(plan, drivers: drivers, state: store)
        released.wait()
        #expect(report.failed == 1)
        let entry = try #require(try store.journalEntries(run: report.run).first)
        #expect(entry.status == .failed && entry.error?.contains("injected failure") == true, "the failure was recorded after all: \(entry)")
        #expect(try store.runs().last?.status == .failed)
    }
}
