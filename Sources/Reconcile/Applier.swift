import Dispatch
import Foundation
import HeapModule
import Drivers
import Manifests
import Planning
import Snapshots
import State
import Synchronization

/// Applies a plan by walking its dependency graph: a change starts as soon as its own dependencies are done, changes
/// of one target (a node, or a region's state) run one at a time in plan order, and at most `parallelism` targets
/// are worked on at once. Every change is journaled before and after; transient errors are retried with backoff; a
/// failed change skips its dependents, never the rest of the plan.
public struct Applier: Sendable {
    /// Targets worked on at once.
    public var parallelism: Int
    /// Attempts for a change that fails transiently.
    public var attempts: Int
    /// First retry delay in seconds (doubles each retry).
    public var backoff: Double
    /// Called as changes start and finish (for a progress display).
    public var progress: (@Sendable (ProgressEvent) -> Void)?
    /// The regions' object stores (volume snapshots); nil when the plan has no snapshot changes.
    public var objectStores: ObjectStores?
    /// Each node that can vouch for its state (a generation) is observed once its last change of the plan is done,
    /// through the connection the changes used (a simulated node saves that observation beside its host file, so the
    /// verify and later processes read it instead of parsing the host again). Kept here as well when given: a
    /// long-running caller plans from memory.
    public var settled: ObservationCache?
    /// Whether a node's connection is let go once its changes are done (and it was observed into `settled`): an
    /// apply over thousands of nodes then holds a few connections at a time, not every node's state.
    public var disconnectSettled = false
    /// For a run that goes back on purpose: region → the revision it is taken back from (kept in the run's record).
    public var undoes: [String: String] = [:]

    /// Creates an applier.
    public init(parallelism: Int = 8, attempts: Int = 3, backoff: Double = 0.2, progress: (@Sendable (ProgressEvent) -> Void)? = nil) {
        self.parallelism = max(1, parallelism)
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self.progress = progress
    }

    /// What happened to one change.
    public enum Outcome: Sendable, Equatable, CustomStringConvertible {
        case done(seconds: Double)
        /// Failed, and whether applying it again later may succeed (false: its node refused it).
        case failed(String, retryable: Bool = true)
        case skipped(because: String)

        var succeeded: Bool { if case .done = self { true } else { false } }

        /// As a log line says it: `done in 0.02 s`, `failed: …`, `skipped: …`.
        public var description: String {
            switch self {
            case .done(let seconds): "done in \(String(format: "%.2f", seconds)) s"
            case .failed(let message, let retryable): "failed\(retryable ? "" : " (refused: not retried)"): \(message)"
            case .skipped(let reason): "skipped: \(reason)"
            }
        }
    }

    /// A change starting or finishing, or a transfer under way (a snapshot taken or restored: `outcome` nil and
    /// `transferred` set, when it starts, at most four times a second while it runs, and when its bytes are all moved).
    public struct ProgressEvent: Sendable {
        public var change: Change
        public var outcome: Outcome?
        public var transferred: Transferred? = nil
    }

    /// The bytes a transfer has moved (a sparse volume's file: how many it moves is known only at its end), and for
    /// how long it has run.
    public struct Transferred: Sendable, Equatable {
        public var bytes: UInt64
        public var seconds: Double

        public init(bytes: UInt64, seconds: Double) {
            self.bytes = bytes
            self.seconds = seconds
        }
    }

    /// Counts a transfer's bytes for `progress`: an event when it starts, at most every `interval` seconds while it
    /// runs, and one when it is done. Used by the one thread that moves the bytes.
    final class TransferMeter {
        private let change: Change
        private let progress: (@Sendable (ProgressEvent) -> Void)?
        private let interval: UInt64
        private let started = DispatchTime.now().uptimeNanoseconds
        private var last: UInt64
        private var bytes: UInt64 = 0

        init(_ change: Change, interval: Double = 0.25, progress: (@Sendable (ProgressEvent) -> Void)?) {
            self.change = change
            self.progress = progress
            self.interval = UInt64(interval * 1e9)
            last = started
            report(at: started)
        }

