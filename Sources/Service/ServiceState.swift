import Billing
import Foundation
import Manifests
import Planning
import Reconcile

/// What the service knows of each region and of its sources of work, shared by the reconcile loop and the HTTP
/// handlers (one lock; every read returns a copy).
public final class ServiceState: @unchecked Sendable {
    /// The answer to `POST /api/regions/:region/:action`: what was asked, when, and the region as it stood then; a
    /// client that waited for the run it started (`stacklab region sync --wait`) puts the region after it in `state`.
    public struct RegionRequest: Sendable, Codable {
        public var region: String
        public var action: String
        public var requestedAt: Double
        public var state: Region?
        public var waited: Bool?

        public init(region: String, action: String, requestedAt: Double, state: Region?, waited: Bool? = nil) {
            self.region = region
            self.action = action
            self.requestedAt = requestedAt
            self.state = state
            self.waited = waited
        }
    }

    /// One region as the service sees it.
    public struct Region: Sendable, Codable {
        public var region: String
        /// The revision the branch points at, and the one last converged here.
        public var desiredRevision: String?
        public var appliedRevision: String?
        /// Drift the last run healed (`Plan.drift`): owned objects changed behind StackLab's back. Changes a new
        /// revision asks for are not drift (they are counted in `stacklab_changes_total`).
        public var drift = 0
        public var lastRunAt: Double?
        public var lastRunSeconds: Double?
        /// converged, failed (retried after a backoff) or stopped (a terminal error: not retried at this revision).
        public var lastResult: String?
        public var lastError: String?
        /// What kind of failure the last error was (`ReconcileError.Kind`), and whether it is retried.
        public var lastErrorKind: String?
        public var lastErrorRetryable: Bool?
        /// The revision a terminal error stopped the region at: not run again at it until a new revision is released
        /// to the region or an operator asks for a sync.
        public var stoppedAt: String?
        public var paused = false
        /// Failures in a row, and when the next attempt may start (exponential backoff).
        public var failures = 0
        public var nextAttemptAt: Double?
        public var runs = 0
        public var running = false
        /// When the last run started, and when its plan was ready (seconds since the epoch).
        public var lastRunStartedAt: Double?
        public var lastPlanReadyAt: Double?
        /// Where the last run spent its time: reading the revision, then each step of the run ("load 0.051 s, select
        /// 0.002 s, …").
        public var lastRunPhases: String?
        /// What the last run that changed something planned (at most 200 lines: action, address, target, reason, and
        /// the manifest line and commit behind it, or that it healed drift), at which revision and when.
        public var lastPlan: [String] = []
        public var lastPlanRevision: String?
        public var lastPlanAt: Double?
        /// Each ring's balance and whether it settled, as of the last run.
        public var rings: [String] = []
        /// Who applies the region: this reconciler, or (sharing a database) the lease holder.
        public var holder: String?
        /// For a region the deploy pipeline rolls out: the deploy that released `desiredRevision` to it, or why it
        /// waits ("not released yet"); nil for a region that follows the branch directly.
        public var releasedBy: String?
    }

    /// The deploy pipeline's latest run as this service sees it: which revision, and each step's state.
    public struct Deploy: Sendable, Codable {
        public var pipeline: String
        public var revision: String
        /// running, passed or failed.
        public var state: String
        public var steps: [Step]
        /// Who runs it: this reconciler, or (sharing a database) the holder of the pipeline's first region.
        public var runner: String

        public struct Step: Sendable, Codable {
            public var name: String
            public var status: String
            public var message: String
        }
    }

    private let lock = NSLock()
    private var regions: [String: Region] = [:]
    private var observations: [String: RegionObservation] = [:]
    /// The models of the last few revisions loaded, newest last (regions a deploy has not reached yet stay at an
    /// older revision, so the loop needs more than one).
    private var models: [(revision: String, loaded: LoadResult)] = []
    private var deployState: Deploy?
    private var priceBookCache: (revision: String?, book: PriceBook)?
    private var digestsByRevision: [String: (catalog: UInt64, regions: [String: UInt64])] = [:]
    private var wake = false
    private var looking = false
    private var syncRequested = Set<String>()
    private var seenDeliveries: [String] = []
    private var convergenceRecorded: [String: (revision: String, at: Double)] = [:]
    public private(set) var webhookAccepted = 0
    /// When the last accepted push notification arrived (seconds since the epoch).
    public private(set) var lastDeliveryAt: Double?
    public private(set) var webhookRejected = 0
    public let startedAt = Date().timeIntervalSince1970

    /// An empty state for the nodes of `stateDirectory`, whose runs keep the decoded state of at most `cacheRegions`
    /// regions (every region's when nil).
    public init(stateDirectory: String, cacheRegions: Int? = nil, environment: RunEnvironment = RunEnvironment()) {
        caches = RunCaches(stateDirectory: stateDirectory, regions: cacheRegions, environment: environment)
    }

