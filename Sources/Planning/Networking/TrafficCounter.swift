import Manifests

/// A named nftables counter on a compute node: the bytes one instance's port sends (`out`) or receives (`in`), public or
/// internal, as bandwidth billing reads them (like Sina's per-address counters in Kanyun). Its comment on the node names
/// the instance, so a reading needs nothing but the node to be understood, even after the instance left the manifests.
public struct TrafficCounter: Sendable, Codable, Hashable, Comparable {
    public enum Direction: String, Sendable, Codable, CaseIterable {
        case outbound = "out", inbound = "in"
    }

    /// Public traffic crosses the region's edge: to or from an address outside the region's networks and the provider's
    /// internal ranges, or through a load-balancer node (a public domain or listener). Internal traffic stays inside.
    public enum Scope: String, Sendable, Codable, CaseIterable {
        case `public`, `internal`
    }

    public var instance: Address
    /// The instance's port on the node (`DesiredDomain.port(for:)`).
    public var port: String
    public var direction: Direction
    public var scope: Scope

    public init(instance: Address, direction: Direction, scope: Scope) {
        self.init(instance: instance, port: DesiredDomain.port(for: instance), direction: direction, scope: scope)
    }

    /// The counter of `instance` whose port (`DesiredDomain.port(for:)`, a digest of its address) is known already.
    init(instance: Address, port: String, direction: Direction, scope: Scope) {
        self.instance = instance
        self.port = port
        self.direction = direction
        self.scope = scope
    }

    /// Its name in the table (`sl-0123456789ab-out-public`).
    public var name: String { "\(port)-\(direction.rawValue)-\(scope.rawValue)" }

    /// Its comment on the node: `instance/<region>/<tenant>/<name> out public`.
    public var comment: String { "\(instance) \(direction.rawValue) \(scope.rawValue)" }

    /// The counter a comment names; nil for anything else.
    public init?(comment: String) {
        let words = comment.split(separator: " ")
        guard words.count == 3, let instance = Address(parsing: String(words[0])), instance.kind == .instance,
              let direction = Direction(rawValue: String(words[1])), let scope = Scope(rawValue: String(words[2])) else { return nil }
        self.init(instance: instance, direction: direction, scope: scope)
    }

    /// The counter that tells a table's epoch (see `TrafficReading.epoch`).
    public static let epochCounter = "stacklab-epoch"

    public static func < (lhs: TrafficCounter, rhs: TrafficCounter) -> Bool { lhs.name < rhs.name }
}

/// A node's traffic counters as read at one moment.
///
/// The counters live in StackLab's bridge table, which a reload of the ruleset keeps (it flushes the rules in one
/// transaction and declares them again, so the counters carry on). They start from zero only when the table is new: at
/// boot, or after someone deleted it. Each new table gets a random id of its own (the comment of counter
/// `stacklab-epoch`, written in the transaction that makes it); with the node's boot id it is the reading's epoch, and
/// the ledger keeps what it has accounted for per counter and epoch. So a counter that restarted is never mistaken for
/// one that grew, however far it grows before the next reading.
public struct TrafficReading: Sendable {
    /// `<boot id>/<table id>`; nil when the table has no id (loaded by hand, or not by this version): not metered.
    public var epoch: String?
    /// Each counter StackLab declared and the kernel's bytes and packets.
    public var counters: [(counter: TrafficCounter, bytes: Int64, packets: Int64)]
    /// Counters the node holds that its installed ruleset no longer declares (an instance that left or moved): read one
    /// last time, then deleted by the meter.
    public var stale: Set<String>

    public init(epoch: String?, counters: [(counter: TrafficCounter, bytes: Int64, packets: Int64)], stale: Set<String>) {
        self.epoch = epoch
        self.counters = counters
        self.stale = stale
    }

}
