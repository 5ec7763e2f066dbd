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
    /// Makes `change` true on the node.
    func apply(_ change: Change) throws(DriverError)
    /// Lets go of the connection (the next use opens one again): a plan over thousands of nodes holds only
    /// the observations, not the connections.
    func disconnect()
}

/// A driver failure: what failed, the hypervisor's message, and whether retrying may help.
public struct DriverError: Error, Sendable, CustomStringConvertible {
    /// The node.
    public var node: String
    /// What failed and why.
    public var message: String
    /// Whether a retry may succeed (timeouts, lost connections) as opposed to a request the node refuses.
    public var isTransient: Bool

    /// Creates an error.
    public init(node: String, message: String, isTransient: Bool) {
        self.node = node
        self.message = message
        self.isTransient = isTransient
    }

    /// `node: message`.
    public var description: String { "\(node): \(message)" }
}
