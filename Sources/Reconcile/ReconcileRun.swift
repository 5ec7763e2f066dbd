import Foundation
import Git
import Drivers
import Manifests
import Planning
import State

/// One reconcile of some regions, the workflow every caller shares (the CLI's apply, CI pipelines, the service):
/// lock → observe → stale check → plan → guards → approve → apply → verify → report. Each step is a method below,
/// in that order.
public struct ReconcileRun {
    /// What the caller asks for.
    public struct Options: Sendable {
        /// Regions (all when empty, including regions that left the manifests).
        public var regions: [String] = []
        /// Only these addresses (and their dependencies).
        public var targets: [String] = []
        /// Let a plan delete more than a region's `maxDeleteShare`.
        public var allowMassDelete = false
        /// Let a plan destroy disks of instances that stay in the manifests (moves, image changes).
        public var allowReplace = false
        /// Report orphans instead of deleting them.
        public var keepOrphans = false
        /// Seconds to wait for another run holding a region.
        public var lockTimeout: Double = 0
        /// Nodes changed at once.
        public var parallelism = 8
        /// Remove the temporary files of simulated-node writes whose process died (it lists every node's directory):
        /// true or false, or nil to do it when a run was interrupted since the last sweep (only a process that died
        /// mid-apply leaves them). A long-running caller does it now and then.
        public var sweepTemporaries: Bool?
        /// The manifests repository the revision comes from: with it, a run refuses a revision that is a strict ancestor
        /// of one its regions last applied (going back is a rollback, said as one), unless `allowOlder`.
        public var repository: String?
        /// Apply an older revision on purpose (`rollback`, `ci deploy --rev OLD`, a gate putting staging back).
        public var allowOlder = false

        /// Default options.
        public init() {}
    }

    /// Why a run did not apply its plan.
    public enum Refusal: Error, CustomStringConvertible {
        case planHasErrors(Int)
        case planEdited
        case otherManifests
        case stale([String])
        case massDelete([String])
        case destroysData([String])
        case notApproved
        /// Regions whose last applied revision contains the one planned (region, applied revision).
        case olderRevision(revision: String, newer: [(region: String, applied: String)])
        /// Regions held at a rollback that the planned revision does not pass (region, held at, taken back from).
        case held(revision: String, holds: [Hold])

        public var description: String {
            switch self {
            case .planHasErrors(let count):
                "the plan has \(count) error\(count == 1 ? "" : "s") (listed above): nothing was applied"
            case .planEdited:
                "the saved plan was changed after it was made (its digest does not match): run 'stacklab plan --out' again"
            case .otherManifests:
                "the saved plan was made from other manifests than the ones loaded now: run 'stacklab plan --out' again, or apply with --rev set to the plan's revision"
            case .stale(let nodes):
                "the plan is stale: \(nodes.joined(separator: ", ")) changed since it was made; run 'stacklab plan' again"
            case .massDelete(let messages):
                messages.joined(separator: "\n       ") + "\n  hint: check the manifests; pass --allow-mass-delete if this is really meant"
            case .destroysData(let what):
                "the plan destroys data of instances that stay in the manifests:\n         " + what.joined(separator: "\n         ")
                    + "\n  hint: a replacement (an image change) starts from a fresh disk; pass --allow-replace to accept losing the old one, or keep the image"
            case .notApproved:
                "apply cancelled"
            case .olderRevision(let revision, let newer):
                "\(String(revision.prefix(12))) is older than what " + newer.map { "region \($0.region) last applied (\(String($0.applied.prefix(12))))" }.joined(separator: " and ")
                    + ": nothing was applied (the same revision heals drift; a newer one moves ahead)"
                    + "\n  hint: to go back on purpose, run stacklab rollback REGION --to \(String(revision.prefix(12))) (or apply --allow-older)"
            case .held(let revision, let holds):
                holds.map(\.description).joined(separator: "; ") + ": \(String(revision.prefix(12))) is not newer, nothing was applied"
                    + "\n  hint: push a newer revision to release the hold, or apply --allow-older to move the region now"
            }
        }
    }

    /// What a run did.
    public struct Report: Sendable {
        /// The plan applied (or refused).
        public var plan: Plan
        /// The applier's report; nil when nothing was applied (no changes).
        public var applied: Applier.Report?
        /// What a plan made after the apply still wants (empty when converged); nil when not verified.
        public var remaining: Plan?
        /// A problem met while verifying (the apply itself stands).
        public var verifyError: String?
        /// What the start cleaned up after processes that died.
        public var recovery = Reconciler.Recovery()
        /// Seconds spent in each step, in the order run.
        public var phases = Phases()
    }

