import Dispatch
import Foundation
import Git
import Drivers
import Logging
import ManifestSources
import Manifests
import Metrics
import Pipelines
import Planning
import Reconcile
import ServiceLifecycle
import State
import StateStores
import Synchronization

/// How the service is set up.
public struct ServiceConfiguration: Sendable {
    /// The manifests repository (a bare repository pushes go to, or any clone) and the branch it follows. With
    /// `remote`, it is a mirror the service keeps and fetches into (libgit2) before each look.
    public var repository: String
    public var remote: String?
    public var branch = "main"
    public var stateDirectory: String
    /// Where the state is kept: the embedded store in `stateDirectory`, or a PostgreSQL database shared with other
    /// reconcilers (each then claims a fair share of the regions by lease).
    public var store: StateLocation
    /// Seconds between looks at the branch (pushes also wake the loop at once), and between resyncs of a region
    /// whose revision did not change (drift is healed then); the loop looks at least that often.
    public var pollInterval: Double = 5
    public var resyncInterval: Double = 60
    /// Seconds between reads of the running instances' counters (CPU, disk and network I/O) for `/metrics`; 0: never.
    public var usageInterval: Double = 15
    /// The operator's bearer token (every route), the read-only token (pages, status, metrics) and the shared secret for
    /// webhooks (reloadable).
    public var secrets: ServiceSecrets
    public var sshIdentity: String?
    /// What the program read from its environment (production nodes' SSH key and socket, object-store keys).
    public var environment = RunEnvironment()
    /// Longest backoff after repeated failures of one region, in seconds.
    public var maxBackoff: Double = 300
    /// How many regions' decoded state (node observations, ring builders) runs keep between them: those planned most
    /// recently (nil: every region's).
    public var cacheRegions: Int? = Self.defaultCacheRegions
    /// The Prometheus that scrapes this service (`http://127.0.0.1:9090`), whose `query_range` the instance pages'
    /// graphs are drawn from; nil: the pages show the counters as last read.
    public var prometheus: String?
    /// `serve --cache-regions` when not given.
    public static let defaultCacheRegions = 16

    public init(repository: String, stateDirectory: String, token: String, readToken: String? = nil, webhookSecret: String) {
        self.repository = repository
        self.stateDirectory = stateDirectory
        self.store = .embedded(directory: stateDirectory)
        self.secrets = ServiceSecrets(token: token, readToken: readToken, webhookSecret: webhookSecret)
    }
}

/// The level-triggered reconcile loop: looks at the branch on every poll or push, and converges each region whose
/// desired revision is not applied, whose resync is due, or that was asked to sync. Regions are independent: one
/// that fails backs off exponentially, the others go on. Blocking work runs on its own thread, never on the
/// cooperative pool; on a graceful shutdown the region in flight finishes (its journal stays consistent) and the
/// loop ends.
public struct ReconcileLoop: Service {
    public let configuration: ServiceConfiguration
    public let state: ServiceState
    let logger: Logger
    /// Revisions are loaded incrementally: only trees and files whose ids changed are read and decoded again.
    let loader: RevisionLoader
    /// When crashed writes' temporary files were last swept: in the first run, then every ten minutes on a thread of
    /// its own (a sweep lists every simulated node's directory, seconds at 10,000 nodes: not on a push's way to its
    /// plan; it removes only files whose writer is gone or that are older than ten minutes, so it may run beside one).
    let sweeps = SweepClock()
    let firstSweepDone = StopFlag()
    /// Set by each region run, taken after each pass (`Allocator.trim`).
    let ranSinceTrim = StopFlag()
    /// Whether the operator was told that node generations are read without a watch (once per process).
    let toldUnwatched = StopFlag()
    /// The store the loop reads each region's run history from, opened once (not on every look).
    let historyStore = HistoryStore()
    /// Node drivers, observations of nodes that did not change, decoded ring builders: kept between runs (and read by
    /// the dashboard).
    var caches: RunCaches { state.caches }

    public init(configuration: ServiceConfiguration, state: ServiceState, logger: Logger) {
        self.configuration = configuration
        self.state = state
        self.logger = logger
        loader = RevisionLoader(repository: configuration.repository)
    }

