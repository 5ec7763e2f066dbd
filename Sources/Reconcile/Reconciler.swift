import Dispatch
import Foundation
import Drivers
import Manifests
import Parallel
import Planning
import SimulatedNodes
import State
import Synchronization

/// Observe → plan for the regions of a loaded revision: which nodes to reach (those in the manifests, and those
/// that left them but still hold StackLab's objects), their drivers, their observation, and the plan.
public struct Reconciler: Sendable {
    /// The desired model (already validated).
    public var model: DesiredModel
    /// The revision it came from.
    public var revision: String?
    /// The state directory: where the default node source keeps simulated nodes, and where crashed writes are swept.
    public var stateDirectory: String
    /// What earlier runs kept; nil when there is none yet (nothing was ever applied).
    public var state: (any StateBackend)?
    /// How the plan treats orphans.
    public var options: Planner.Options
    /// Where node drivers come from (default: `LocalNodes` of the state directory; a long-running reconciler keeps
    /// one that watches generations).
    public var nodes: any NodeSource
    /// The model's plan digests, when the caller has them (a long-running reconciler computes them once a revision);
    /// nil: computed when a plan needs them.
    public var planDigests: (catalog: UInt64, regions: [String: UInt64])?
    /// Each region's instances as positions in `model.instances` (`LoadResult.instancesByRegion`, of this very model),
    /// when the caller has them: a region's slice without a pass over every instance.
    public var instancesByRegion: [String: [Int]]?
    /// `planDigests`, or computed from the model.
    var digests: (catalog: UInt64, regions: [String: UInt64]) { planDigests ?? model.planDigests }
    /// The SSH key for production nodes (`--identity`; nil: the node source's default).
    public var sshIdentity: String?
    /// The regions' object stores (volume snapshots).
    public var objectStores: ObjectStores
    /// Nodes whose observations a plan holds at once: regions are observed and planned in batches of about this many
    /// nodes, each batch's observations let go once it is planned.
    public var batchNodes = 1_000

    /// Creates a reconciler; `environment` is what the program read from its environment (production nodes' SSH key
    /// and libvirt socket, object-store keys).
    public init(model: DesiredModel, revision: String?, stateDirectory: String, state: (any StateBackend)?, options: Planner.Options = .init(),
                environment: RunEnvironment = RunEnvironment()) {
        self.model = model
        self.revision = revision
        self.stateDirectory = stateDirectory
        self.state = state
        self.options = options
        self.objectStores = ObjectStores(model: model, credentials: environment.credentials)
        nodes = LocalNodes(stateDirectory: stateDirectory, identity: environment.sshIdentity, socketSetting: environment.libvirtSocket)
    }

    /// Nodes that left the manifests but that StackLab changed (the state store's inventory, and the nodes the node
    /// source holds); those of `regions` only, when given. `kept`: a long-running caller's declared nodes
    /// (`RunCaches.declaredNodes`), made again only for another column of nodes.
    public func orphanEndpoints(in regions: Set<String>? = nil, kept: DeclaredNodes? = nil) throws -> [NodeEndpoint] {
        // Every declared node's address will do for those of `regions`: only their nodes are found below.
        let declared = kept?.addresses(of: model.nodes)
            ?? Set(model.nodes.lazy.filter { regions?.contains($0.region ?? "") ?? true }.map(\.address))
        var found: [Address: NodeEndpoint] = [:]
        do {
            if let state, let kept {
                for endpoint in try kept.undeclared(in: state, regions: regions, of: model.nodes) { found[endpoint.address] = endpoint }
            } else {
                for endpoint in try state?.knownNodes(in: regions) ?? [] where !declared.contains(endpoint.address) { found[endpoint.address] = endpoint }
            }
        } catch {
            throw ReconcileError(.stateUnavailable, "cannot read the node inventory: \(error)", cause: error)
        }
        let held = nodes.heldNodes(in: regions)
        for endpoint in kept?.undeclared(held, of: model.nodes) ?? held.filter({ !declared.contains($0.address) }) where found[endpoint.address] == nil {
            found[endpoint.address] = endpoint
        }
        return found.values.sorted { $0.address < $1.address }
    }

    /// The regions named (when empty: every declared region, and every region that left the manifests but still
    /// has nodes StackLab changed). An unknown name is an error.
    public func regions(_ names: [String]) throws -> [String] {
        try selection(names).regions
    }