    /// Seconds spent in each step of a run, in the order they ran, and the process's peak resident memory at the end of
    /// each: where a slow or large run spends its time and memory. The peak is read (`/proc/self/status`, tens of
    /// microseconds in a large process) at the end of the first step and of every step that took `peakReadSeconds` or
    /// more; a shorter step carries the last reading, so growth in it shows at the next step read.
    public struct Phases: Sendable, CustomStringConvertible {
        public private(set) var steps: [(name: String, seconds: Double, peakMB: Double)] = []
        private var mark = DispatchTime.now().uptimeNanoseconds
        /// The last peak read (nil before the first step).
        private var lastPeak: Double?
        /// Steps shorter than this carry the last peak read.
        static let peakReadSeconds = 0.002

        /// Starts timing now.
        public init() {}

        /// Ends the step running since the last mark.
        mutating func end(_ name: String) {
            let now = DispatchTime.now().uptimeNanoseconds
            let seconds = Double(now - mark) / 1e9
            let peak = peak(after: seconds)
            steps.append((name, seconds, peak))
            mark = now
        }

        /// Ends the step running since the last mark, adding its time to an earlier step of that name (a step done in
        /// batches).
        mutating func endAdding(_ name: String) {
            guard let index = steps.firstIndex(where: { $0.name == name }) else { return end(name) }
            let now = DispatchTime.now().uptimeNanoseconds
            let seconds = Double(now - mark) / 1e9
            steps[index].seconds += seconds
            steps[index].peakMB = peak(after: seconds)
            mark = now
        }

        /// The peak after a step of `seconds`: read, or the last reading for a short step.
        private mutating func peak(after seconds: Double) -> Double {
            if let lastPeak, seconds < Self.peakReadSeconds { return lastPeak }
            let peak = ResidentMemory.peakMB()
            lastPeak = peak
            return peak
        }

        /// "lock 0.0012 s, recover 0.0020 s, …" (four places under 0.1 s; with the peak resident memory where it grew in the step).
        public var description: String {
            var last = 0.0
            return steps.map { step in
                defer { last = step.peakMB }
                let memory = step.peakMB > last + 1 ? String(format: " (peak %.0f MB)", step.peakMB) : ""
                return "\(step.name) \(String(format: step.seconds < 0.1 ? "%.4f" : "%.3f", step.seconds)) s" + memory
            }.joined(separator: ", ")
        }
    }

    public let reconciler: Reconciler
    public let options: Options
    /// What a long-running caller keeps between runs (drivers, observations of unchanged nodes, ring builders); nil:
    /// every node is opened and observed.
    public var caches: RunCaches?
    let leases: any RegionLeases
    let openState: () throws -> any StateBackend

    /// A run over `reconciler`'s model; `openState` opens (creating if needed) the state store when the run is about to
    /// change something. Regions are held through `leases`, which belong to that store (file locks beside the embedded
    /// store, row leases in PostgreSQL).
    public init(reconciler: Reconciler, options: Options, leases: any RegionLeases, openState: @escaping () throws -> any StateBackend) {
        var reconciler = reconciler
        reconciler.options.keepOrphans = options.keepOrphans
        self.reconciler = reconciler
        self.options = options
        self.leases = leases
        self.openState = openState
    }

    /// Called with each region's nodes as observed, before it is planned and again by the verify after an apply (the
    /// service keeps them for its pages, which never ask a node themselves). A region whose plan came from the caches'
    /// memo was not observed: its nodes hold what they held when it was.
    public var observedNodes: (@Sendable (String, [ObservedNode]) -> Void)?
    /// Called with the snapshots in each planned region's object store, before it is planned and again by the verify.
    public var observedSnapshots: (@Sendable (String, [ObservedSnapshot]) -> Void)?
    /// Called with the tenants' accounts in each planned region's object store, before it is planned and again by the verify.
    public var observedAccounts: (@Sendable (String, [ObservedAccount]) -> Void)?

