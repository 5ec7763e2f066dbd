import Foundation
import Drivers
import Manifests
import Planning
import StateSQLite
import Synchronization
import TestSupport
import Testing
@testable import Reconcile

/// The applier walks the plan's graph: a change is ready when its own dependencies are done, one change runs per
/// target at a time, and a failure skips exactly its dependents (transitively).
@Suite struct GraphWalkTests {
    static func node(_ name: String) -> Change.Target { .node(Address(kind: .node, region: "lab", name: name)) }

    static func change(_ name: String, on target: Change.Target, after: [Change] = []) -> Change {
        Change(address: Address(kind: .network, region: "lab", name: name), target: target, action: .create, reason: .new,
               dependsOn: after.map(\.id), operation: .ensureNetwork(network: name, bridge: "br0"))
    }

    @Test func aChangeStartsWhenItsOwnDependenciesAreDoneNotAWave() {
        // a (n1) → b (n2); c (n3) is independent, d (n3) waits for c only.
        let a = Self.change("a", on: Self.node("n1"))
        let b = Self.change("b", on: Self.node("n2"), after: [a])
        let c = Self.change("c", on: Self.node("n3"))
        let d = Self.change("d", on: Self.node("n3"), after: [c])
        let walk = GraphWalk(changes: [a, b, c, d])
        let first = walk.next()!
        let second = walk.next()!
        #expect([first.index, second.index].sorted() == [0, 2], "a and c start together; b and d wait")
        walk.finish(2, succeeded: true)  // c done: d may start while a still runs
        #expect(walk.next()?.index == 3)
        walk.finish(3, succeeded: true)
        walk.finish(0, succeeded: true)
        #expect(walk.next()?.index == 1)
        walk.finish(1, succeeded: true)
        #expect(walk.next() == nil)
    }

    @Test func oneChangeAtATimePerTargetInPlanOrder() {
        let x = Self.change("x", on: Self.node("n1"))
        let y = Self.change("y", on: Self.node("n1"))
        let walk = GraphWalk(changes: [x, y])
        #expect(walk.next()?.index == 0)
        walk.finish(0, succeeded: true)
        #expect(walk.next()?.index == 1, "y runs only after x, on the same node")
        walk.finish(1, succeeded: true)
        #expect(walk.next() == nil)
    }

    @Test func aFailureSkipsItsDependentsTransitivelyAndNothingElse() {
        let a = Self.change("a", on: Self.node("n1"))
        let b = Self.change("b", on: Self.node("n2"), after: [a])
        let c = Self.change("c", on: Self.node("n2"), after: [b])
        let e = Self.change("e", on: Self.node("n3"))
        let walk = GraphWalk(changes: [a, b, c, e])
        var blockers: [Int: ChangeID?] = [:]
        while let next = walk.next() {
            blockers[next.index] = next.blocker
            walk.finish(next.index, succeeded: next.index != 0 && next.blocker == nil)
        }
        #expect(blockers[1] == .some(a.id))
        #expect(blockers[2] == .some(a.id), "the root cause is named")
        #expect(blockers[3] == .some(nil))
    }

    @Test func aBatchRunsItsNodesDependentsAtOnceButOtherNodesWaitForTheSave() {
        // a, b (after a) on n1; c on n2 after a. Applied in a batch, a releases b at once; c waits until a is finished (saved).
        let a = Self.change("a", on: Self.node("n1"))
        let b = Self.change("b", on: Self.node("n1"), after: [a])
        let c = Self.change("c", on: Self.node("n2"), after: [a])
        let walk = GraphWalk(changes: [a, b, c])
        #expect(walk.next()?.index == 0)
        walk.release(0)
        #expect(walk.nextInLane(Self.node("n1")) { _ in true } == 1, "b joins a's batch")
        walk.release(1)
        #expect(walk.nextInLane(Self.node("n1")) { _ in true } == nil)
        #expect(walk.finish(0, succeeded: true) == false, "b of the same node is not finished yet")
        #expect(walk.finish(1, succeeded: true) == true, "the node's last change")
        #expect(walk.next()?.index == 2, "c starts only once a is saved")
        walk.finish(2, succeeded: true)
        #expect(walk.next() == nil)
    }