    public func run() async throws {
        let stopping = StopFlag()
        Allocator.configure()
        await withGracefulShutdownHandler {
            // A cancelled task (the service group ending for another reason) stops the loop as a graceful shutdown does.
            while !stopping.isSet && !Task.isCancelled {
                await Self.offPool {
                    state.setLooking(true)
                    defer { state.setLooking(false) }
                    iterate(stopping: stopping)
                    // What a pass that ran regions freed goes back to the kernel (a pass that ran none freed little).
                    if ranSinceTrim.take() { Allocator.trim() }
                }
                // The next look: at the poll interval, or sooner when a resync falls due (or a push wakes it).
                let pause = min(configuration.pollInterval, configuration.resyncInterval)
                var waited = 0.0
                while waited < pause && !stopping.isSet && !Task.isCancelled {
                    if state.pendingWake { break }
                    try? await Task.sleep(for: .milliseconds(10))
                    waited += 0.01
                }
            }
        } onGracefulShutdown: {
            stopping.set()
        }
        // Leases are let go at once, so the other reconcilers take the regions without waiting for them to expire.
        configuration.store.close()
    }

    /// Runs `work` on a Dispatch thread and waits for it.
    static func offPool(_ work: @escaping @Sendable () -> Void) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async {
                work()
                continuation.resume()
            }
        }
    }

    /// One look: the branch's revision, then every region that is due.
    func iterate(stopping: StopFlag) {
        let (_, requested) = state.takeWake()
        let revision: String
        let loaded: LoadResult
        var loadSeconds = 0.0
        var digests: (catalog: UInt64, regions: [String: UInt64])
        do {
            if let remote = configuration.remote {
                do {
                    try Repository.openOrCreateBare(at: configuration.repository).fetchBranches(from: remote)
                } catch {
                    // The last fetched revision is still converged (and drift healed) while the remote is away.
                    logger.error("cannot fetch \(remote): \(error)")
                    ServiceMetrics.fetchFailures().increment()
                }
            }
            revision = try Repository(at: configuration.repository).resolveCommit(configuration.branch)
            let loadStart = DispatchTime.now().uptimeNanoseconds
            loaded = try state.model(revision) { try loader.load(revision: revision) }
            loadSeconds = Double(DispatchTime.now().uptimeNanoseconds - loadStart) / 1e9
            digests = loaded.planDigests
            state.remember(digests: digests, of: revision)
        } catch {
            logger.error("cannot read \(configuration.branch) of \(configuration.repository): \(error)")
            return
        }
        if loaded.hasErrors {
            logger.error("revision \(revision.prefix(12)) has errors in its manifests: nothing is applied until they are fixed")
            for region in loaded.model.regions { state.update(region.name) { $0.desiredRevision = revision; $0.lastError = "revision \(revision.prefix(12)) does not validate" } }
            return
        }
        let all = loaded.model.regions.map(\.name).sorted()
        state.keep(only: Set(all))
        caches.drivers.retain(Set(loaded.model.nodes.map(\.address)))
        guard var mine = claim(all) else { return }
        var claimedAt = Date()
        let (rolled, released) = rollOut(revision: revision, loaded: loaded, all: all, mine: mine, stopping: stopping)
        let history = RegionHistory(loop: self, regions: all.filter { mine.contains($0) }, rolledOut: !rolled.isEmpty)
        let now = Date().timeIntervalSince1970
        for region in all {
            guard !stopping.isSet else { return }
            // Shared regions are claimed again between runs too, so a dead reconciler's regions move as soon as their
            // leases run out, not after a whole pass.
            if Date().timeIntervalSince(claimedAt) >= min(1, configuration.pollInterval) {
                guard let claimed = claim(all) else { return }
                mine = claimed
                claimedAt = Date()
            }
            guard mine.contains(region) else { continue }
            // A region the deploy pipeline rolls out converges to the revision released to it; the others to the branch.
            // A region rolled back stays at its rollback until a newer push than the one it was taken back from is
            // released to it.
            var target = revision
            var model = loaded
            let hold = history.hold(region, revision: rolled.contains(region) ? released[region]?.revision : revision)
            if rolled.contains(region) || hold != nil {
                if let hold {
                    target = hold.at
                    state.update(region) { $0.releasedBy = "held: \(hold.description)" }
                } else if let release = released[region], let ahead = history.ahead(region, of: release.revision) {
                    // Applied past its release from the command line: the release moves with it, never back.
                    target = ahead
                    state.update(region) { $0.releasedBy = "\(ahead.prefix(12)), applied past deploy run \(release.run ?? 0) of \(release.revision.prefix(12))" }
                } else if let release = released[region] {
                    target = release.revision
                    state.update(region) { $0.releasedBy = "deploy run \(release.run ?? 0) of \(release.revision.prefix(12))" }
                } else {
                    state.update(region) { $0.desiredRevision = nil; $0.releasedBy = "not released yet: waiting for the deploy pipeline" }
                    continue
                }
                if target != revision {
                    do {
                        model = try state.model(target) { try loader.load(revision: target) }
                    } catch {
                        logger.error("cannot read revision \(target.prefix(12)) released to region \(region): \(error)")
                        continue
                    }
                }
            } else {
                state.update(region) { $0.releasedBy = nil }
            }
            state.update(region) { $0.desiredRevision = target }
            guard let status = state.region(region), !status.paused else { continue }
            // A new revision that changes nothing this region is made from is applied by definition: its next run is
            // its resync (cost follows the change, not the repository). A rolled-out region always runs: the deploy
            // pipeline reads its outcome from the run.
            if !rolled.contains(region), hold == nil, let applied = status.appliedRevision, applied != revision, status.failures == 0, let before = state.digests(of: applied),
               before.catalog == digests.catalog, before.regions[region] == digests.regions[region] {
                state.update(region) { $0.appliedRevision = revision }
                continue
            }
            if let next = status.nextAttemptAt, next > now, !requested.contains(region) { continue }
            if status.stoppedAt == target, !requested.contains(region) { continue }
            let due = status.appliedRevision != target || requested.contains(region)
                || now - (status.lastRunAt ?? 0) >= configuration.resyncInterval
            if due {
                reconcile(region, revision: target, loaded: model, loadSeconds: loadSeconds)
                loadSeconds = 0  // read once for the regions run after it
            }
        }
    }

    /// Rolls the branch's revision out with its push-triggered pipeline, when `ci/` has one: the reconciler holding
    /// the pipeline's first region moves the deploy on (applying the regions it holds itself); every reconciler then
    /// reads which revision each rolled-out region was released. Returns the rolled-out regions and their releases.
    func rollOut(revision: String, loaded: LoadResult, all: [String], mine: Set<String>, stopping: StopFlag) -> (rolled: Set<String>, released: [String: (revision: String, run: Int64?)]) {
        guard let pipeline = DeployRollout.pipeline(in: loaded.model, branch: configuration.branch) else {
            state.deploy = nil
            return ([], [:])
        }
        let rollout = DeployRollout(pipeline: pipeline, revision: revision, loaded: loaded)
        let rolled = Set(rollout.regions)
        let store: any StateBackend
        let leases: any RegionLeases
        do {
            store = try configuration.store.open()
            leases = try configuration.store.leases()
        } catch {
            logger.error("cannot open the state store to roll out \(revision.prefix(12)): \(error)")
            return (rolled, [:])
        }
        let runsHere = (rollout.regions.first ?? all.first).map { mine.contains($0) } ?? false
        var record: PipelineRunRecord?
        if runsHere {
            var runner = PipelineRunner(repository: configuration.repository, stateDirectory: configuration.stateDirectory, leases: leases,
                                        existingState: { try configuration.store.existing() }, openState: { try configuration.store.open() },
                                        environment: configuration.environment)
            runner.sshIdentity = configuration.sshIdentity
            do {
                record = try rollout.advance(store: store, runner: runner, holds: { mine.contains($0) && state.region($0)?.paused != true }, applyHere: { region in
                    state.update(region) { $0.desiredRevision = revision; $0.releasedBy = "deploy of \(revision.prefix(12)), now" }
                    reconcile(region, revision: revision, loaded: loaded)
                    let status = state.region(region)
                    return status?.lastResult == "converged" && status?.appliedRevision == revision ? nil : status?.lastError ?? "not converged"
                }, stopping: { stopping.isSet }, logger: logger)
            } catch {
                logger.error("the deploy of \(revision.prefix(12)) cannot go on: \(error)")
            }
        }
        if record == nil {
            record = (try? store.pipelineRuns(limit: 50))?.first { $0.kind == .deploy && $0.pipeline == pipeline.name }
        }
        if let record {
            let holder = rollout.regions.first.flatMap { state.region($0)?.holder } ?? "nobody yet"
            state.deploy = ServiceState.Deploy(
                pipeline: pipeline.name, revision: record.commit, state: record.verdict == .running ? "running" : record.verdict == .passed ? "passed" : "failed",
                steps: record.steps.map { .init(name: $0.name, status: $0.status.rawValue, message: $0.message) },
                runner: runsHere ? "this reconciler" : holder)
        }
        do {
            return (rolled, try DeployRollout.released(pipeline: pipeline.name, regions: rolled, store: store))
        } catch {
            logger.error("cannot read the deploy history: \(error)")
            return (rolled, [:])
        }
    }

    /// The regions this reconciler works on now (all of them, unless it shares a database with others), noted in each
    /// region's status with who holds the others; nil when the store cannot be reached.
    func claim(_ all: [String]) -> Set<String>? {
        let mine: Set<String>
        do {
            mine = Set(try configuration.store.leases().claim(all))
        } catch {
            logger.error("cannot claim regions in \(configuration.store): \(error)")
            return nil
        }
        let holders = mine.count == all.count ? [:] : ((try? configuration.store.postgres().leaseHolders()) ?? [:])
        for region in all { state.update(region) { $0.holder = mine.contains(region) ? "this reconciler" : holders[region] ?? "nobody yet" } }
        return mine
    }

    /// The first 200 changes of a run's plan for people, each with its provenance: the manifest line a commit since
    /// the region's last applied revision altered (file:line, commit, author, summary), or, for a run at an already
    /// applied revision, that it heals drift.
    func describe(_ plan: Plan, region: String, revision: String, loaded: LoadResult) -> [String] {
        guard !plan.changes.isEmpty else { return [] }
        let base = state.region(region)?.appliedRevision
        var sources: [String: [Provenance]] = [:]
        if let base, base != revision {
            do {
                sources = try ProvenanceFinder.find(plan: plan, loaded: loaded, repository: try Repository(at: configuration.repository), base: base, head: revision)
            } catch {
                logger.warning("cannot find the provenance of region \(region)'s changes: \(error)")
            }
        }
        return plan.changes.prefix(200).map { change in
            let line = "\(change.action.rawValue) \(change.address) on \(change.target) (\(change.reason.rawValue))"
            if let first = sources[change.id.description]?.first {
                let more = (sources[change.id.description]?.count ?? 1) - 1
                return line + " ← \(first.file):\(first.line) in \(first.commit.prefix(12)) by \(first.author): \(first.summary)" + (more > 0 ? " (+\(more) lines)" : "")
            }
            return line + (base == nil ? " ← first run" : base == revision ? " ← drift: no manifest change" : "")
        }
    }

    /// The drift a run's plan heals (`Plan.drift`, as `stacklab drift` lists it): at the revision the region already
    /// converged at (`healing`) a power change or a create heals what was done behind StackLab's back; at a new revision
    /// only an object whose observed state differs from its stamped spec is drift.
    static func drift(_ plan: Plan, healing: Bool) -> Int {
        plan.drift(asApplied: { _ in healing }).count
    }

    /// Converges one region to `revision`.
    func reconcile(_ region: String, revision: String, loaded: LoadResult, loadSeconds: Double = 0) {
        state.update(region) { $0.running = true; $0.lastRunStartedAt = Date().timeIntervalSince1970 }
        ranSinceTrim.set()
        let start = DispatchTime.now().uptimeNanoseconds
        var options = ReconcileRun.Options()
        options.regions = [region]
        options.lockTimeout = 30
        // Never back over what another process applied: a revision older than the region's last is refused (the loop
        // looks at the branch again); a rollback is said as one, by `stacklab rollback` or `ci deploy --rev`.
        options.repository = configuration.repository
        let directory = configuration.stateDirectory
        options.sweepTemporaries = false
        if sweeps.due() {
            if firstSweepDone.isSet {
                let logger = logger
                DispatchQueue.global(qos: .background).async {
                    let removed = caches.nodes.sweep()
                    if !removed.isEmpty { logger.info("removed \(removed.count) temporary files of interrupted writes") }
                }
            } else {
                options.sweepTemporaries = true
                firstSweepDone.set()
            }
        }
        let store = configuration.store
        let healing = state.region(region)?.appliedRevision == revision
        do {
            var reconciler = Reconciler(model: loaded.model, revision: revision, stateDirectory: directory, state: try store.existing(),
                                        environment: configuration.environment)
            reconciler.sshIdentity = configuration.sshIdentity
            reconciler.nodes = caches.nodes
            reconciler.planDigests = state.digests(of: revision)
            reconciler.instancesByRegion = loaded.instancesByRegion
            var run = ReconcileRun(reconciler: reconciler, options: options, leases: try store.leases()) { try store.open() }
            run.caches = caches
            let state = self.state
            run.observedNodes = { region, nodes in state.record(RegionObservation(nodes), region: region) }
            run.observedSnapshots = { region, snapshots in state.record(snapshots: snapshots, region: region) }
            run.observedAccounts = { region, accounts in state.record(accounts: accounts, region: region) }
            let report = try run.run(show: { _ in state.update(region) { $0.lastPlanReadyAt = Date().timeIntervalSince1970 } })
            if let reason = caches.nodes.watchFailure, !toldUnwatched.isSet {
                toldUnwatched.set()
                logger.warning("simulated nodes' files are not watched (\(reason)): every run reads every node's generation again")
            }
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            ServiceMetrics.reconcileDuration(region: region).recordSeconds(seconds)
            let drift = Self.drift(report.plan, healing: healing)
            ServiceMetrics.drift(region: region).record(drift)
            for change in report.plan.changes { ServiceMetrics.changes(action: change.action.rawValue).increment() }
            let failed = report.applied?.outcomes.first { if case .failed = $0.outcome { true } else { false } }
            if let failed, case .failed(let message, let retryable) = failed.outcome {
                throw ReconcileError(.changeFailed, "\(failed.change.id): \(message)", retryable: retryable)
            }
            if let remaining = report.remaining, !remaining.isEmpty || !remaining.errors.isEmpty {
                throw ReconcileError(.notConverged, "not converged after applying: \(remaining.changes.count.counted("change")) \(remaining.changes.count == 1 ? "remains" : "remain")")
            }
            ServiceMetrics.reconcileRuns(region: region, result: "converged").increment()
            // Converged at this revision, whether or not anything was changed: a deploy's step for the region reads it.
            if state.convergenceDue(region, revision: revision) {
                do {
                    try store.open().markConverged(region: region, revision: revision, at: Date().timeIntervalSince1970)
                    state.convergenceRecorded(region, revision: revision)
                } catch {
                    logger.warning("cannot record region \(region) as converged at \(revision.prefix(12)): \(error)")
                }
            }
            let phases = (loadSeconds > 0 ? "load \(String(format: "%.3f", loadSeconds)) s, " : "") + report.phases.description
            // Ring balance for the dashboard: read again only when this run changed a ring (or never was).
            var rings = state.region(region)?.rings ?? []
            if rings.isEmpty || report.plan.changes.contains(where: { $0.address.kind == .ring }) {
                var converged = reconciler
                converged.state = try store.existing()
                rings = ((try? converged.ringPlans(region: region)) ?? []).map {
                    "\($0.ring.name): balance \(String(format: "%.2f", $0.plan.balanceAfter)) %, \($0.plan.state.settled ? "settled" : "settling")"
                }
            }
            if !report.plan.changes.isEmpty { logger.info("region \(region): \(report.plan.changes.count.counted("change")) applied at \(revision.prefix(12))") }
            let lastPlan = describe(report.plan, region: region, revision: revision, loaded: loaded)
            state.update(region) {
                $0.appliedRevision = revision
                $0.drift = drift
                $0.lastRunAt = Date().timeIntervalSince1970
                $0.lastRunSeconds = seconds
                $0.lastRunPhases = phases
                $0.lastResult = "converged"
                $0.lastError = nil
                $0.lastErrorKind = nil
                $0.lastErrorRetryable = nil
                $0.stoppedAt = nil
                $0.failures = 0
                $0.nextAttemptAt = nil
                $0.runs += 1
                $0.running = false
                $0.rings = rings
                if !lastPlan.isEmpty {
                    $0.lastPlan = lastPlan
                    $0.lastPlanRevision = revision
                    $0.lastPlanAt = Date().timeIntervalSince1970
                }
            }
        } catch {
            // Retryable failures back off exponentially; a terminal one (a refused plan, manifests that cannot be planned)
            // is reported at once and not run again at this revision: trying again cannot help.
            let failure = ReconcileError(classifying: error)
            ServiceMetrics.reconcileRuns(region: region, result: failure.isRetryable ? "failed" : "stopped").increment()
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            state.update(region) {
                $0.failures += 1
                if failure.isRetryable {
                    $0.nextAttemptAt = Date().timeIntervalSince1970 + min(configuration.maxBackoff, pow(2, Double($0.failures)))
                    $0.stoppedAt = nil
                } else {
                    $0.nextAttemptAt = nil
                    $0.stoppedAt = revision
                }
                $0.lastRunAt = Date().timeIntervalSince1970
                $0.lastRunSeconds = seconds
                $0.lastResult = failure.isRetryable ? "failed" : "stopped"
                $0.lastError = failure.message
                $0.lastErrorKind = failure.kind.rawValue
                $0.lastErrorRetryable = failure.isRetryable
                $0.runs += 1
                $0.running = false
            }
            if failure.isRetryable {
                logger.error("region \(region) failed (\(failure.kind.rawValue), attempt \(state.region(region)?.failures ?? 0), backing off): \(failure)")
            } else {
                logger.error("region \(region) stopped at \(revision.prefix(12)) (\(failure.kind.rawValue); not retried until a new revision or a sync): \(failure)")
            }
        }
    }
}

