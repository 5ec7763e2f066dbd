import Foundation
import Manifests
import Planning

/// What a reconciler needs from a node: observe it, and apply one change idempotently (checking before acting,
/// so a change interrupted half-way can simply be applied again).
public protocol NodeDriver: Sendable {
    /// The node's address.
    var address: Address { get }
    /// A token that changes whenever the node's state may have changed, read without asking the hypervisor;
    /// nil when the node cannot vouch for that (it is then observed every time). Equal tokens let a reconciler
    /// keep an earlier observation of the node, and a plan made from it.
    func generation() -> String?
    /// The node's current state.
    func observe() throws(DriverError) -> ObservedNode
    /// The node's current state, `generation` being what `generation()` returned just before (nil: not known).
    func observe(generation: String?) throws(DriverError) -> ObservedNode
    /// What each running instance on the node has used (CPU time, disk and network bytes) since it started.
    func usage() throws(DriverError) -> [InstanceUsage]
    /// Performs `operation` on the node. An operation the node cannot perform (a region-wide one) throws.
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
    /// Whether the node can hold writes back: `apply(_:deferringWrite:)` changes it at once but saves only at
    /// `flush()` (a simulated node rewrites its whole host file per save). False for a node whose changes are
    /// durable as they are made.
    var defersWrites: Bool { get }
    /// Performs `operation` like `apply(_:)`; with `deferringWrite`, a node that `defersWrites` saves it only at the
    /// next `flush()` (until then a crash, or `disconnect()`, loses it, as if it had never been applied).
    func apply(_ operation: NodeOperation, deferringWrite: Bool) throws(DriverError)
    /// Saves every change held back since the last save; nothing when none is.
    func flush() throws(DriverError)
}

extension NodeDriver {
    public func observe(generation: String?) throws(DriverError) -> ObservedNode { try observe() }
    public var defersWrites: Bool { false }
    public func apply(_ operation: NodeOperation, deferringWrite: Bool) throws(DriverError) { try apply(operation) }
    public func flush() throws(DriverError) {}
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

