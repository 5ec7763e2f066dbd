import Foundation
import Manifests

/// A plan: typed changes per resource address, in dependency order, with what they were planned against.
/// `Codable` so that `plan --out` saves exactly what `apply` will do.
public struct Plan: Sendable, Codable {
    /// The manifests revision it was made from (nil for a working tree).
    public var revision: String?
    /// The regions it covers.
    public var regions: [String]
    /// Fingerprint of every observed node, by node address: apply refuses the plan if any changed.
    public var observed: [String: String]
    /// Changes, in an order that respects dependencies (a change only depends on earlier ones).
    public var changes: [Change]
    /// Objects found on nodes that StackLab does not own: reported, never touched.
    public var unmanaged: [Unmanaged]
    /// Instances that could not be placed (and rings that could not be built), with the reason.
    public var unplaceable: [Unplaceable]
    /// Swift rings rebalanced by this plan: what each rebalance does.
    public var rings: [RingPlan] = []
    /// Resources found exactly as wanted (counted, not listed: a plan is the difference).
    public var unchanged = 0

    /// Whether applying it would do anything.
    public var isEmpty: Bool { changes.isEmpty }

    /// Creates a plan.
    public init(revision: String?, regions: [String], observed: [String: String], changes: [Change], unmanaged: [Unmanaged], unplaceable: [Unplaceable]) {
        self.revision = revision
        self.regions = regions
        self.observed = observed
        self.changes = changes
        self.unmanaged = unmanaged
        self.unplaceable = unplaceable
    }

    /// An unmanaged object on a node.
    public struct Unmanaged: Sendable, Codable, Hashable {
        public var node: Address
        public var kind: String
        public var name: String

        /// Creates a report of an unmanaged object.
        public init(node: Address, kind: String, name: String) {
            self.node = node
            self.kind = kind
            self.name = name
        }
    }

    /// An instance with no room.
    public struct Unplaceable: Sendable, Codable, Hashable {
        public var address: Address
        public var reason: String
    }
}

/// One change to one resource on one node.
public struct Change: Sendable, Codable, Hashable, Identifiable {
    /// What happens.
    public enum Action: String, Sendable, Codable {
        /// Create what does not exist.
        case create
        /// Redefine in place (the domain restarts if it was running).
        case update
        /// Start or stop without redefining.
        case power
        /// Delete. (A move to another node is a delete there plus a create here, reason `moved`, with an edge.)
        case delete
    }

    /// Why.
    public enum Reason: String, Sendable, Codable {
        case new, specChanged = "spec changed", drifted, removed = "removed from manifests", moved, powerState = "power state"
    }

    /// A field whose value changes.
    public struct FieldChange: Sendable, Codable, Hashable {
        public var field: String
        public var old: String
        public var new: String
    }

    /// Stable identity within the plan: `<address>@<node>`.
    public var id: String { "\(address)@\(node.kind == .node ? node.name : node.description)" }
    /// The region it happens in.
    public var region: String? { node.kind == .region ? node.name : node.region }
    /// The resource.
    public var address: Address
    /// The node it happens on (for region-wide changes such as building a ring, the region).
    public var node: Address
    /// What happens.
    public var action: Action
    /// Why.
    public var reason: Reason
    /// What changes (for updates and drift).
    public var fields: [FieldChange]
    /// The desired domain (creates, updates, replaces, power changes of instances).
    public var domain: DesiredDomain?
    /// The observed domain's libvirt name (deletes).
    public var observedName: String?
    /// The network's bridge (network changes).
    public var bridge: String?
    /// Ids of changes that must succeed first.
    public var dependsOn: [String]
    /// Bytes the change needs: a ring file to install, or a ring builder state to save.
    public var payload: Data?
    /// The sha256 of `payload` (ring files), checked after install.
    public var checksum: String?
    /// The file a ring install writes (`object.ring.gz`).
    public var file: String?

    /// Creates a change.
    public init(address: Address, node: Address, action: Action, reason: Reason, fields: [FieldChange] = [], domain: DesiredDomain? = nil,
                observedName: String? = nil, bridge: String? = nil, dependsOn: [String] = [], payload: Data? = nil, checksum: String? = nil, file: String? = nil) {
        self.file = file
        self.payload = payload
        self.checksum = checksum
        self.address = address
        self.node = node
        self.action = action
        self.reason = reason
        self.fields = fields
        self.domain = domain
        self.observedName = observedName
        self.bridge = bridge
        self.dependsOn = dependsOn
    }
}