        /// `count` more bytes moved.
        func add(_ count: Int) {
            bytes += UInt64(count)
            let now = DispatchTime.now().uptimeNanoseconds
            if now - last >= interval { report(at: now) }
        }

        /// The transfer is done: its last count.
        func finish() {
            report(at: DispatchTime.now().uptimeNanoseconds)
        }

        private func report(at now: UInt64) {
            last = now
            progress?(ProgressEvent(change: change, outcome: nil, transferred: Transferred(bytes: bytes, seconds: Double(now - started) / 1e9)))
        }
    }

    /// The result of an apply.
    public struct Report: Sendable {
        public var run: Int64
        public var outcomes: [(change: Change, outcome: Outcome)]
        public var succeeded: Bool { outcomes.allSatisfy { $0.outcome.succeeded } }
        public var done: Int { outcomes.count { $0.outcome.succeeded } }
        public var failed: Int { outcomes.count { if case .failed = $0.outcome { true } else { false } } }
        public var skipped: Int { outcomes.count { if case .skipped = $0.outcome { true } else { false } } }
    }

    /// Applies `plan` with `drivers` (by node address); region-wide changes go to `state`, which also journals.
    public func apply(_ plan: Plan, drivers: [Address: any NodeDriver], state: any StateBackend) throws -> Report {
        let run = try state.beginRun(regions: plan.regions, revision: plan.revision, undoes: undoes)
        try state.journalPlanned(plan.changes, run: run)
        let walk = GraphWalk(changes: plan.changes)
        let unrecorded = Unrecorded()
        let group = DispatchGroup()
        for _ in 0..<min(parallelism, max(1, plan.changes.count)) {
            group.enter()
            DispatchQueue.global().async {
                defer { group.leave() }
                while let next = walk.next() {
                    let change = plan.changes[next.index]
                    let outcome: Outcome
                    if let blocker = next.blocker {
                        outcome = .skipped(because: "\(blocker) did not succeed")
                        unrecorded.journal { try state.journal(change, run: run, status: .skipped, error: "skipped: \(blocker) did not succeed") }
                        progress?(ProgressEvent(change: change, outcome: outcome))
                    } else if case .node(let node) = change.target, let driver = drivers[node] as? any WriteBatching, Self.holdsWrite(change.operation) {
                        if applyBatch(from: next.index, of: plan.changes, on: driver, walk: walk, state: state, run: run, unrecorded: unrecorded) { settle(driver) }
                        continue
                    } else {
                        outcome = perform(change, drivers: drivers, state: state, run: run, unrecorded: unrecorded)
                    }
                    walk.record(next.index, outcome)
                    if walk.finish(next.index, succeeded: outcome.succeeded), case .node(let node) = change.target, let driver = drivers[node] { settle(driver) }
                }
            }
        }
        group.wait()
        let lost = unrecorded.replay()
        let report = Report(run: run, outcomes: plan.changes.indices.map { (plan.changes[$0], walk.outcome($0) ?? .skipped(because: "not reached")) })
        try state.finishRun(run, succeeded: report.succeeded)
        if let first = lost.first {
            throw ReconcileError(.stateUnavailable, "the journal could not record \(lost.count) failure\(lost.count == 1 ? "" : "s") of run \(run), even when written again at its end (first: \(first)); those changes stay as last recorded (planned or started), none of them is charged, and the next plan checks each against its node")
        }
        return report
    }

