import Foundation
import Drivers
import ManifestSources
import Manifests
import Planning
import SimulatedNodes
import State

/// Plans one git repository revision after revision (what `stacklab-bench incremental` measures), keeping in memory
/// each subtree's listing and each file's decode result (by tree and blob id, a `RevisionLoader`) and, in `RunCaches`, each node's observation (by
/// generation), ring builders (by stamp) and each region's plan (by `RegionKey`): the caches the service keeps for its
/// runs, through the same `Reconciler.plan(_:)`. So a new revision costs what it changed: only changed blobs are read and decoded, only
/// regions whose documents, nodes or rings changed are planned, only nodes whose generation changed are
/// observed, and ring builders are decoded again only when saved again. Validation keeps a region's instance
/// findings while its instance documents and every other document are unchanged; the rules over everything
/// else, and the capacity and quota totals, run every time.
///
/// Not thread-safe: one caller owns it.
public final class IncrementalPlanner {
    /// The repository.
    public let repository: String
    /// The state directory (simulated nodes, ring builders).
    public let stateDirectory: String
    /// Each revision's files, through the subtrees and decodes of earlier ones.
    private let loader: RevisionLoader
    /// Drivers, observations, ring builders and region plans kept between revisions (what the service keeps too).
    private let caches: RunCaches
    private let state: () throws -> (any StateBackend)?
    private let environment: RunEnvironment
    /// When crashed writes' temporary files are swept (every ten minutes at most).
    private let sweeps = SweepClock()

    /// What one revision cost.
    public struct Outcome {
        /// The load (model, diagnostics, timings).
        public var load: LoadResult
        /// The plan; nil when the manifests have errors (nothing is planned then).
        public var plan: Plan?
        /// Files decoded and files whose earlier decode was kept.
        public var filesDecoded: Int
        public var filesReused: Int
        /// Whether the revision's changes were applied to the last load (else the whole tree was listed).
        public var changesApplied = false
        /// Regions and nodes reused or redone.
        public var reuse: ReuseStats
        /// Seconds: reading and decoding, validating, observing and planning, in total.
        public var loadSeconds: Double
        public var validateSeconds: Double
        public var planSeconds: Double
        public var totalSeconds: Double
    }

    /// A planner for `repository`, with its simulated nodes in `stateDirectory` and what earlier runs kept in `state`.
    /// `state` is asked each revision (the store appears with the first apply).
    public init(repository: String, stateDirectory: String, state: @escaping () throws -> (any StateBackend)?, limits: LoadLimits = LoadLimits(),
                environment: RunEnvironment = RunEnvironment()) {
        self.repository = repository
        self.state = state
        self.stateDirectory = stateDirectory
        caches = RunCaches(stateDirectory: stateDirectory, environment: environment)
        self.environment = environment
        loader = RevisionLoader(repository: repository, limits: limits)
    }

    /// Plans `revision` (every region), reusing what earlier revisions computed.
    public func plan(revision: String) throws -> Outcome {
        let start = Date()
        let load: LoadResult
        do {
            load = try loader.load(revision: revision)
        } catch {
            throw ReconcileError(.invalid, "git \(repository) @ \(revision): \(error)\(error.hint.map { "; \($0)" } ?? "")")
        }
        let loaded = Date()
        let reused = loader.lastReuse
        var outcome = Outcome(load: load, plan: nil, filesDecoded: reused.filesDecoded, filesReused: reused.filesReused,
                              reuse: ReuseStats(), loadSeconds: loaded.timeIntervalSince(start) - load.timings.validate,
                              validateSeconds: load.timings.validate, planSeconds: 0, totalSeconds: 0)
        outcome.changesApplied = reused.changesApplied
        guard !load.hasErrors else {
            outcome.totalSeconds = Date().timeIntervalSince(start)
            return outcome
        }
        var reconciler = Reconciler(model: load.model, revision: load.revision, stateDirectory: stateDirectory, state: try state(), environment: environment)
        reconciler.nodes = caches.nodes
        reconciler.planDigests = load.planDigests
        reconciler.instancesByRegion = load.instancesByRegion
        var request = PlanRequest()
        request.caches = caches
        request.sweepTemporaries = sweeps.due()
        let made = try reconciler.plan(request)
        caches.drivers.retain(endpoints: made.endpoints)
        outcome.plan = made.plan
        outcome.reuse = made.reuse
        let end = Date()
        outcome.planSeconds = end.timeIntervalSince(loaded)
        outcome.totalSeconds = end.timeIntervalSince(start)
        return outcome
    }
}

/// Says when a periodic chore is due: at the first ask, then once `interval` seconds have passed since it last was.
public final class SweepClock: @unchecked Sendable {
    private let lock = NSLock()
    private var last: Date?
    public let interval: Double

    public init(interval: Double = 600) { self.interval = interval }

    /// Whether the chore is due now; a yes counts as doing it.
    public func due() -> Bool {
        lock.withLock {
            guard last.map({ Date().timeIntervalSince($0) >= interval }) ?? true else { return false }
            last = Date()
            return true
        }
    }
}
