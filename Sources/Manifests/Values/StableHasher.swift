/// FNV-1a, 64-bit: a hash that is the same in every process and on every machine (Swift's `Hasher` is seeded
/// per process). Used for spec hashes stored in libvirt metadata, document digests and validation keys.
public struct StableHasher: Sendable {
    /// The hash so far.
    public private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

    /// A fresh hasher.
    public init() {}

    /// Mixes in a string and a separator, so ("ab","c") and ("a","bc") differ.
    public mutating func combine(_ text: String) {
        for byte in text.utf8 { mix(byte) }
        mix(0xFF)
    }

    /// Mixes in an address exactly as `combine(address.description)` does, without making the string.
    public mutating func combine(_ address: Address) {
        for byte in address.kind.addressName.utf8 { mix(byte) }
        if let region = address.region { mixPart(region) }
        if let tenant = address.tenant { mixPart(tenant) }
        mixPart(address.name)
        mix(0xFF)
    }

    /// Mixes in a number exactly as `combine(String(number))` does (its decimal digits), without making the string.
    public mutating func combine(decimal number: UInt64) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in  // UInt64.max has 20
            var rest = number, count = 0
            repeat {
                digits[count] = UInt8(ascii: "0") + UInt8(rest % 10)
                rest /= 10
                count += 1
            } while rest > 0
            for index in stride(from: count - 1, through: 0, by: -1) { mix(digits[index]) }
        }
        mix(0xFF)
    }

    /// Mixes in an IPv4 address exactly as `combine(ip.description)` (dotted decimal) does, without making the string.
    public mutating func combine(_ ip: IPv4Address) {
        for shift: UInt32 in [24, 16, 8, 0] {
            let octet = UInt8(truncatingIfNeeded: ip.value >> shift)
            if octet >= 100 { mix(UInt8(ascii: "0") + octet / 100) }
            if octet >= 10 { mix(UInt8(ascii: "0") + octet / 10 % 10) }
            mix(UInt8(ascii: "0") + octet % 10)
            if shift > 0 { mix(UInt8(ascii: ".")) }
        }
        mix(0xFF)
    }

    /// A slash and `text`'s bytes (an address's part after the first).
    private mutating func mixPart(_ text: String) {
        mix(UInt8(ascii: "/"))
        for byte in text.utf8 { mix(byte) }
    }

    /// Mixes in bytes, as they are.
    public mutating func combine(bytes: UnsafeBufferPointer<UInt8>.SubSequence) {
        for byte in bytes { mix(byte) }
    }

    /// Mixes in a number's eight bytes, low byte first.
    public mutating func combine(_ number: UInt64) {
        var rest = number
        for _ in 0..<8 {
            mix(UInt8(truncatingIfNeeded: rest))
            rest >>= 8
        }
    }

    private mutating func mix(_ byte: UInt8) {
        value ^= UInt64(byte)
        value = value &* 0x0000_0100_0000_01B3
    }

    /// SplitMix64's finaliser: every bit of `value` moves every bit of the result, so sums of mixed values do not
    /// cancel out (order-free digests: `PlanDigests`, validation's region keys).
    @inline(__always)
    static func mix(_ value: UInt64) -> UInt64 {
        var z = value &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Sixteen hex digits.
    public var hex: String {
        String(unsafeUninitializedCapacity: 16) { buffer in
            Self.writeHex(value, into: buffer, at: 0)
            return 16
        }
    }

    /// Writes `value`'s 16 hex digits (lower case) into `buffer` from `offset`.
    @inline(__always)
    package static func writeHex(_ value: UInt64, into buffer: UnsafeMutableBufferPointer<UInt8>, at offset: Int) {
        for index in 0..<16 {
            let nibble = UInt8(truncatingIfNeeded: value >> (60 - 4 * UInt64(index))) & 0x0F
            buffer[offset + index] = nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
        }
    }
}
