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
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}