    /// Runs: plans (or checks that `saved` is still fresh), hands the plan to `show`, checks the guards, asks `approve`
    /// (false stops the run), applies and verifies. Throws `Refusal` when a guard stops it, `ReconcileError` when a
    /// node or the state cannot be read.
    public func run(saved: Plan? = nil, progress: (@Sendable (Applier.ProgressEvent) -> Void)? = nil, show: (Plan) -> Void = { _ in },
                    approve: (Plan) throws -> Bool = { _ in true }) throws -> Report {
        if let saved { try checkIntegrity(saved) }
        var locks: [AnyObject] = []
        defer { withExtendedLifetime(locks) {} }
        var request = PlanRequest(saved.map { .saved($0) } ?? .normal, regions: options.regions)
        request.targets = options.targets
        request.caches = caches
        request.sweepTemporaries = options.sweepTemporaries
        request.hold = { locks = try lock($0) }
        request.observed = observedNodes
        request.observedSnapshots = observedSnapshots
        request.observedAccounts = observedAccounts
        let planned = try reconciler.plan(request)
        let plan = planned.plan
        var phases = planned.reuse.phases
        let regions = planned.regions
        try settleMeters(plan: plan, regions: regions)
        phases.end("settle")
        show(plan)
        try guardPlan(plan, managed: planned.managed)
        let undoes = try history(regions: plan.isEmpty ? [] : regions)
        guard !plan.isEmpty else { return Report(plan: plan, recovery: planned.recovery, phases: phases) }
        guard try approve(plan) else { throw Refusal.notApproved }
        let state = try openState()
        try state.rememberNodes(planned.endpoints)
        var applier = Applier(parallelism: options.parallelism, progress: progress)
        applier.undoes = undoes
        applier.objectStores = reconciler.objectStores
        // Each node is observed as its last change is done and then let go: the verify plans from those observations
        // (a long-running caller keeps them in memory; a simulated node also saves its own beside its host file).
        let settled = caches?.observations
        applier.settled = settled
        applier.disconnectSettled = true
        let applied = try applier.apply(plan, drivers: planned.drivers, state: state)
        Allocator.trim()  // what the apply freed goes back before the verify plans again
        phases.end("apply")
        var report = Report(plan: plan, applied: applied, recovery: planned.recovery)
        if applied.succeeded && saved == nil { verify(&report, regions: regions, drivers: planned.drivers, state: state) }
        phases.end("verify")
        report.phases = phases
        return report
    }

    /// Where the run stands against each region's history: refuses a revision that is a strict ancestor of one a region
    /// last applied (a reconciler that read an older push than another process applied never undoes it), and one a
    /// rollback holds the region below; going back is a rollback, said as one (`allowOlder`). Returns what the run
    /// takes back on purpose, for its record: region → the revision the region is held below.
    func history(regions: [String]) throws -> [String: String] {
        guard let repository = options.repository, let revision = reconciler.revision, !regions.isEmpty,
              let last = try reconciler.state?.lastApplied(regions: regions), !last.isEmpty else { return [:] }
        let repo = try Repository(at: repository)
        var undoes: [String: String] = [:], newer: [(region: String, applied: String)] = [], holds: [Hold] = []
        for (region, run) in last.sorted(by: { $0.key < $1.key }) {
            guard let applied = run.revision else { continue }
            let heldBelow = run.undoes[region]
            if revision == applied {
                undoes[region] = heldBelow  // healing drift at a held release keeps the hold
            } else if try repo.contains(applied, ancestor: revision) {
                newer.append((region, applied))
                undoes[region] = heldBelow ?? applied
            } else if let hold = try Hold.of(region, last: run, revision: revision, repository: repo) {
                holds.append(hold)
                undoes[region] = hold.from
            }
        }
        if !options.allowOlder {
            guard newer.isEmpty else { throw Refusal.olderRevision(revision: revision, newer: newer) }
            guard holds.isEmpty else { throw Refusal.held(revision: revision, holds: holds) }
        }
        return undoes
    }

    /// A region a rollback holds at an older revision until a newer push than the one it was taken back from.
    public struct Hold: Sendable, Equatable, CustomStringConvertible {
        public var region: String
        /// The revision the region is held at, and the one it was taken back from.
        public var at: String
        public var from: String

        public var description: String {
            "region \(region) was rolled back to \(String(at.prefix(12))) from \(String(from.prefix(12))) and stays there until a newer push"
        }

        /// The hold `last` (the region's last applied run) puts on `revision` of `repository`: nil when `revision` is
        /// newer than what the region was taken back from (or the region is not held).
        public static func of(_ region: String, last: RunRecord?, revision: String, repository: Repository) throws -> Hold? {
            guard let last, let at = last.revision, let from = last.undoes[region], at != revision,
                  try repository.contains(from, ancestor: revision) else { return nil }
            return Hold(region: region, at: at, from: from)
        }
    }
}
