import Foundation
import Manifests
import Planning

/// What a reconciler needs from a node: observe it, and apply one change idempotently (checking before acting,
/// so a change interrupted half-way can simply be applied again). Every requirement is something each driver does;
/// what only some can do is a capability protocol below (`GenerationTracking`, `WriteBatching`), which a driver
/// that cannot do it does not conform to.
public protocol NodeDriver: Sendable {
    /// The node's address.
    var address: Address { get }
    /// The node's current state.
    func observe() throws(DriverError) -> ObservedNode
    /// What each running instance on the node has used (CPU time, disk and network bytes) since it started.
    func usage() throws(DriverError) -> [InstanceUsage]
    /// The node's traffic counters (bandwidth billing) with their epoch; nil where its kernel's ruleset is not
    /// StackLab's to read (a simulated node).
    func trafficReading() throws(DriverError) -> TrafficReading?
    /// Deletes traffic counters no rule counts into any more, once the ledger has them.
    func deleteTrafficCounters(_ names: [String]) throws(DriverError)
    /// Performs `operation` on the node, durably before it returns.
    func apply(_ operation: NodeOperation) throws(DriverError)
    /// Makes `domain` here from the domain named `sourceDomain` on `source` (an instance moving): the old one is
    /// stopped, its volumes are copied here and checked, then `domain` is defined. Idempotent: a copy interrupted
    /// half-way starts over; the old domain is left for its own delete.
    func receive(_ domain: DesiredDomain, from source: any NodeDriver, sourceDomain: String) throws(DriverError)
    /// Hands `consume` the capacity of tenant volume `name` and an independent copy of it (the file as it lies in the
    /// pool), through `read`, which returns `chunkSize` bytes at a time (fewer only at the end, nil after it). A running
    /// guest that uses the volume is paused while the node makes the copy, never while it is read.
    func exportVolume(pool: String, name: String, chunkSize: Int, _ consume: (_ capacity: UInt64, _ read: () throws -> Data?) throws -> Void) throws(DriverError)
    /// Creates tenant volume `name` from what `produce` hands to `write` (a volume of that name is replaced: a restore
    /// interrupted half-way starts over), then grows it to `bytes`.
    func importVolume(pool: String, name: String, bytes: UInt64, _ produce: (_ write: (Data) throws -> Void) throws -> Void) throws(DriverError)
    /// The bytes of an installed Swift ring file (`object.ring.gz`), to adopt a ring whose builder was lost.
    func readRing(_ file: String) throws(DriverError) -> Data
    /// Lets go of the connection (the next use opens one again): a plan over thousands of nodes holds only
    /// the observations, not the connections.
    func disconnect()
}

/// A node that can vouch for its state without being asked: a token that changes whenever the node may have
/// changed, read without a hypervisor call (a simulated node: the stamps of its files). Equal tokens let a reconciler
/// keep an earlier observation of the node, and a plan made from it. A production node cannot (libvirt's lifecycle
/// events could, in a long-running reconciler) and does not conform.
public protocol GenerationTracking: NodeDriver {
    /// The token; nil when it cannot be read now (the node is then observed).
    func generation() -> String?
    /// The node's current state, `generation` being what `generation()` returned just before (nil: not known): a node
    /// may answer from an observation it saved at that generation.
    func observe(generation: String?) throws(DriverError) -> ObservedNode
}

/// A node that can hold its writes back: `apply(_:deferringWrite:)` changes it at once but saves only at `flush()`
/// (a simulated node rewrites its whole host file per save). A node whose changes are durable as they are made does
/// not conform; the applier then applies one change at a time.
public protocol WriteBatching: NodeDriver {
    /// Performs `operation` like `apply(_:)`; with `deferringWrite`, saves it only at the next `flush()` (until then a
    /// crash, or `disconnect()`, loses it, as if it had never been applied).
    func apply(_ operation: NodeOperation, deferringWrite: Bool) throws(DriverError)
    /// Saves every change held back since the last save; nothing when none is.
    func flush() throws(DriverError)
}

/// Where a reconciler gets its node drivers from, and what it knows of nodes beyond the manifests. Production
/// nodes are reached over SSH; the simulated nodes of a state directory are another source's business
/// (`SimulatedNodes.LocalNodes`), so nothing above this protocol knows how a node is kept.
public protocol NodeSource: Sendable {
    /// A driver for the node at `endpoint` (nothing is connected to until it is used); `identity` is the SSH key for a
    /// production node (nil: the source's default).
    func driver(for endpoint: NodeEndpoint, identity: String?) throws(DriverError) -> any NodeDriver
    /// Nodes this source holds that may have left the manifests (of `regions` only, when given).
    func heldNodes(in regions: Set<String>?) -> [NodeEndpoint]
    /// The generation of each driver's node (`GenerationTracking`), nil where it has none; and how many generations
    /// were read (the others were known unchanged without reading).
    func generations(of drivers: [Address: any NodeDriver]) -> (values: [Address: String?], read: Int)
    /// Why generations cannot be watched (they are then read every time), once it is known; nil when they are.
    var watchFailure: String? { get }
    /// Lets go of `node`, which left the manifests and holds nothing of StackLab's any more: whatever the source keeps
    /// of it goes (a simulated node's host file and saved observation), so it is no longer found by `heldNodes`.
    func release(_ node: Address)
    /// Removes what crashed writes of dead processes left behind; returns the paths removed.
    func sweep() -> [String]
}

/// A driver that is a libvirt node underneath (possibly wrapped): what a move copies volumes from.
public protocol LibvirtBacked {
    /// The libvirt node.
    var libvirtNode: LibvirtNode { get }
}

/// A driver failure: what failed, the hypervisor's message, and whether retrying may help.
public struct DriverError: Error, Sendable, CustomStringConvertible {
    /// The node (`node/<region>/<name>`).
    public var node: Address
    /// What failed and why.
    public var message: String
    /// Whether a retry may succeed (timeouts, lost connections) as opposed to a request the node refuses.
    public var isTransient: Bool

    /// Creates an error.
    public init(node: Address, message: String, isTransient: Bool) {
        self.node = node
        self.message = message
        self.isTransient = isTransient
    }

    /// `node: message`.
    public var description: String { "\(node): \(message)" }
}

