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
