/// An IPv4 address.
public struct IPv4Address: Sendable, Hashable, Comparable, TextCodable {
    public static let textKind = "IPv4 address"
    /// The address as a big-endian-ordered integer (10.0.0.1 = 0x0A000001).
    public var value: UInt32

    /// Creates an address from its integer.
    public init(_ value: UInt32) { self.value = value }

    /// Parses dotted-quad text; nil when malformed (leading zeros are refused: `010` is ambiguous).
    public init?(parsing text: some StringProtocol) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var value: UInt32 = 0
        for part in parts {
            guard (1...3).contains(part.count), part.allSatisfy(\.isASCIIDigit),
                  part.count == 1 || part.first != "0", let octet = UInt32(part), octet <= 255
            else { return nil }
            value = value << 8 | octet
        }
        self.value = value
    }

    /// Orders numerically.
    public static func < (lhs: IPv4Address, rhs: IPv4Address) -> Bool { lhs.value < rhs.value }

    /// Dotted-quad text.
    public var description: String {
        "\(value >> 24).\(value >> 16 & 0xFF).\(value >> 8 & 0xFF).\(value & 0xFF)"
    }

}

/// An IPv4 network in CIDR notation (`10.10.0.0/16`).
public struct IPv4Network: Sendable, Hashable, TextCodable {
    public static let textKind = "IPv4 network"
    /// The network address (host bits zero).
    public var address: IPv4Address
    /// Prefix length, 0...32.
    public var prefix: Int

    /// Why a CIDR text is not acceptable.
    public enum ParseError: Error, Sendable, Equatable {
        /// Not `a.b.c.d/n` at all.
        case malformed
        /// Well-formed, but host bits are set (`10.0.0.1/8`); carries the network that was probably meant.
        case hostBitsSet(suggestion: String)
    }

    /// Creates a network; host bits of `address` are cleared.
    public init(address: IPv4Address, prefix: Int) {
        self.prefix = prefix
        self.address = IPv4Address(address.value & Self.mask(prefix))
    }

    /// The network CIDR `text` names strictly (nil when host bits are set: `parse` says why).
    public init?(parsing text: String) {
        guard case .success(let network) = Self.parse(text) else { return nil }
        self = network
    }

    /// Parses CIDR text strictly.
    public static func parse(_ text: some StringProtocol) -> Result<IPv4Network, ParseError> {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let address = IPv4Address(parsing: parts[0]),
              (1...2).contains(parts[1].count), parts[1].allSatisfy(\.isASCIIDigit),
              let prefix = Int(parts[1]), prefix <= 32
        else { return .failure(.malformed) }
        let network = IPv4Network(address: address, prefix: prefix)
        guard network.address == address else { return .failure(.hostBitsSet(suggestion: network.description)) }
        return .success(network)
    }

    private static func mask(_ prefix: Int) -> UInt32 {
        prefix == 0 ? 0 : UInt32.max << (32 - prefix)
    }

    /// The first address.
    public var first: IPv4Address { address }
    /// The last address (broadcast).
    public var last: IPv4Address { IPv4Address(address.value | ~Self.mask(prefix)) }
    /// How many addresses the network spans.
    public var size: UInt64 { UInt64(1) << UInt64(32 - prefix) }

    /// Whether `ip` lies inside the network.
    public func contains(_ ip: IPv4Address) -> Bool { ip.value & Self.mask(prefix) == address.value }
    /// Whether `other` lies entirely inside this network.
    public func contains(_ other: IPv4Network) -> Bool { other.prefix >= prefix && contains(other.address) }
    /// Whether the two networks share any address.
    public func overlaps(_ other: IPv4Network) -> Bool { contains(other.address) || other.contains(address) }

    /// `a.b.c.d/n`.
    public var description: String { "\(address)/\(prefix)" }

}