    private func perform(_ change: Change, drivers: [Address: any NodeDriver], state: any StateBackend, run: Int64, unrecorded: Unrecorded) -> Outcome {
        progress?(ProgressEvent(change: change, outcome: nil))
        let start = DispatchTime.now().uptimeNanoseconds
        var delay = backoff
        for attempt in 1...attempts {
            do {
                try state.journal(change, run: run, status: .started, error: nil)
                try execute(change, drivers: drivers, state: state)
                try state.journal(change, run: run, status: .done, error: nil)
                let outcome = Outcome.done(seconds: Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
                progress?(ProgressEvent(change: change, outcome: outcome))
                return outcome
            } catch let error as DriverError where error.isTransient && attempt < attempts {
                unrecorded.journal { try state.journal(change, run: run, status: .failed, error: "attempt \(attempt): \(error.message); retrying") }
                Thread.sleep(forTimeInterval: delay)
                delay *= 2
            } catch {
                unrecorded.journal { try state.journal(change, run: run, status: .failed, error: "\(error)") }
                let outcome = Outcome.failed("\(error)", retryable: (error as? DriverError)?.isTransient ?? true)
                progress?(ProgressEvent(change: change, outcome: outcome))
                return outcome
            }
        }
        return .failed("gave up after \(attempts) attempts")
    }

    /// Changes of one node run as a batch on a driver that can hold writes back (`WriteBatching`): each is applied as soon as it is ready
    /// (its dependencies on the same node may be in the batch), then all are journaled `started`, the node saves them
    /// at once, and they are journaled `done`. A crash before the save loses the batch's effects and leaves its
    /// changes `planned`; one after it finds them `started`, so recovery settles them from the node. Dependents on
    /// other targets start only after the save.
    /// Returns whether the node has no changes left in the plan.
    private func applyBatch(from first: Int, of changes: ChangeList, on driver: any WriteBatching, walk: GraphWalk, state: any StateBackend, run: Int64,
                            unrecorded: Unrecorded) -> Bool {
        var applied: [(index: Int, seconds: Double)] = []
        var failure: (index: Int, message: String, retryable: Bool)?
        var current: Int? = first
        while let index = current {
            let change = changes[index]
            progress?(ProgressEvent(change: change, outcome: nil))
            let start = DispatchTime.now().uptimeNanoseconds
            if let (message, retryable) = applyHeld(change, on: driver) {
                failure = (index, message, retryable)
                break
            }
            applied.append((index, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9))
            walk.release(index)
            guard applied.count < Self.batchLimit else { break }
            current = walk.nextInLane(change.target) { Self.holdsWrite(changes[$0].operation) }
        }
        let attempted = applied.map { changes[$0.index] } + (failure.map { [changes[$0.index]] } ?? [])
        var saveError: String?
        do {
            try state.journal(attempted, run: run, status: .started, error: nil)
            try driver.flush()
            try state.journal(applied.map { changes[$0.index] }, run: run, status: .done, error: nil)
        } catch {
            saveError = "\(error)"
            driver.disconnect()  // what the batch changed in memory is dropped: later changes start from the saved node
            let lost = applied.map { changes[$0.index] }
            unrecorded.journal { try state.journal(lost, run: run, status: .failed, error: "not saved: \(error)") }
        }
        var finished: [(index: Int, succeeded: Bool)] = []
        for (index, seconds) in applied {
            let outcome: Outcome = saveError.map { .failed("not saved: \($0)") } ?? .done(seconds: seconds)
            progress?(ProgressEvent(change: changes[index], outcome: outcome))
            walk.record(index, outcome)
            finished.append((index, saveError == nil))
        }
        if let failure {
            unrecorded.journal { try state.journal(changes[failure.index], run: run, status: .failed, error: failure.message) }
            let outcome = Outcome.failed(failure.message, retryable: failure.retryable)
            progress?(ProgressEvent(change: changes[failure.index], outcome: outcome))
            walk.record(failure.index, outcome)
            finished.append((failure.index, false))
        }
        return walk.finish(finished)
    }

    /// A node's changes are all done: it is observed (when it has a generation to vouch for that observation), kept in
    /// `settled`, and, with `disconnectSettled`, let go.
    private func settle(_ driver: any NodeDriver) {
        if let tracking = driver as? any GenerationTracking, let generation = tracking.generation(),
           let node = try? tracking.observe(generation: generation) {
            settled?.keep(node, generation: generation)
        }
        if disconnectSettled { driver.disconnect() }
    }

    /// Changes one node saves together at most (what a crash before the save can lose, to be applied again).
    static let batchLimit = 64

    /// Whether `operation` is one the node performs alone (no other node, no object store), so it may be held for a
    /// batch's save.
    static func holdsWrite(_ operation: Change.Operation) -> Bool {
        if case .node = operation { true } else { false }
    }

    /// Applies one change of a batch, retrying transient failures; returns why it failed and whether a later attempt
    /// may succeed, or nil.
    private func applyHeld(_ change: Change, on driver: any WriteBatching) -> (String, Bool)? {
        guard case .node(let operation) = change.operation else { return ("'\(change.operation.name)' is not a node's own work: it is never held", false) }
        var delay = backoff
        for attempt in 1...attempts {
            do {
                try driver.apply(operation, deferringWrite: true)
                return nil
            } catch let error where error.isTransient && attempt < attempts {
                Thread.sleep(forTimeInterval: delay)
                delay *= 2
            } catch {
                return ("\(error)", error.isTransient)
            }
        }
        return ("gave up after \(attempts) attempts", true)
    }

    /// Hands the operation to its executor: a node's driver (with another node or the object store for a transfer), or
    /// the state store and the object store for the region's own work.
    private func execute(_ change: Change, drivers: [Address: any NodeDriver], state: any StateBackend) throws {
        switch (change.target, change.operation) {
        case (.node(let node), .node(let operation)):
            guard let driver = drivers[node] else { throw ApplyError(change: change.id, message: "no driver for \(node)") }
            try driver.apply(operation)
        case (.node(let node), .transfer(let operation)):
            guard let driver = drivers[node] else { throw ApplyError(change: change.id, message: "no driver for \(node)") }
            switch operation {
            case .moveDomain(let domain, let from, let name):
                guard let source = drivers[from] else { throw ApplyError(change: change.id, message: "no driver for \(from), which it moves from") }
                try driver.receive(domain, from: source, sourceDomain: name)
            case .takeSnapshot(let pool, let name, let key, let snapshot, let after):
                let store = try objectStore(for: change)
                // The volume's key in the object store is its `tenant/name` text.
                let volume = key.description
                guard try !store.client.exists(store.manifests, store.key(volume: volume, name: snapshot)) else { return }  // taken before a crash
                let previous = try after.flatMap { try store.manifest(volume: volume, name: $0) }
                try driver.exportVolume(pool: pool, name: name, chunkSize: store.chunkSize) { capacity, read in
                    let meter = TransferMeter(change, progress: progress)
                    _ = try store.upload(volume: volume, name: snapshot, capacity: capacity, after: previous) {
                        let chunk = try read()
                        meter.add(chunk?.count ?? 0)
                        return chunk
                    }
                    meter.finish()
                }
            case .restoreVolume(let pool, let name, let bytes, let key, let snapshot):
                let store = try objectStore(for: change)
                try driver.importVolume(pool: pool, name: name, bytes: bytes) { write in
                    let meter = TransferMeter(change, progress: progress)
                    try store.restore(volume: key.description, name: snapshot) { chunk in
                        try write(chunk)
                        meter.add(chunk.count)
                    }
                    meter.finish()
                }
            }
        case (.region, .region(let operation)):
            switch operation {
            case .saveRingBuilder(let builder, let checksum, let previous):
                try state.saveRing(address: change.address, state: builder.data, checksum: checksum, previous: previous)
            case .deleteSnapshot(let key, let snapshot):
                _ = try objectStore(for: change).delete(volume: key.description, name: snapshot)
            case .putContainer(let account, let container, let read, let write, let versioned):
                try reseller(for: change, account: account).putContainer(container, read: read, write: write, versioned: versioned)
            case .deleteContainer(let account, let container, let objects):
                let client = try reseller(for: change, account: account)
                if objects { try client.emptyContainer(container) }
                try client.deleteContainer(container)
            case .setAccountQuota(let account, let bytes, let objects):
                let client = try reseller(for: change, account: account)
                if try client.accountInfo() == nil { try client.createAccount() }
                try client.setAccountQuota(bytes: bytes, objects: objects)
            }
        case (.node, .region), (.region, .node), (.region, .transfer):
            // A plan is made by the planners or decoded from a sealed file: a mismatch is a bug, named, never guessed at.
            throw ApplyError(change: change.id, message: "'\(change.operation.name)' cannot be done by \(change.target)")
        }
    }
}

extension Applier {
    /// The object store of the change's region.
    fileprivate func objectStore(for change: Change) throws -> SnapshotStore {
        guard let objectStores else { throw ApplyError(change: change.id, message: "no object store was given to the applier for region \(change.region)") }
        return try objectStores.store(change.region)
    }
}

extension Applier {
    /// The reseller admin's client for `account` in the change's region.
    fileprivate func reseller(for change: Change, account: String) throws -> SwiftClient {
        guard let objectStores else { throw ApplyError(change: change.id, message: "no object store was given to the applier for region \(change.region)") }
        return try objectStores.reseller(change.region).forAccount(TenantStorage.resellerPrefix + account)
    }
}

/// A change that could not be handed to an executor.
public struct ApplyError: Error, CustomStringConvertible {
    public var change: ChangeID
    public var message: String
    public var description: String { "\(change): \(message)" }
}

/// The applier's walk over the plan's graph: which change may start next, and what happened to each. Ready changes
/// wait in their target's lane; a lane whose target is free is runnable, and the runnable lane whose first change comes
/// earliest in the plan goes first. The plan lists a region's changes together, so a region is finished (its ring
/// builders saved, its nodes' last changes made, each node then observed and let go) before the next one starts:
/// an apply holds a region's worth of node connections, not every node's. (Taking lanes in the order they became
/// runnable sent a lane with several changes, like a region's three ring builders, to the back of the queue after each
/// one: every node of the cloud stayed open until its ring files came, at the very end.)
///
/// `@unchecked Sendable`: every access goes through `condition`.
final class GraphWalk: @unchecked Sendable {
    private let changes: ChangeList
    private let condition = NSCondition()
    /// Unfinished dependencies per change.
    private var waiting: [Int]
    private var dependents: [[Int]]
    /// A failed or skipped dependency per change, the first one seen.
    private var blocker: [ChangeID?]
    private var lanes: [Change.Target: [Int]] = [:]
    /// Ready changes by plan position, smallest first. A free target's earliest ready change is always here; entries
    /// already taken, or of a target that is busy (pushed again when it frees), are passed over.
    private var runnable = Heap<Int>()
    private var taken: [Bool]
    private var busy = Set<Change.Target>()
    private var remaining: Int
    private var outcomes: [Applier.Outcome?]
    /// Changes that released their same-target dependents before finishing (applied in a batch, not yet saved).
    private var released: [Bool]
    /// Unfinished changes per target.
    private var unfinished: [Change.Target: Int] = [:]

