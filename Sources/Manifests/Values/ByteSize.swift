/// An amount of memory or storage. Written with a unit: `512MiB`, `8GiB`, `2TB` (SI) or `2TiB` (binary).
public struct ByteSize: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
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
        let (product, overflow) = UInt64(amount.units).multipliedReportingOverflow(by: unit.factor)
        guard !overflow else { return nil }
        bytes = product / 1_000_000
    }

    /// Orders by size.
    public static func < (lhs: ByteSize, rhs: ByteSize) -> Bool { lhs.bytes < rhs.bytes }

    /// The largest binary unit that states it exactly (`2TiB`, `1536MiB`), or bytes.
    public var description: String {
        for (suffix, factor) in [("PiB", UInt64(1) << 50), ("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)]
        where bytes >= factor && bytes % factor == 0 {
            return "\(bytes / factor)\(suffix)"
        }
        for (suffix, factor) in [("PB", UInt64(1_000_000_000_000_000)), ("TB", 1_000_000_000_000), ("GB", 1_000_000_000), ("MB", 1_000_000)]
        where bytes >= factor && bytes % factor == 0 {
            return "\(bytes / factor)\(suffix)"
        }
        return "\(bytes)B"
    }

    /// Encodes as text (`2TB`) so JSON output round-trips through the manifest syntax.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }

    /// Decodes the text form.
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let size = ByteSize(parsing: text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "bad size \(text)"))
        }
        self = size
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
