import Foundation
import Manifests

/// What a long-running planner (the service, `IncrementalPlanner`) keeps of a region's last plan for its next one, for
/// at most `regions` regions, the ones planned most recently. The plan is the same with or without it.
///
/// - Each compute node's ruleset outcome: a node whose ruleset inputs are equal to the last plan's, and whose observed
///   ruleset is the very one that matched then (the same array, kept by the observation cache while the node is
///   unchanged), runs what it should and is not rendered again. Only nodes found as wanted are kept.
/// - The region's whole networking outcome (`RegionPlanner.NetworkingOutcome`: its DHCP, firewall and HAProxy changes)
///   with everything it was planned from (`RegionPlanner.NetworkingInputs`): a plan of the region from equal inputs adds
///   the kept changes without building attachments, metadata, membership or any node's configuration.
/// - The region's run (`RegionPlanner.InstanceRun`: each instance's place and where its domain runs, a few bytes each,
///   and what the run made of them) with what it was made from: a plan of the region in which only instance documents changed, none of them in what places
///   it, numbers it or puts it on the network (a resize, an image, a power state), decides again only those instances'
///   domains and keeps everything else.
/// - Each ring's plan with the key of what it was made from (the saved builder's stamp, the hour, the ring's and the
///   region's nodes' documents): a ring held back by `min_part_hours` is rebalanced, encoded and measured again only when
///   one of them changed.
public final class RegionMemo: @unchecked Sendable {
    struct Region: Sendable {
        var shared: FirewallRules.SharedInputs
        var nodes: [Address: Node]
    }

    struct Node: Sendable {
        var inputs: FirewallRules.NodeInputs
        /// The observed rules that were the rendered ones.
        var observed: Ruleset.Rules
    }

    /// By region; every entry is under the one stamp (what makes it valid is its shared inputs, compared by the planner).
    private let regions: RegionBoundedCache<String, Region>
    /// Each region's whole networking outcome with what it was made from, as bounded.
    private let networking: RegionBoundedCache<String, RegionPlanner.NetworkingMemo>
    /// Each region's last run (its domains decided per instance), as bounded.
    private let runs: RegionBoundedCache<String, RegionPlanner.InstanceRun>
    /// Each ring's last plan, under the key of what it was made from (`RegionPlanner.ringPlanKey`), as bounded.
    private let ringPlans: RegionBoundedCache<Address, RingPlan>
    private var ringPlansKeptCount = 0
    private var sparedCount = 0
    private var networkingKeptCount = 0
    private var runsSplicedCount = 0
    private var instancesReplannedCount = 0
    private let lock = NSLock()

    /// An empty memo of at most `regions` regions.
    public init(regions: Int = 8) {
        self.regions = RegionBoundedCache(regions: regions)
        networking = RegionBoundedCache(regions: regions)
        runs = RegionBoundedCache(regions: regions)
        ringPlans = RegionBoundedCache(regions: regions)
    }

    /// The plan kept for the ring at `address` when it was made from inputs of `key`.
    func ringPlan(_ address: Address, key: String) -> RingPlan? {
        let kept = ringPlans.value(address, region: address.region ?? "", stamp: key)
        if kept != nil { lock.withLock { ringPlansKeptCount += 1 } }
        return kept
    }

    /// Keeps `plan` as the ring at `address`'s, made from inputs of `key`.
    func keep(_ plan: RingPlan, of address: Address, key: String) {
        ringPlans.keep(plan, key: address, region: address.region ?? "", stamp: key)
    }

    /// Ring plans kept (not planned again) since the memo was made, over every plan.
    public var ringPlansKept: Int {
        lock.withLock { ringPlansKeptCount }
    }

    /// The run kept for `region`, taken out of the memo (so the planner holds the only copy and changes it in place;
    /// it keeps the run it makes).
    func takeInstanceRun(of region: String) -> RegionPlanner.InstanceRun? {
        runs.take(region, region: region)
    }

    /// Keeps `run` as `region`'s last (forgets the one kept when nil); `spliced` instances of it were planned alone.
    func keep(_ run: RegionPlanner.InstanceRun?, of region: String, spliced: Int? = nil) {
        if let run { runs.keep(run, key: region, region: region, stamp: "") } else { runs.forget(region, region: region) }
        guard let spliced else { return }
        lock.withLock {
            runsSplicedCount += 1
            instancesReplannedCount += spliced
        }
    }

    /// Region runs planned from a kept one (only their changed instances decided again), and the instances decided
    /// again in them, over every plan.
    public var spliced: (runs: Int, instances: Int) {
        lock.withLock { (runsSplicedCount, instancesReplannedCount) }
    }

    /// The networking outcome kept for `region` when it was made from `inputs`.
    func networking(of region: String, inputs: RegionPlanner.NetworkingInputs) -> RegionPlanner.NetworkingOutcome? {
        guard let kept = networking.value(region, region: region, stamp: ""), kept.inputs == inputs else { return nil }
        lock.withLock {
            sparedCount += kept.outcome.firewalls
            networkingKeptCount += 1
        }
        return kept.outcome
    }

    /// Keeps `region`'s networking outcome, made from `inputs`, its changes compacted (`Change.compacted()`: the
    /// rulesets' rules deflated).
    func keep(_ outcome: RegionPlanner.NetworkingOutcome, of region: String, inputs: RegionPlanner.NetworkingInputs) {
        var outcome = outcome
        outcome.changes = outcome.changes.compacted()
        networking.keep(.init(inputs: inputs, outcome: outcome), key: region, region: region, stamp: "")
    }

    /// The nodes kept for `region` when its shared inputs are still `shared`.
    func nodes(of region: String, shared: FirewallRules.SharedInputs) -> [Address: Node] {
        guard let kept = regions.value(region, region: region, stamp: ""), kept.shared.same(as: shared) else { return [:] }
        return kept.nodes
    }

    /// Keeps `nodes` for `region`; `spared` of them were not rendered again.
    func keep(_ nodes: [Address: Node], of region: String, shared: FirewallRules.SharedInputs, spared: Int) {
        regions.keep(Region(shared: shared, nodes: nodes), key: region, region: region, stamp: "")
        lock.withLock { sparedCount += spared }
    }

    /// Rulesets not rendered again since the memo was made, over every plan.
    public var spared: Int {
        lock.withLock { sparedCount }
    }

    /// Regions whose whole networking outcome was kept since the memo was made, over every plan.
    public var networkingKept: Int {
        lock.withLock { networkingKeptCount }
    }
}
