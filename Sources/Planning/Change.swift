import Foundation
import Manifests

/// One change to one resource, on one node or region-wide: an envelope (what, where, why, after what) around the
/// typed operation an executor performs.
public struct Change: Sendable, Codable, Hashable, Identifiable {
    /// What happens, as the plan shows it.
    public enum Action: String, Sendable, Codable {
        /// Create what does not exist.
        case create
        /// Change in place (`restarts` says whether a running instance is stopped for it).
        case update
        /// Destroy and create again: the resource's data (its disks) is lost.
        case replace
        /// Start or stop without redefining.
        case power
        /// Delete. (A move to another node is a delete there plus a create here, reason `moved`, with an edge.)
        case delete
    }

    /// Why, for people.
    public enum Reason: String, Sendable, Codable {
        case new, specChanged = "spec changed", drifted, removed = "removed from manifests", moved, powerState = "power state"
        case imageChanged = "image changed", nodeRemoved = "its node left the manifests", regionRemoved = "its region left the manifests"
        case adopted = "adopted from the installed ring"
        case scheduled = "its schedule is due", retention = "past its retention"
        /// Found otherwise than the manifests say, where no earlier state tells a spec change from a hand's (an object
        /// store's container ACLs, an account's quotas).
        case differs = "differs from the manifests"
    }

    /// A field whose value changes.
    public struct FieldChange: Sendable, Codable, Hashable {
        public var field: String
        public var old: String
        public var new: String

        /// Creates a field change.
        public init(field: String, old: String, new: String) {
            self.field = field
            self.old = old
            self.new = new
        }
    }

    /// Where a change happens: on one node, or region-wide (a ring builder saved in the state store).
    public enum Target: Sendable, Codable, Hashable, Comparable, CustomStringConvertible {
        /// Boxed (a target is 24 bytes, not 64): a region planner makes one per node (`RegionPlanner.target(_:)`), and
        /// the changes on that node share it.
        indirect case node(Address)
        case region(String)

        /// The region it is in.
        public var region: String {
            switch self {
            case .node(let node): node.region ?? ""
            case .region(let name): name
            }
        }

        /// The node, for a node target.
        public var node: Address? {
            if case .node(let node) = self { node } else { nil }
        }

        /// `node/sina/sina-1` or `region/sina`.
        public var description: String {
            switch self {
            case .node(let node): node.description
            case .region(let name): "region/\(name)"
            }
        }

        /// A target from its description (`node/<region>/<name>` or `region/<name>`), as a store writes it.
        public init?(parsing text: String) {
            if let address = Address(parsing: text), address.kind == .node {
                self = .node(address)
            } else if text.hasPrefix("region/"), case let name = String(text.dropFirst("region/".count)), !name.isEmpty, !name.contains("/") {
                self = .region(name)
            } else {
                return nil
            }
        }
    }

    /// Stable identity within a plan: the address and where it happens.
    public var id: ChangeID { ChangeID(address: address, target: target) }
    /// The resource.
    public var address: Address
    /// Where it happens.
    public var target: Target
    /// What happens.
    public var action: Action
    /// Why (for people; executors read only `operation`).
    public var reason: Reason
    /// What changes, field by field.
    public var fields: [FieldChange]
    /// Changes that must succeed first.
    public var dependsOn: [ChangeID]
    /// Whether a running instance is stopped and started again by it.
    public var restarts: Bool
    /// Data the change destroys (volumes with their sizes): shown by the plan, guarded by `--allow-replace` unless
    /// the resource itself was removed from the manifests.
    public var destroys: [String]
    /// What the executor does.
    public var operation: Operation
    /// Billing: the resources this change leaves running, each as it is to be charged from the moment the change
    /// began (the ledger opens an interval, or closes one and opens another when flavor, size or period changed).
    public var meters: [Meter] = []
    /// Billing: the resources (`Meter.resource`) whose charging stops when this change is requested (a delete of
    /// something that left the manifests), whatever becomes of the real teardown.
    public var stopsMeters: [MeterResource] = []

    /// The region it happens in.
    public var region: String { target.region }

    /// Creates a change.
    public init(address: Address, target: Target, action: Action, reason: Reason, fields: [FieldChange] = [], dependsOn: [ChangeID] = [],
                restarts: Bool = false, destroys: [String] = [], operation: Operation) {
        self.address = address
        self.target = target
        self.action = action
        self.reason = reason
        self.fields = fields
        self.dependsOn = dependsOn
        self.restarts = restarts
        self.destroys = destroys
        self.operation = operation
    }
}

/// How a metered resource is charged.
public enum ChargePeriod: String, Sendable, Codable, Hashable, CaseIterable {
    /// Pay as you go, per hour (instances).
    case hourly
    /// Prepaid, per calendar month from the day it started (instances).
    case monthly
    /// Per day (floating IPs, load balancers).
    case daily
    /// Per GB-month of capacity, charged by the hour (a GB-month is 730 hours).
    case gbMonth
}