    /// Two regions as a plan lists them: each node's network, the region's three ring builders saved one after another
    /// (one target), and each node's ring files after their builder. One worker finishes a region, its nodes' last
    /// changes included, before it starts the next: a node is let go only after its last change, so taking lanes in
    /// the order they became runnable (which sent the builders' lane to the back of the queue after each save) kept
    /// every node of the cloud open until the end.
    @Test func aRegionIsFinishedBeforeTheNextOneStarts() {
        var changes: [Change] = []
        for region in ["r0", "r1"] {
            let nodes = (0..<3).map { Change.Target.node(Address(kind: .node, region: region, name: "\(region)-n\($0)")) }
            for node in nodes { changes.append(Self.change("net-\(region)-\(node)", on: node)) }
            var saves: [Change] = []
            for ring in ["account", "container", "object"] {
                let save = Self.change("\(region)-\(ring)", on: .region(region), after: saves.suffix(1))
                saves.append(save)
                changes.append(save)
                for node in nodes { changes.append(Self.change("\(region)-\(ring)-\(node)", on: node, after: [save])) }
            }
        }
        let walk = GraphWalk(changes: ChangeList(changes))
        var order: [String] = []
        while let next = walk.next() {
            order.append(changes[next.index].region)
            walk.finish(next.index, succeeded: true)
        }
        #expect(order.count == changes.count)
        #expect(order == Array(repeating: "r0", count: changes.count / 2) + Array(repeating: "r1", count: changes.count / 2), "\(order)")
    }

    @Test func aBatchFreesItsTargetOnceWhenItFinishes() {
        // a, b (after a) and c (after b) on n1; a batch takes a and b, c stays in the lane. Until the whole batch is
        // finished no one else may take n1; then c is next.
        let a = Self.change("a", on: Self.node("n1"))
        let b = Self.change("b", on: Self.node("n1"), after: [a])
        let c = Self.change("c", on: Self.node("n1"), after: [b])
        let walk = GraphWalk(changes: [a, b, c])
        #expect(walk.next()?.index == 0)
        walk.release(0)
        #expect(walk.nextInLane(Self.node("n1")) { _ in true } == 1)
        walk.release(1)  // c is ready, but the batch stops here (its limit)
        #expect(walk.finish([(0, true), (1, true)]) == false, "c is left")
        #expect(walk.next()?.index == 2)
        #expect(walk.finish(2, succeeded: true) == true)
        #expect(walk.next() == nil)
    }

    @Test func aBatchThatFailsToSaveSkipsWhatItReleased() {
        let a = Self.change("a", on: Self.node("n1"))
        let b = Self.change("b", on: Self.node("n1"), after: [a])
        let walk = GraphWalk(changes: [a, b])
        #expect(walk.next()?.index == 0)
        walk.release(0)  // b is ready in the lane; the batch ends before taking it (a limit), then a's save fails
        walk.finish(0, succeeded: false)
        let next = walk.next()
        #expect(next?.index == 1 && next?.blocker == a.id, "b is skipped: what it depended on was never saved")
        walk.finish(1, succeeded: false)
        #expect(walk.next() == nil)
    }
}

/// An executor handed an operation it does not perform fails loudly; nothing succeeds by default. (A node driver is
/// handed only `NodeOperation`s: a region's work given to one does not compile.)
@Suite struct ExecutorTests {
    @Test func executorsRefuseOperationsTheyDoNotHandle() throws {
        let world = try ConvergeWorld()
        let reconciler = try world.reconciler()
        var drivers = try reconciler.drivers(for: ["lab"])
        let node = Address(kind: .node, region: "lab", name: "lab-1")
        // A node operation aimed at a region, and a change for a node without a driver, fail and are journaled as such.
        let misdirected = Change(address: Address(kind: .network, region: "lab", name: "private"), target: .region("lab"), action: .create,
                                 reason: .new, operation: .ensureNetwork(network: "private", bridge: "br100"))
        let orphaned = Change(address: Address(kind: .network, region: "lab", name: "private"), target: .node(node), action: .create,
                              reason: .new, operation: .ensureNetwork(network: "private", bridge: "br100"))
        drivers[node] = nil
        let plan = Plan(revision: nil, regions: ["lab"], observed: [:], changes: [misdirected, orphaned], unmanaged: [], errors: [])
        let report = try Applier(attempts: 1).apply(plan, drivers: drivers, state: try SQLiteState(directory: world.state.path))
        #expect(report.failed == 2)
        #expect(report.outcomes.allSatisfy { if case .failed(let message, _) = $0.outcome { message.contains("'ensure network' cannot be done by region/lab") || message.contains("no driver") } else { false } })
    }
}

