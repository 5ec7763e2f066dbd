/// An amount of memory or storage. Written with a unit: `512MiB`, `8GiB`, `2TB` (SI) or `2TiB` (binary).
public struct ByteSize: Sendable, Hashable, Comparable, TextCodable {
    public static let textKind = "size"
    /// Bytes.
    public var bytes: UInt64

    /// Creates a size in bytes.
    public init(bytes: UInt64) { self.bytes = bytes }

    /// Whole mebibytes (rounded down).
    public var mebibytes: UInt64 { bytes >> 20 }
    /// Whole gibibytes (rounded down).
    public var gibibytes: UInt64 { bytes >> 30 }

    private static let units: [(suffix: String, factor: UInt64)] = [
        ("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30), ("TiB", 1 << 40), ("PiB", 1 << 50),
        ("KB", 1_000), ("MB", 1_000_000), ("GB", 1_000_000_000), ("TB", 1_000_000_000_000),
        ("PB", 1_000_000_000_000_000), ("B", 1),
    ]

    /// Parses `<number><unit>`; the number may have a fractional part (`1.5TiB`). Nil when malformed.
    public init?(parsing text: String) {
        let trimmed = text.trimmingSpaces
        guard let unit = Self.units.first(where: { trimmed.hasSuffix($0.suffix) }) else { return nil }
        let number = trimmed.dropLast(unit.suffix.count).trimmingSpaces
        guard let amount = FixedPoint(parsing: number, scale: 6), amount.units >= 0 else { return nil }
        // whole × factor + fraction × factor / 10^6, each part checked, so 16EB-scale values don't wrap.
        let whole = UInt64(amount.units) / 1_000_000
        let fraction = UInt64(amount.units) % 1_000_000
        let (wholeBytes, overflow1) = whole.multipliedReportingOverflow(by: unit.factor)
        let fractionBytes = fraction.multipliedFullWidth(by: unit.factor)
        let (fractionPart, _) = UInt64(1_000_000).dividingFullWidth(fractionBytes)
        let (total, overflow2) = wholeBytes.addingReportingOverflow(fractionPart)
        guard !overflow1, !overflow2 else { return nil }
        bytes = total
    }

    /// Orders by size.
    public static func < (lhs: ByteSize, rhs: ByteSize) -> Bool { lhs.bytes < rhs.bytes }

    /// The shortest exact form, binary units preferred on ties (`2TiB`, `20TB`, `1536MiB`), else bytes.
    public var description: String {
        let binary: [(String, UInt64)] = [("PiB", 1 << 50), ("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)]
        let decimal: [(String, UInt64)] = [("PB", 1_000_000_000_000_000), ("TB", 1_000_000_000_000), ("GB", 1_000_000_000), ("MB", 1_000_000), ("KB", 1_000)]
        let candidates = (binary + decimal).compactMap { unit, factor in
            bytes >= factor && bytes % factor == 0 ? "\(bytes / factor)\(unit)" : nil
        }
        return candidates.min { $0.count < $1.count } ?? "\(bytes)B"
    }

    /// For people: the largest binary unit it fills, to one decimal where that is not exact (`23.5 GiB`, `512 MiB`,
    /// `800 B`), where `description` is the exact manifest form (`24683792KiB`).
    public var readable: String {
        let units: [(String, UInt64)] = [("PiB", 1 << 50), ("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)]
        guard let (unit, factor) = units.first(where: { bytes >= $0.1 }) else { return "\(bytes) B" }
        if bytes % factor == 0 { return "\(bytes / factor) \(unit)" }
        let tenths = (bytes * 10 + factor / 2) / factor
        return "\(tenths / 10).\(tenths % 10) \(unit)"
    }

}

extension StringProtocol {
    /// The text without leading and trailing spaces and tabs.
    var trimmingSpaces: String {
        var slice = Substring(self)
        while let first = slice.first, first == " " || first == "\t" { slice.removeFirst() }
        while let last = slice.last, last == " " || last == "\t" { slice.removeLast() }
        return String(slice)
    }
}

extension ByteSize {
    /// A size given in KiB (as libvirt reports memory), saturating at the largest size.
    public init(kib: UInt64) {
        let (bytes, overflow) = kib.multipliedReportingOverflow(by: 1024)
        self.init(bytes: overflow ? .max : bytes)
    }
}

/// Saturating arithmetic for capacity sums: manifests may declare sizes near the type's limit (8000 PiB nodes, a 4 PiB
/// flavor), and a sum past it means "more than anything can hold", never a trap.
extension UInt64 {
    /// `self + other`, or `.max` when that overflows.
    public func saturatingAdd(_ other: UInt64) -> UInt64 {
        let (sum, overflow) = addingReportingOverflow(other)
        return overflow ? .max : sum
    }

    /// `value` rounded down, clamped to 0…`.max` (NaN is 0).
    public init(saturating value: Double) {
        self = value.isNaN || value <= 0 ? 0 : value >= 18_446_744_073_709_551_615.0 ? .max : UInt64(value)
    }
}

extension Int {
    /// `self + other`, or `.max`/`.min` when that overflows.
    public func saturatingAdd(_ other: Int) -> Int {
        let (sum, overflow) = addingReportingOverflow(other)
        return overflow ? (other > 0 ? .max : .min) : sum
    }

    /// `value` rounded toward zero, clamped to `Int`'s range (NaN is 0).
    public init(saturating value: Double) {
        self = value.isNaN ? 0 : value >= 9_223_372_036_854_775_807.0 ? .max : value <= -9_223_372_036_854_775_808.0 ? .min : Int(value)
    }
}
