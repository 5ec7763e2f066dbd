import Foundation
import SimulatedNodes
import GRDB
import Drivers
import Manifests
import StateSQLite
import TestSupport
import Testing
@testable import Reconcile

/// Temporaries of crashed writes are looked for (a walk of every node's files) only when a run was interrupted since
/// the last look, or when the caller asks: a start after a clean run does not pay for the walk.
@Suite struct RecoveryTests {
    @Test func temporariesAreSweptOnceAfterEachInterruptedRun() throws {
        let world = try ConvergeWorld()
        try world.apply()
        let reconciler = try world.reconciler()
        let host = SimulatedNode.hostFile(stateDirectory: world.state.path, node: Address(kind: .node, region: "lab", name: "lab-1"))
        // A write whose process is gone (no process has this PID) left its temporary file.
        func leaveTemporary() throws -> String {
            let path = host + ".tmp-2147483646"
            try Data("partial".utf8).write(to: URL(fileURLWithPath: path))
            return path
        }
        var left = try leaveTemporary()
        #expect(try reconciler.recover().temporaries.isEmpty, "no run was interrupted: nothing is walked")
        #expect(FileManager.default.fileExists(atPath: left))

        // A run that died (closed as interrupted, as a start does for a dead run's lock).
        let store = try SQLiteState(directory: world.state.path)
        let run = try store.beginRun(regions: ["lab"], revision: nil)
        try DatabaseQueue(path: world.state.file("stacklab.sqlite")).write {
            try $0.execute(sql: "UPDATE run SET status = 'interrupted' WHERE id = ?", arguments: [run])
        }
        #expect(try reconciler.recover().temporaries == [left], "the first start after it sweeps")
        #expect(!FileManager.default.fileExists(atPath: left))

        left = try leaveTemporary()
        #expect(try reconciler.recover().temporaries.isEmpty, "that interruption was swept already")
        #expect(try reconciler.recover(sweepTemporaries: true).temporaries == [left], "a caller may ask for a sweep")
        #expect(try reconciler.recover(sweepTemporaries: false).temporaries.isEmpty)
    }
}