    init(changes: ChangeList) {
        self.changes = changes
        let position = Dictionary(changes.enumerated().map { ($1.id, $0) }, uniquingKeysWith: { first, _ in first })
        waiting = Array(repeating: 0, count: changes.count)
        dependents = Array(repeating: [], count: changes.count)
        blocker = Array(repeating: nil, count: changes.count)
        outcomes = Array(repeating: nil, count: changes.count)
        released = Array(repeating: false, count: changes.count)
        taken = Array(repeating: false, count: changes.count)
        remaining = changes.count
        for change in changes { unfinished[change.target, default: 0] += 1 }
        for (index, change) in changes.enumerated() {
            for dependency in Set(change.dependsOn) {
                guard let from = position[dependency], from != index else { continue }
                waiting[index] += 1
                dependents[from].append(index)
            }
            if waiting[index] == 0 { makeReady(index) }
        }
    }

    private func makeReady(_ index: Int) {
        let target = changes[index].target
        lanes[target, default: []].append(index)
        if !busy.contains(target) { runnable.insert(index) }
    }

    /// Takes `index` out of its target's lane.
    private func take(_ index: Int, of target: Change.Target) {
        taken[index] = true
        guard var lane = lanes[target], let position = lane.firstIndex(of: index) else { return }
        lane.remove(at: position)
        lanes[target] = lane.isEmpty ? nil : lane
    }

