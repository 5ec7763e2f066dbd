import Foundation
import Manifests

/// What a node's ruleset is rendered from, split in two: what every compute node of the region shares (compared once
/// per plan) and what is the node's own. Every stored property of `FirewallRules` is in one of them, so equal inputs
/// render equal rulesets.
extension FirewallRules {
    /// What every node of the region renders its ruleset from. Documents are compared by their source digest and place
    /// (`ObjectMeta.digest`, `location`); a document with no digest (a model not read from files) is never equal.
    struct SharedInputs: Equatable, Sendable {
        var region: String
        var documents: [Document]
        var members: [TenantKey: [Member]]
        var regionRanges: [IPv4Network]
        var regionLocation: SourceLocation?
        var networkLocations: [String: SourceLocation]
        var balancerSources: [String: [IPv4Address]]
        var balancerPorts: [IPv4Address: Set<Int>]

        /// A document by its digest and place, one that is not there, or one whose digest is not known.
        enum Document: Equatable, Sendable {
            case stamped(UInt64, SourceLocation)
            case absent
            case unknown

            init<Spec>(_ resource: Resource<Spec>?) {
                guard let resource else {
                    self = .absent
                    return
                }
                self = resource.meta.digest == 0 ? .unknown : .stamped(resource.meta.digest, resource.meta.location)
            }
        }

        /// Whether `other` renders what these inputs render: equal, and every document known by its digest.
        func same(as other: SharedInputs) -> Bool {
            !documents.contains(.unknown) && self == other
        }
    }

    /// What only this node's ruleset is rendered from: each network's name, bridge, gateway and range (not its hosts,
    /// which only DHCP serves), the node's instances and their floating IPs.
    struct NodeInputs: Equatable, Sendable {
        var links: [Link]
        var local: [Member]
        var bindings: [Binding]

        struct Link: Equatable, Sendable {
            var network: String
            var bridge: String
            var gateway: IPv4Address
            var range: IPv4Network
        }
    }

    /// The region's part of these inputs; `region` is the Region document `spec` is read from. Documents go by digest:
    /// the region's, its Filters and the security groups its instances are in.
    func sharedInputs(region document: Resource<RegionSpec>?) -> SharedInputs {
        // The groups rules are looked up in are those members are in (`members` has a key for each).
        let documents = [document.map(SharedInputs.Document.init) ?? .unknown] + filters.map(SharedInputs.Document.init) + members.keys.sorted().map { SharedInputs.Document(groups[$0]) }
        return SharedInputs(region: region, documents: documents, members: members, regionRanges: regionRanges, regionLocation: regionLocation,
                            networkLocations: networkLocations, balancerSources: balancerSources, balancerPorts: balancerPorts)
    }

    /// The node's part of these inputs.
    var nodeInputs: NodeInputs {
        NodeInputs(links: networks.map { .init(network: $0.network, bridge: $0.bridge, gateway: $0.gateway, range: $0.range) }, local: local, bindings: bindings)
    }
}

/// Each compute node's ruleset outcome, kept from one plan of a region to the next by a long-running planner (the
/// service, `IncrementalPlanner`): a node whose ruleset inputs are equal to the last plan's, and whose observed ruleset
/// is the very one that matched then (the same array, kept by the observation cache while the node is unchanged), runs
/// what it should and is not rendered again. Only nodes found as wanted are kept; at most `regions` regions, the ones
/// planned most recently.
///
/// It also keeps each region's whole networking outcome (`RegionPlanner.NetworkingOutcome`: its DHCP, firewall and
/// HAProxy changes) with everything it was planned from (`RegionPlanner.NetworkingInputs`): a plan of the region from
/// equal inputs (a push that resized an instance, changed its image or its power state) adds the kept changes without
/// building attachments, metadata, membership or any node's configuration.
public final class FirewallMemo: @unchecked Sendable {
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
    private var sparedCount = 0
    private var networkingKeptCount = 0
    private let lock = NSLock()

    /// An empty memo of at most `regions` regions.
    public init(regions: Int = 8) {
        self.regions = RegionBoundedCache(regions: regions)
        networking = RegionBoundedCache(regions: regions)
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