/// A simulated node saves a batch of its changes with one write of its host file, not one per change.
@Suite struct BatchedWriteTests {
    /// Forwards to a real node, counting its saves (instrumentation, not a stand-in: every call reaches libvirt).
    final class CountingNode: WrappingNode, WriteBatching, GenerationTracking, @unchecked Sendable {
        let inner: any NodeDriver
        let counts = Mutex((applied: 0, flushes: 0))
        /// Whether saves fail (a full disk: a fault the test driver cannot produce).
        let failsToSave: Bool
        init(_ inner: any NodeDriver, failsToSave: Bool = false) {
            self.inner = inner
            self.failsToSave = failsToSave
        }
        /// The simulated node wrapped (it holds writes back and tracks its generation).
        var batching: any WriteBatching & GenerationTracking { inner as! any WriteBatching & GenerationTracking }
        func generation() -> String? { batching.generation() }
        func observe(generation: String?) throws(DriverError) -> ObservedNode { try batching.observe(generation: generation) }
        func apply(_ operation: NodeOperation) throws(DriverError) { try apply(operation, deferringWrite: false) }
        func apply(_ operation: NodeOperation, deferringWrite: Bool) throws(DriverError) {
            counts.withLock { $0.applied += 1 }
            try batching.apply(operation, deferringWrite: deferringWrite)
        }
        func flush() throws(DriverError) {
            counts.withLock { $0.flushes += 1 }
            if failsToSave { throw DriverError(node: address, message: "injected: no space left on device", isTransient: false) }
            try batching.flush()
        }
    }

    @Test func aNodesChangesAreSavedTogetherAndObservedOnceDone() throws {
        let world = try ConvergeWorld()
        let reconciler = try world.reconciler()
        let regions = try reconciler.regions([])
        let counting = try reconciler.drivers(for: regions).mapValues { CountingNode($0) }
        let plan = try reconciler.refreshPlan(regions, drivers: counting)
        var applier = Applier(attempts: 1)
        let settled = ObservationCache()
        applier.settled = settled
        applier.disconnectSettled = true
        let report = try applier.apply(plan, drivers: counting, state: try SQLiteState(directory: world.state.path))
        #expect(report.succeeded, "\(report.outcomes.filter { !$0.outcome.succeeded })")
        let perNode = Dictionary(grouping: plan.changes.compactMap(\.target.node), by: { $0 }).mapValues(\.count)
        for (address, node) in counting {
            let (applied, flushes) = node.counts.withLock { ($0.applied, $0.flushes) }
            let changes = perNode[address] ?? 0
            #expect(applied == changes, "\(address): every change reached the node")
            #expect(changes == 0 || (flushes >= 1 && flushes < changes), "\(address): \(changes) changes saved in \(flushes) writes")
            // What the node holds now, read back from its host file by a fresh connection, is what the apply observed.
            let fresh = try #require(try reconciler.drivers(for: regions)[address])
            if changes > 0 { #expect(settled.nodes([(address, (fresh as? any GenerationTracking)?.generation())]).first! == (try fresh.observe())) }
        }
        let after = try world.plan()
        #expect(after.isEmpty, "the saved hosts hold every change: \(after.changes.map { "\($0.action) \($0.address) \($0.reason)" })")
    }

    @Test func aBatchThatCannotBeSavedFailsAndLeavesTheNodeAsItWas() throws {
        let world = try ConvergeWorld()
        let reconciler = try world.reconciler()
        let regions = try reconciler.regions([])
        let broken = Address(kind: .node, region: "lab", name: "lab-1")
        let drivers = try reconciler.drivers(for: regions).mapValues { CountingNode($0, failsToSave: $0.address == broken) }
        let plan = try reconciler.refreshPlan(regions, drivers: drivers)
        let report = try Applier(attempts: 1).apply(plan, drivers: drivers, state: try SQLiteState(directory: world.state.path))
        let onBroken = report.outcomes.filter { $0.change.target.node == broken }
        #expect(!onBroken.isEmpty && onBroken.allSatisfy { if case .done = $0.outcome { false } else { true } })
        #expect(onBroken.contains { if case .failed(let message, _) = $0.outcome { message.contains("not saved") } else { false } })
        #expect(report.outcomes.contains { $0.change.target.node == Address(kind: .node, region: "lab", name: "lab-2") && $0.outcome.succeeded },
                "other nodes are not held back")
        // Nothing of the unsaved batch reached the node, and the journal says none of it was done: the next plan wants it all again.
        let fresh = try #require(try reconciler.drivers(for: regions)[broken])
        #expect(try fresh.observe().domains.isEmpty)
        let entries = try SQLiteState(directory: world.state.path).journalEntries(run: report.run).filter { $0.target == .node(broken) }
        #expect(entries.allSatisfy { $0.status != .done })
        let again = try world.plan()
        #expect(again.changes.filter { $0.target.node == broken }.count == onBroken.count)
    }
}