/// How one resource is charged, as a change leaves it.
///
/// A plan kept for later holds a meter per instance waiting to be created (100,000 in a large cloud), and nearly every
/// meter's resource is its own address: only a resource that is not (a tenant volume's libvirt volume) is held apart,
/// boxed. Read, compared and encoded, a meter is its eight fields.
public struct Meter: Sendable, Codable, Hashable {
    /// What the ledger keys it by.
    public var resource: MeterResource {
        get { otherResource?.value ?? .address(address) }
        set { otherResource = newValue == .address(address) ? nil : Boxed(newValue) }
    }
    public var address: Address {
        didSet {
            guard address != oldValue else { return }
            let kept = otherResource?.value ?? .address(oldValue)
            otherResource = kept == .address(address) ? nil : Boxed(kept)
        }
    }
    public var tenant: String
    public var kind: MeterKind
    /// The flavor (instances) or the size (volumes); empty for floating IPs.
    public var item: String
    /// Units charged (GB for volumes; 1 otherwise).
    public var quantity: Int64
    public var period: ChargePeriod
    public var priceList: String
    /// The resource when it is not `.address(address)` (nil exactly when it is).
    private var otherResource: Boxed<MeterResource>?

    public init(resource: MeterResource, address: Address, tenant: String, kind: MeterKind, item: String, quantity: Int64 = 1, period: ChargePeriod, priceList: String) {
        self.address = address
        self.tenant = tenant
        self.kind = kind
        self.item = item
        self.quantity = quantity
        self.period = period
        self.priceList = priceList
        self.resource = resource
    }

    private enum CodingKeys: String, CodingKey {
        case resource, address, tenant, kind, item, quantity, period, priceList
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(resource: try container.decode(MeterResource.self, forKey: .resource), address: try container.decode(Address.self, forKey: .address),
                  tenant: try container.decode(String.self, forKey: .tenant), kind: try container.decode(MeterKind.self, forKey: .kind),
                  item: try container.decode(String.self, forKey: .item), quantity: try container.decode(Int64.self, forKey: .quantity),
                  period: try container.decode(ChargePeriod.self, forKey: .period), priceList: try container.decode(String.self, forKey: .priceList))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(resource, forKey: .resource)
        try container.encode(address, forKey: .address)
        try container.encode(tenant, forKey: .tenant)
        try container.encode(kind, forKey: .kind)
        try container.encode(item, forKey: .item)
        try container.encode(quantity, forKey: .quantity)
        try container.encode(period, forKey: .period)
        try container.encode(priceList, forKey: .priceList)
    }

    public static func == (lhs: Meter, rhs: Meter) -> Bool {
        lhs.address == rhs.address && lhs.resource == rhs.resource && lhs.tenant == rhs.tenant && lhs.kind == rhs.kind && lhs.item == rhs.item
            && lhs.quantity == rhs.quantity && lhs.period == rhs.period && lhs.priceList == rhs.priceList
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(resource)
        hasher.combine(address)
        hasher.combine(tenant)
        hasher.combine(kind)
        hasher.combine(item)
        hasher.combine(quantity)
        hasher.combine(period)
        hasher.combine(priceList)
    }
}

/// What is charged: the kinds of billed resource, each with its column in a statement.
public enum MeterKind: String, Sendable, Codable, Hashable, CaseIterable {
    case instance, volume, floatingIP, loadBalancer
    /// Bytes sent, from the nodes' traffic counters (not an interval: see `TrafficUsage`).
    case bandwidth
    /// Bytes held in a tenant's object-store account, sampled hourly (see `StorageUsage`).
    case storage

    /// The statement's category.
    public var category: String {
        switch self {
        case .instance: "instances"
        case .volume: "volumes"
        case .floatingIP: "floating IPs"
        case .loadBalancer: "load balancers"
        case .bandwidth: "bandwidth"
        case .storage: "storage"
        }
    }
}

/// What the ledger keys a metered resource by: its address, or for a tenant volume its region and libvirt volume (what
/// a delete of a volume that left the manifests still knows). Kept as text (`instance/…`, `volume/<region>/<volume>`)
/// in the journal's meters and the ledger's rows; read back into this type where it is read.
public enum MeterResource: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    case address(Address)
    case volume(region: String, volume: String)

    public var description: String {
        switch self {
        case .address(let address): address.description
        case .volume(let region, let volume): "volume/\(region)/\(volume)"
        }
    }

    /// A key from its text; nil when it is neither form.
    public init?(stored text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        if parts.count == 3, parts[0] == "volume", !parts[1].isEmpty, parts[2].hasPrefix("v-") {
            self = .volume(region: String(parts[1]), volume: String(parts[2]))
        } else if let address = Address(parsing: text) {
            self = .address(address)
        } else {
            return nil
        }
    }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let key = MeterResource(stored: text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "'\(text)' is not a meter's resource"))
        }
        self = key
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }

    public static func < (lhs: MeterResource, rhs: MeterResource) -> Bool { lhs.description < rhs.description }
}

/// A change's identity: `<address>@<target>`, e.g. `instance/sina/devops/gerrit@node/sina/sina-1`.
public struct ChangeID: Sendable, Codable, Hashable, Comparable, CustomStringConvertible {
    public var address: Address
    public var target: Change.Target

    /// The id of the change to `address` at `target`.
    public init(address: Address, target: Change.Target) {
        self.address = address
        self.target = target
    }

    public var description: String { "\(address)@\(target)" }

    public static func < (lhs: ChangeID, rhs: ChangeID) -> Bool {
        lhs.address != rhs.address ? lhs.address < rhs.address : lhs.target < rhs.target
    }
}