    /// Every node of `regions` to observe: the manifests' and the orphans'.
    public func endpoints(for regions: [String]) throws -> [NodeEndpoint] {
        try endpoints(for: regions, orphans: orphanEndpoints())
    }

    /// The regions named (as `regions(_:)`) and every node of them to observe, looking for orphans once (`kept`: see
    /// `orphanEndpoints`).
    public func selection(_ names: [String], kept: DeclaredNodes? = nil) throws -> (regions: [String], endpoints: [NodeEndpoint]) {
        // Named regions: only their orphans are looked for (a region that left the manifests is named by its orphans).
        let orphans = try orphanEndpoints(in: names.isEmpty ? nil : Set(names), kept: kept)
        let known = Set(model.regions.map(\.name)).union(orphans.compactMap(\.address.region))
        if let unknown = names.first(where: { !known.contains($0) }) {
            throw ReconcileError(.invalid, "region '\(unknown)' is not declared; regions are: \(known.sorted().joined(separator: ", "))")
        }
        let regions = names.isEmpty ? known.sorted() : Array(Set(names)).sorted()
        return (regions, endpoints(for: regions, orphans: orphans, kept: kept))
    }

    private func endpoints(for regions: [String], orphans: [NodeEndpoint], kept: DeclaredNodes? = nil) -> [NodeEndpoint] {
        let wanted = Set(regions)
        let declared = kept?.endpoints(of: model.nodes, in: regions) ?? model.nodes.filter { wanted.contains($0.region ?? "") }.map(NodeEndpoint.init)
        let orphans = orphans.filter { wanted.contains($0.address.region ?? "") }
        // No orphans: the declared endpoints' array itself, which `DriverPool` knows again.
        return orphans.isEmpty ? declared : declared + orphans
    }

    /// A driver for every node of `regions` (each connects on first use).
    public func drivers(for regions: [String]) throws -> [Address: any NodeDriver] {
        try drivers(for: try endpoints(for: regions))
    }

    /// A driver for every node at `endpoints` (each connects on first use).
    public func drivers(for endpoints: [NodeEndpoint]) throws -> [Address: any NodeDriver] {
        let opened = ResultSlots<Result<any NodeDriver, DriverError>>(count: endpoints.count)
        let nodes = nodes
        let identity = sshIdentity
        DispatchQueue.concurrentPerform(iterations: endpoints.count) { index in
            opened[index] = Result { () throws(DriverError) in try nodes.driver(for: endpoints[index], identity: identity) }
        }
        var drivers: [Address: any NodeDriver] = [:]
        for (endpoint, result) in zip(endpoints, opened.values) {
            switch result {
            case .success(let driver): drivers[endpoint.address] = NodeDriverDecoration.decorate(driver)
            case .failure(let error): throw ReconcileError(.nodeUnavailable, "cannot open node \(error)", cause: error, retryable: error.isTransient)
            }
        }
        return drivers
    }

    /// Observes every driver's node in parallel (see below).
    public func observe(_ drivers: [Address: any NodeDriver]) throws -> [ObservedNode] {
        try observe(drivers, cache: nil, generations: [:], disconnect: false).nodes
    }

    /// Observes every driver's node in parallel. Any unreachable node fails the whole observation: a plan made
    /// without knowing a node's state could create duplicates. A node whose generation (in `generations`) matches
    /// the observation `cache` holds is not asked again; with `disconnect`, each connection is let go once used.
    /// Returns the observations in node order and how many came from `cache`.
    func observe(_ drivers: [Address: any NodeDriver], cache: ObservationCache?, generations: [Address: String?],
                 disconnect: Bool) throws -> (nodes: [ObservedNode], reused: Int) {
        let list = drivers.sorted { $0.key < $1.key }
        let results = ResultSlots<Result<(node: ObservedNode, reused: Bool), DriverError>>(count: list.count)
        // The kept observations first, region by region under one lock each; only the other nodes are asked, in parallel.
        var toAsk = Array(list.indices)
        if let cache {
            let kept = cache.nodes(list.map { ($0.key, generations[$0.key] ?? nil) })
            toAsk = []
            for (index, node) in kept.enumerated() {
                if let node { results[index] = .success((node, true)) } else { toAsk.append(index) }
            }
        }
        DispatchQueue.concurrentPerform(iterations: toAsk.count) { [toAsk] slot in
            let index = toAsk[slot]
            let (address, driver) = list[index]
            let generation = generations[address] ?? nil
            // A generation read for the plan is handed on, so the node does not read it again for its saved observation.
            let result = Result { () throws(DriverError) in
                if let generation, let tracking = driver as? any GenerationTracking {
                    try tracking.observe(generation: generation)
                } else {
                    try driver.observe()
                }
            }
            if disconnect { driver.disconnect() }
            if case .success(let node) = result { cache?.keep(node, generation: generation) }
            results[index] = result.map { ($0, false) }
        }
        var observed: [ObservedNode] = []
        var reused = 0
        for result in results.values {
            switch result {
            case .success(let entry):
                observed.append(entry.node)
                if entry.reused { reused += 1 }
            case .failure(let error): throw ReconcileError(.nodeUnavailable, "cannot observe node \(error)", cause: error, retryable: error.isTransient)
            }
        }
        return (observed, reused)
    }

