import Manifests

/// How to reach a node: what a driver needs, from the manifests or (for a node that left them) from the state
/// store's inventory of nodes StackLab has changed.
public struct NodeEndpoint: Sendable, Codable, Hashable {
    /// `node/<region>/<name>`.
    public var address: Address
    /// The libvirt URI, or `simulated`.
    public var libvirt: String
    /// CPU threads and memory (a simulated node's host is made from them).
    public var cpus: Int
    public var memoryKiB: UInt64
    /// The pinned SSH host key (`ssh-ed25519 AAAA…`) of a production node; the connection is refused without it.
    public var hostKey: String?
    /// Where the node keeps StackLab's files (default `/`): instance pool and images live under it.
    public var fileRoot: String?

    /// Creates an endpoint.
    public init(address: Address, libvirt: String, cpus: Int, memoryKiB: UInt64, hostKey: String? = nil, fileRoot: String? = nil) {
        self.address = address
        self.libvirt = libvirt
        self.cpus = cpus
        self.memoryKiB = memoryKiB
        self.hostKey = hostKey
        self.fileRoot = fileRoot
    }

    /// The endpoint of a node in the manifests.
    public init(_ node: Resource<NodeSpec>) {
        self.init(address: node.address, libvirt: node.spec.libvirt.value, cpus: node.spec.cpus.value, memoryKiB: node.spec.memory.value.bytes / 1024,
                  hostKey: node.spec.ssh?.hostKey?.value, fileRoot: node.spec.fileRoot?.value)
    }
}
