import Dispatch
import Foundation
import Hypervisor
import Planning

/// Applies a plan: changes in dependency waves, each wave's nodes in parallel (at most `parallelism` at once),
/// each node's changes in order. Every change is journaled before and after; transient errors are retried with
/// backoff; a failed change skips its dependents, never the rest of the region.
public struct Applier: Sendable {
    /// Nodes worked on at once.
    public var parallelism: Int
    /// Attempts for a change that fails transiently.
    public var attempts: Int
    /// First retry delay in seconds (doubles each retry).
    public var backoff: Double
    /// Called as changes start and finish (for a progress display).
    public var progress: (@Sendable (ProgressEvent) -> Void)?

    /// Creates an applier.
    public init(parallelism: Int = 8, attempts: Int = 3, backoff: Double = 0.2, progress: (@Sendable (ProgressEvent) -> Void)? = nil) {
        self.parallelism = max(1, parallelism)
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self.progress = progress
    }

    /// What happened to one change.
    public enum Outcome: Sendable, Equatable {
        case done(seconds: Double)
        case failed(String)
        case skipped(because: String)
    }

    /// A change starting or finishing.
    public struct ProgressEvent: Sendable {
        public var change: Change
        public var outcome: Outcome?
    }

    /// The result of an apply.
    public struct Report: Sendable {
        public var run: Int64
        public var outcomes: [(change: Change, outcome: Outcome)]
        public var succeeded: Bool { outcomes.allSatisfy { if case .done = $0.outcome { true } else { false } } }
        public func count(_ kind: String) -> Int {
            outcomes.count { entry in
                switch entry.outcome {
                case .done: kind == "done"
                case .failed: kind == "failed"
                case .skipped: kind == "skipped"
                }
            }
        }
    }

    /// Applies `plan` with `drivers` (by node name), journaling in `store`.
    public func apply(_ plan: Plan, drivers: [String: any NodeDriver], store: StateStore) throws -> Report {
        let changes = plan.changes
        let run = try store.beginRun(regions: plan.regions, revision: plan.revision)
        try store.journalPlanned(changes, run: run)
        let outcomes = OutcomeBook()
        for wave in Self.waves(changes) {
            let byNode = Dictionary(grouping: wave, by: { $0.node.name }).sorted { $0.key < $1.key }.map(\.value)
            let limit = DispatchSemaphore(value: parallelism)
            let group = DispatchGroup()
            for nodeChanges in byNode {
                limit.wait()
                group.enter()
                DispatchQueue.global().async {
                    defer {
                        limit.signal()
                        group.leave()
                    }
                    for change in nodeChanges {
                        let outcome = self.run(change, drivers: drivers, store: store, run: run, outcomes: outcomes)
                        outcomes.set(change, outcome)
                    }
                }
            }
            group.wait()
        }
        let report = Report(run: run, outcomes: changes.map { ($0, outcomes.get($0.id) ?? .skipped(because: "not reached")) })
        try store.finishRun(run, succeeded: report.succeeded)
        return report
    }

    private func run(_ change: Change, drivers: [String: any NodeDriver], store: StateStore, run: Int64, outcomes: OutcomeBook) -> Outcome {
        if let blocker = change.dependsOn.first(where: { outcomes.get($0).map { if case .done = $0 { false } else { true } } ?? false }) {
            let outcome = Outcome.skipped(because: "\(blocker) did not succeed")
            try? store.journal(change, run: run, status: .skipped, error: "skipped: \(blocker) did not succeed")
            progress?(ProgressEvent(change: change, outcome: outcome))
            return outcome
        }
        if change.address.kind == .ring && change.node.kind == .region {
            // Building a ring is not a node operation: its new builder state is saved, once, before any node gets the file.
            do {
                try store.journal(change, run: run, status: .started)
                try store.saveRing(address: change.address.description, state: change.payload ?? Data(), checksum: change.checksum ?? "")
                try store.journal(change, run: run, status: .done)
                let outcome = Outcome.done(seconds: 0)
                progress?(ProgressEvent(change: change, outcome: outcome))
                return outcome
            } catch {
                try? store.journal(change, run: run, status: .failed, error: "\(error)")
                return .failed("\(error)")
            }
        }
        guard let driver = drivers[change.node.name] else {
            let outcome = Outcome.failed("no driver for node \(change.node.name)")
            try? store.journal(change, run: run, status: .failed, error: "no driver for node \(change.node.name)")
            return outcome
        }
        progress?(ProgressEvent(change: change, outcome: nil))
        let start = DispatchTime.now().uptimeNanoseconds
        var delay = backoff
        for attempt in 1...attempts {
            do {
                try store.journal(change, run: run, status: .started)
                try driver.apply(change)
                try store.journal(change, run: run, status: .done)
                let outcome = Outcome.done(seconds: Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
                progress?(ProgressEvent(change: change, outcome: outcome))
                return outcome
            } catch let error as DriverError where error.isTransient && attempt < attempts {
                try? store.journal(change, run: run, status: .failed, error: "attempt \(attempt): \(error.message); retrying")
                Thread.sleep(forTimeInterval: delay)
                delay *= 2
            } catch {
                try? store.journal(change, run: run, status: .failed, error: "\(error)")
                let outcome = Outcome.failed("\(error)")
                progress?(ProgressEvent(change: change, outcome: outcome))
                return outcome
            }
        }
        return .failed("gave up after \(attempts) attempts")
    }

    /// Groups changes into waves: a change goes in the wave after the last of its dependencies.
    static func waves(_ changes: [Change]) -> [[Change]] {
        var level: [String: Int] = [:]
        for change in changes {  // plans list dependencies before dependents
            level[change.id] = (change.dependsOn.compactMap { level[$0] }.max() ?? -1) + 1
        }
        let count = (level.values.max() ?? -1) + 1
        var waves = Array(repeating: [Change](), count: count)
        for change in changes { waves[level[change.id]!].append(change) }
        return waves
    }
}

/// Outcomes recorded by parallel workers.
///
/// `@unchecked Sendable`: every access goes through `lock`.
final class OutcomeBook: @unchecked Sendable {
    private var outcomes: [String: Applier.Outcome] = [:]
    private let lock = NSLock()

    func set(_ change: Change, _ outcome: Applier.Outcome) {
        lock.lock()
        defer { lock.unlock() }
        outcomes[change.id] = outcome
    }

    func get(_ id: String) -> Applier.Outcome? {
        lock.lock()
        defer { lock.unlock() }
        return outcomes[id]
    }
}