    /// Models kept: the branch's and one other (a region the deploy pipeline has not rolled out to yet converges to the
    /// revision released to it). Each holds its own columns (tens of megabytes at 100,000 instances); a third revision
    /// asked for is loaded again, through the loader's caches (only files that differ from the last load are decoded).
    static let keptModels = 2

    /// The model of `revision`, loaded once per revision (the loop and the dashboard share the last `keptModels`).
    public func model(_ revision: String, load: () throws -> LoadResult) rethrows -> LoadResult {
        if let cached = lock.withLock({ models.first { $0.revision == revision } }) { return cached.loaded }
        let loaded = try load()
        let dropped = lock.withLock {
            var dropped = models.filter { $0.revision == revision }
            models.removeAll { $0.revision == revision }
            models.append((revision, loaded))
            if models.count > Self.keptModels {
                dropped += models.prefix(models.count - Self.keptModels)
                models.removeFirst(models.count - Self.keptModels)
            }
            return dropped
        }
        // Freeing a model of 100,000 instances takes tens of milliseconds: not on the way from a push to its plan.
        if !dropped.isEmpty { DispatchQueue.global(qos: .utility).async { withExtendedLifetime(dropped) {} } }
        return loaded
    }

    /// The price lists' history up to `revision` (the statements' price book), read once for the revision last asked for.
    public func priceBook(_ revision: String?, read: () -> PriceBook) -> PriceBook {
        if let cached = lock.withLock({ priceBookCache }), cached.revision == revision { return cached.book }
        let book = read()
        lock.withLock { priceBookCache = (revision, book) }
        return book
    }

    /// The revision the loop loaded last (the branch's), and its model.
    public var loadedModel: (revision: String, loaded: LoadResult)? { lock.withLock { models.last } }

    /// The deploy pipeline's latest run, when the branch has a push-triggered pipeline.
    public var deploy: Deploy? {
        get { lock.withLock { deployState } }
        set { lock.withLock { deployState = newValue } }
    }

    /// The last counters read from each running instance of the regions held here.
    public let usage = UsageBook()
    /// What runs keep between them (node drivers, observations of unchanged nodes, ring builders); the dashboard
    /// observes through it too.
    public let caches: RunCaches

    /// Every region, by name.
    public var snapshot: [Region] { snapshot(only: nil) }

    /// The entries of the regions `only` names (all when nil), by name: a status poll for one region copies one entry.
    public func snapshot(only: Set<String>?) -> [Region] {
        lock.withLock {
            guard let only else { return regions.values.sorted { $0.region < $1.region } }
            return only.compactMap { regions[$0] }.sorted { $0.region < $1.region }
        }
    }

    public func region(_ name: String) -> Region? { lock.withLock { regions[name] } }

    /// What the loop last saw of `region` (nil before its first run).
    public func observation(_ region: String) -> RegionObservation? { lock.withLock { observations[region] } }

    /// Keeps what a run of `region` observed.
    public func record(_ observation: RegionObservation, region: String) {
        lock.withLock {
            var observation = observation
            observation.snapshots = observations[region]?.snapshots ?? [:]  // listed apart, when the region is planned
            observation.accounts = observations[region]?.accounts ?? [:]
            observations[region] = observation
        }
    }

    /// Keeps the tenants' accounts a run of `region` observed in its object store.
    public func record(accounts: [ObservedAccount], region: String) {
        lock.withLock {
            var observation = observations[region] ?? RegionObservation([])
            observation.accounts = Dictionary(accounts.map { ($0.tenant, $0) }, uniquingKeysWith: { first, _ in first })
            observations[region] = observation
        }
    }

    /// Keeps the snapshots a run of `region` listed in its object store.
    public func record(snapshots: [ObservedSnapshot], region: String) {
        lock.withLock {
            var observation = observations[region] ?? RegionObservation([])
            observation.snapshots = Dictionary(grouping: snapshots, by: \.volume).mapValues { $0.sorted { ($0.created, $0.name) < ($1.created, $1.name) } }
            observations[region] = observation
        }
    }

    /// The plan digests of a revision seen before (what each region is made from).
    public func digests(of revision: String) -> (catalog: UInt64, regions: [String: UInt64])? { lock.withLock { digestsByRevision[revision] } }

    public func remember(digests: (catalog: UInt64, regions: [String: UInt64]), of revision: String) {
        lock.withLock {
            if digestsByRevision.count > 64 { digestsByRevision.removeAll() }
            digestsByRevision[revision] = digests
        }
    }

    /// Updates (or creates) a region's entry.
    public func update(_ name: String, _ change: (inout Region) -> Void) {
        lock.withLock {
            var entry = regions[name] ?? Region(region: name)
            change(&entry)
            regions[name] = entry
        }
    }

    /// Forgets regions no longer known.
    public func keep(only names: Set<String>) {
        lock.withLock { regions = regions.filter { names.contains($0.key) } }
    }