    /// What a start found left behind by processes that died.
    public struct Recovery: Sendable {
        /// Changes of dead runs that were planned or started, now closed as interrupted (the plan re-checks each).
        public var interrupted: [JournalEntry] = []
        /// Temporary files of crashed writes, removed.
        public var temporaries: [String] = []

        /// What an operator is told (nil when there was nothing to clean up).
        public var summary: String? {
            var parts: [String] = []
            if !interrupted.isEmpty {
                let runs = Set(interrupted.map(\.run)).sorted().map { "\($0)" }.joined(separator: ", ")
                parts.append("closed run \(runs), whose process died: \(interrupted.count) unfinished change\(interrupted.count == 1 ? "" : "s") marked interrupted (this plan checks each against its node)")
            }
            if !temporaries.isEmpty { parts.append("removed \(temporaries.count) temporary file\(temporaries.count == 1 ? "" : "s") of interrupted writes") }
            return parts.isEmpty ? nil : "recovered: " + parts.joined(separator: "; ")
        }
    }

    /// Cleans up after processes that died: closes their runs (by liveness locks, never by PID alone) and removes
    /// their temporary files. Every start (plan, drift, apply, the service) calls it; a read-only state directory
    /// recovers nothing and is not an error.
    /// `sweepTemporaries` walks every simulated host's directory: a long-running reconciler does it now and then, not
    /// for every revision.
    @discardableResult
    public func recover(sweepTemporaries: Bool? = nil) throws -> Recovery {
        var recovery = Recovery()
        do {
            recovery.interrupted = try state?.recoverDeadRuns() ?? []
        } catch {
            throw ReconcileError(.stateUnavailable, "cannot close the runs of processes that died: \(error)", cause: error)
        }
        let interrupted = sweepTemporaries == nil ? lastInterruptedRun() : nil
        if sweepTemporaries ?? (interrupted != nil && interrupted != sweptThrough) {
            recovery.temporaries = nodes.sweep()
            if let interrupted { try? Data("\(interrupted)\n".utf8).write(to: URL(fileURLWithPath: sweptMarker)) }
        }
        if state?.isWritable == true {
            do {
                try settle(try state?.unsettledInterruptedCreates() ?? [])
            } catch let failure as ReconcileError {
                throw failure
            } catch {
                throw ReconcileError(.stateUnavailable, "cannot read the interrupted changes: \(error)", cause: error)
            }
        }
        return recovery
    }

    /// The newest run closed as interrupted (its process died), when this process may write the store.
    private func lastInterruptedRun() -> Int64? {
        guard let state, state.isWritable else { return nil }
        return (try? state.runs())?.filter { $0.status == .interrupted }.map(\.id).max()
    }

    /// Where the newest interrupted run whose temporaries were swept is recorded.
    private var sweptMarker: String { "\(stateDirectory)/nodes/.swept-through-run" }

