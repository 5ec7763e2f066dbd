import Manifests

/// StackLab's IPAM for one network: fixed IPs from the manifests are honoured, addresses already in use stay
/// with their instance, and new instances get the lowest free host address (skipping the network, broadcast,
/// gateway and DNS addresses). Deterministic: the same inputs give the same addresses on every machine.
public struct AddressPool: Sendable {
    private let range: IPv4Network
    private var taken: Set<IPv4Address>
    private var cursor: UInt32

    /// A pool over `range` with `reserved` addresses (gateway, DNS) never handed out.
    public init(range: IPv4Network, reserved: [IPv4Address]) {
        self.range = range
        taken = Set(reserved + [range.first, range.last])
        cursor = range.first.value &+ 1
    }

    /// A pool over a network's fixed range, reserving its gateway and DNS servers.
    public init(network: NetworkSpec) {
        self.init(range: network.fixedRange.value, reserved: network.reservedAddresses)
    }

    /// Marks `address` used (a fixed IP from the manifests, or one an instance already has).
    /// Returns false when it is already taken or outside the range.
    @discardableResult
    public mutating func claim(_ address: IPv4Address) -> Bool {
        guard range.contains(address), !taken.contains(address) else { return false }
        taken.insert(address)
        return true
    }

    /// The highest free address, or nil when the range is full (nodes' gateways: instances fill the range from below).
    public mutating func allocateFromTop() -> IPv4Address? {
        var candidate = range.last.value &- 1
        while candidate > range.first.value {
            if taken.insert(IPv4Address(candidate)).inserted { return IPv4Address(candidate) }
            candidate &-= 1
        }
        return nil
    }

    /// The lowest free address, or nil when the range is full.
    public mutating func allocate() -> IPv4Address? {
        while cursor < range.last.value {
            let candidate = IPv4Address(cursor)
            cursor &+= 1
            if taken.insert(candidate).inserted { return candidate }
        }
        return nil
    }
}