    /// Asks the loop to look now (a push arrived, or `stacklab sync`).
    public func notify(sync region: String? = nil) {
        lock.withLock {
            wake = true
            if let region { syncRequested.insert(region) }
        }
    }

    /// Whether a look was asked for and not yet taken.
    public var pendingWake: Bool { lock.withLock { wake } }

    /// Whether the loop is looking (or was asked to): background reading of instance counters waits meanwhile, so
    /// that a push is loaded and planned with both cores and their caches.
    public var loopBusy: Bool { lock.withLock { wake || looking } }

    /// Marks the loop as looking, or done looking.
    public func setLooking(_ value: Bool) { lock.withLock { looking = value } }

    /// Whether the loop was asked to look, clearing the request; and the regions asked to sync.
    public func takeWake() -> (wake: Bool, sync: Set<String>) {
        lock.withLock {
            defer { wake = false; syncRequested = [] }
            return (wake, syncRequested)
        }
    }

    /// Whether `region`'s convergence at `revision` should be recorded in the store now: not yet recorded at that
    /// revision by this process, or last recorded more than a minute ago (another holder may have recorded another
    /// revision since). A resync every few seconds does not open the store each time.
    func convergenceDue(_ region: String, revision: String) -> Bool {
        lock.withLock {
            guard let last = convergenceRecorded[region], last.revision == revision else { return true }
            return Date().timeIntervalSince1970 - last.at > 60
        }
    }

    /// Notes that `region`'s convergence at `revision` was recorded.
    func convergenceRecorded(_ region: String, revision: String) {
        lock.withLock { convergenceRecorded[region] = (revision, Date().timeIntervalSince1970) }
    }

    /// Records a webhook delivery id; false when it was seen before (a replay).
    public func firstDelivery(_ id: String) -> Bool {
        lock.withLock {
            guard !seenDeliveries.contains(id) else { return false }
            seenDeliveries.append(id)
            if seenDeliveries.count > 10_000 { seenDeliveries.removeFirst(seenDeliveries.count - 10_000) }
            return true
        }
    }

    public func countWebhook(accepted: Bool) {
        lock.withLock {
            if accepted {
                webhookAccepted += 1
                lastDeliveryAt = Date().timeIntervalSince1970
            } else {
                webhookRejected += 1
            }
        }
    }
}

/// What the loop last saw of a region's instances (its pages show this, and never ask a node themselves).
public struct RegionObservation: Sendable {
    /// One instance's domain: its node, state and fixed IP.
    public struct Placement: Sendable {
        public var node: String
        public var state: ObservedDomain.State
        public var ip: IPv4Address?
    }

    public var at: Double
    public var nodes: Int
    public var instances: [Address: Placement]
    /// Each instance's public-domain port, as the region's load-balancer nodes serve it.
    public var publicPorts: [Address: Int] = [:]
    /// Each FloatingIP's public address, as its node's ruleset binds it.
    public var floatingIPs: [Address: IPv4Address] = [:]
    /// Each volume's snapshots in the region's object store, oldest first, as last listed.
    public var snapshots: [TenantKey: [ObservedSnapshot]] = [:]
    /// Each tenant's account in the region's object store (where StackLab is reseller), as last observed.
    public var accounts: [String: ObservedAccount] = [:]

    /// A summary of `observed`, as of now.
    public init(_ observed: [ObservedNode]) {
        at = Date().timeIntervalSince1970
        nodes = observed.count
        var instances: [Address: Placement] = [:]
        for node in observed {
            for domain in node.domains { if let address = domain.address { instances[address] = Placement(node: node.address.name, state: domain.state, ip: domain.ip) } }
            for (owner, port) in node.proxy.flatMap(ProxyConfig.Installed.init(parsing:))?.ports ?? [:] where owner.address.kind == .instance {
                publicPorts[owner.address] = port
            }
            for binding in node.firewall?.rules.compactMap(\.floatingBinding) ?? [] { floatingIPs[binding.floatingIP] = binding.ip }
        }
        self.instances = instances
    }
}

/// The service's secrets (the operator's bearer token, an optional read-only token, and the webhook secret), replaced as
/// a whole when the service reloads its configuration (SIGHUP); each replacement is a new generation, which ends the
/// browser sessions made under the old one.
public final class ServiceSecrets: @unchecked Sendable {  // values behind `lock`
    private let lock = NSLock()
    private var values: (token: String, readToken: String?, webhookSecret: String, generation: Int)

    public init(token: String, readToken: String? = nil, webhookSecret: String) {
        values = (token, readToken, webhookSecret, 0)
    }

    public var token: String { lock.withLock { values.token } }
    public var readToken: String? { lock.withLock { values.readToken } }
    public var webhookSecret: String { lock.withLock { values.webhookSecret } }
    public var generation: Int { lock.withLock { values.generation } }

    public func replace(token: String, readToken: String?, webhookSecret: String) {
        lock.withLock { values = (token, readToken, webhookSecret, values.generation + 1) }
    }
}