    private var sweptThrough: Int64? {
        (try? String(contentsOfFile: sweptMarker, encoding: .utf8)).flatMap { Int64($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    /// Checks each interrupted create of an instance against its node: one that was done before the crash (the domain
    /// is there) is recorded as done, with its placement, so drift and later plans know the instance was created. An
    /// interrupted update stays failed: the next plan compares the domain with its spec.
    private func settle(_ interrupted: [JournalEntry]) throws {
        guard let state else { return }
        let candidates = interrupted.filter { $0.action == .create && $0.address.kind == .instance }
        let nodes = Set(candidates.compactMap(\.target.node))
        guard !nodes.isEmpty else { return }
        let endpoints = try endpoints(for: Array(Set(nodes.compactMap(\.region)))).filter { nodes.contains($0.address) }
        for (address, driver) in try drivers(for: endpoints) {
            guard let observed = try? driver.observe() else { continue }  // unreachable now: the next plan re-checks it
            for entry in candidates where entry.target.node == address {
                guard let domain = observed.domains.first(where: { $0.address == entry.address }), let ip = domain.ip,
                      let spec = domain.specHash else { continue }
                do {
                    try state.settleInterrupted(entry, node: address, ip: ip, specHash: spec)
                } catch {
                    throw ReconcileError(.stateUnavailable, "cannot record \(entry.address) as found on \(address): \(error)", cause: error)
                }
            }
        }
    }

    /// The snapshots in the object store of each of `regions` that has one (listed in parallel). An object store that
    /// cannot be reached fails the plan, as an unreachable node does: a plan made without it could take again what is
    /// stored, or miss a restore's source.
    public func observeSnapshots(_ regions: [String]) throws -> [String: [ObservedSnapshot]] {
        let withStore = regions.filter { objectStores.has($0) }
        let listed = ResultSlots<Result<[ObservedSnapshot], any Error>>(count: withStore.count)
        let stores = objectStores
        DispatchQueue.concurrentPerform(iterations: withStore.count) { index in
            listed[index] = Result { try stores.observe(withStore[index]) }
        }
        var snapshots: [String: [ObservedSnapshot]] = [:]
        for (region, result) in zip(withStore, listed.values) { snapshots[region] = try result.get() }
        return snapshots
    }

    /// The declared tenants' accounts in the object store of each of `regions` where StackLab acts as reseller admin
    /// (listed in parallel). An unreachable store fails the plan, as for snapshots.
    public func observeAccounts(_ regions: [String]) throws -> [String: [ObservedAccount]] {
        let withReseller = regions.filter { objectStores.hasReseller($0) }
        guard !withReseller.isEmpty else { return [:] }
        let tenants = model.tenants.map(\.name).sorted()
        let listed = ResultSlots<Result<[ObservedAccount], any Error>>(count: withReseller.count)
        let stores = objectStores
        DispatchQueue.concurrentPerform(iterations: withReseller.count) { index in
            listed[index] = Result { try stores.observeAccounts(withReseller[index], tenants: tenants) }
        }
        var accounts: [String: [ObservedAccount]] = [:]
        for (region, result) in zip(withReseller, listed.values) { accounts[region] = try result.get() }
        return accounts
    }

    static func hour() -> Int32 { Int32(Date().timeIntervalSince1970 / 3600) }

    /// Deletes that exceed a region's `maxDeleteShare` of its instances (`managed`: those StackLab manages on each
    /// region's nodes as observed), as messages (empty when safe). A region that left the manifests allows the default
    /// share (25%).
    public func massDeletions(in plan: Plan, managed counts: [String: Int]) -> [String] {
        var messages: [String] = []
        let moved = plan.moved  // a move deletes nothing
        let shares = Dictionary(model.regions.map { ($0.name, $0.spec.maxDeleteShare?.value.units ?? 250_000) }, uniquingKeysWith: { a, _ in a })
        for region in plan.regions {
            let managed = counts[region] ?? 0
            let deletes = plan.changes.count {
                $0.action == .delete && !moved.contains($0.address) && $0.address.kind == .instance && $0.region == region
            }
            let share = Double(shares[region] ?? 250_000) / 1e6
            if managed > 0, deletes > 0, Double(deletes) / Double(managed) > share {
                messages.append("region '\(region)': the plan deletes \(deletes) of its \(managed) instances, more than the \(Int(share * 100))% allowed by maxDeleteShare")
            }
        }
        return messages
    }
}

/// A process-wide wrapper around every node driver a reconciler opens: the seam for instruments such as the test-only
/// `stacklab-faults`, which injects faults a real node cannot produce. The shipped `stacklab` installs none.
public enum NodeDriverDecoration {
    private static let wrapper = Mutex<(@Sendable (any NodeDriver) -> any NodeDriver)?>(nil)

    /// Wraps every driver opened from now on with `wrap`.
    public static func install(_ wrap: @escaping @Sendable (any NodeDriver) -> any NodeDriver) {
        wrapper.withLock { $0 = wrap }
    }

    static func decorate(_ driver: any NodeDriver) -> any NodeDriver {
        wrapper.withLock { $0 }.map { $0(driver) } ?? driver
    }
}