    /// The next change to run (the earliest in plan order of a free target's lane), waiting while none is ready; nil
    /// when all are done. A change with a failed dependency comes back with that `blocker`, to be skipped.
    func next() -> (index: Int, blocker: ChangeID?)? {
        condition.lock()
        defer { condition.unlock() }
        while true {
            guard remaining > 0 else { return nil }
            while let index = runnable.popMin() {
                let target = changes[index].target
                guard !taken[index], !busy.contains(target) else { continue }
                // The earliest of its lane: any earlier one of a free target would be in the heap, and come first.
                take(index, of: target)
                busy.insert(target)
                return (index, blocker[index])
            }
            condition.wait()
        }
    }

    /// Lets the changes of the same target that wait on `index` run before it finishes (its target stays busy): a
    /// batch applies them in order and saves them together. Its other dependents wait for `finish`.
    func release(_ index: Int) {
        condition.lock()
        defer { condition.unlock() }
        released[index] = true
        let target = changes[index].target
        for dependent in dependents[index] where changes[dependent].target == target {
            waiting[dependent] -= 1
            if waiting[dependent] == 0 { makeReady(dependent) }
        }
    }

    /// The earliest ready change of `target`'s lane that `accept`s and has no failed dependency, taken while the
    /// target stays busy; nil when there is none.
    func nextInLane(_ target: Change.Target, accept: (Int) -> Bool) -> Int? {
        condition.lock()
        defer { condition.unlock() }
        guard let lane = lanes[target], let index = lane.filter({ blocker[$0] == nil }).min(), accept(index) else { return nil }
        take(index, of: target)
        return index
    }

