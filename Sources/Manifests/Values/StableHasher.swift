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

    /// Sixteen hex digits.
    public var hex: String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}