/// What each region last applied, read once per pass from the runs every reconciler and the CLI record: a region a
/// rollback holds stays there until a newer push than the revision it was taken back from, and one applied past its
/// deploy release from the command line stays at what was applied.
struct RegionHistory {
    private var last: [String: RunRecord] = [:]
    private var repository: Repository?
    private let loop: ReconcileLoop

    init(loop: ReconcileLoop, regions: [String], rolledOut: Bool) {
        self.loop = loop
        guard !regions.isEmpty else { return }
        do {
            guard let store = try loop.historyStore.store(loop.configuration.store) else { return }
            last = try store.lastApplied(regions: regions)
            if rolledOut || last.values.contains(where: { !$0.undoes.isEmpty }) { repository = try Repository(at: loop.configuration.repository) }
        } catch {
            // The run itself reads the same history and refuses what a hold forbids: nothing goes back unnoticed.
            loop.logger.error("cannot read which regions a rollback holds: \(error)")
        }
    }

    /// The hold on `region` if it were moved to `revision`; nil when it is not held (or `revision` is newer).
    func hold(_ region: String, revision: String?) -> ReconcileRun.Hold? {
        guard let repository, let revision else { return nil }
        do {
            return try ReconcileRun.Hold.of(region, last: last[region], revision: revision, repository: repository)
        } catch {
            loop.logger.error("cannot tell whether region \(region) is held at a rollback: \(error)")
            return nil
        }
    }

    /// The revision `region` last applied when it is strictly newer than `release` (someone applied a newer push with
    /// the command line); nil otherwise.
    func ahead(_ region: String, of release: String) -> String? {
        guard let repository, let applied = last[region]?.revision, applied != release else { return nil }
        return (try? repository.contains(applied, ancestor: release)) == true ? applied : nil
    }
}

/// The state store the loop reads run history from: opened on first use and kept (a store that does not exist yet is
/// looked for again next time).
final class HistoryStore: Sendable {
    private let opened = Mutex<(any StateBackend)?>(nil)

    func store(_ location: StateLocation) throws -> (any StateBackend)? {
        if let store = opened.withLock({ $0 }) { return store }
        let store = try location.existing()
        opened.withLock { $0 = store }
        return store
    }
}

/// A flag set from any thread, read (or taken: read and cleared) from any thread.
final class StopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.withLock { value } }
    func set() { lock.withLock { value = true } }
    /// Whether it was set, clearing it.
    func take() -> Bool { lock.withLock { defer { value = false }; return value } }
}