    /// Marks a change finished and releases what waited on it; returns whether it was its target's last.
    @discardableResult
    func finish(_ index: Int, succeeded: Bool) -> Bool {
        finish([(index, succeeded)])
    }

    /// Marks the changes of one target's batch finished at once (the target is freed once, so no other worker can
    /// take it up between them) and releases what waited on them; returns whether they were the target's last.
    func finish(_ batch: [(index: Int, succeeded: Bool)]) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        guard let target = batch.first.map({ changes[$0.index].target }) else { return false }
        busy.remove(target)
        unfinished[target, default: batch.count] -= batch.count
        remaining -= batch.count
        for (index, succeeded) in batch {
            for dependent in dependents[index] {
                if !succeeded || blocker[index] != nil, blocker[dependent] == nil { blocker[dependent] = blocker[index] ?? changes[index].id }
                if released[index] && changes[dependent].target == target { continue }  // released when it was applied
                waiting[dependent] -= 1
                if waiting[dependent] == 0 { makeReady(dependent) }
            }
        }
        if let first = lanes[target]?.min() { runnable.insert(first) }
        condition.broadcast()
        return unfinished[target] == 0
    }

    func record(_ index: Int, _ outcome: Applier.Outcome) {
        condition.lock()
        defer { condition.unlock() }
        outcomes[index] = outcome
    }

    func outcome(_ index: Int) -> Applier.Outcome? {
        condition.lock()
        defer { condition.unlock() }
        return outcomes[index]
    }
}

/// Journal writes of an apply's failures (failed, skipped, not saved) that failed themselves: the apply goes on (the
/// change's outcome is known), writes each again once at its end (a store that was busy or away for a moment takes it
/// then), and says what still could not be written, so a lost record is never silent.
final class Unrecorded: Sendable {
    private let writes = Mutex<[@Sendable () throws -> Void]>([])

    /// Runs one journal write, keeping it for `replay()` when it fails.
    func journal(_ write: @escaping @Sendable () throws -> Void) {
        do {
            try write()
        } catch {
            writes.withLock { $0.append(write) }
        }
    }

    /// Runs every kept write once more, in order; returns the errors of those that failed again.
    func replay() -> [String] {
        let pending = writes.withLock { writes in
            defer { writes = [] }
            return writes
        }
        var errors: [String] = []
        for write in pending {
            do { try write() } catch { errors.append("\(error)") }
        }
        return errors
    }
}
