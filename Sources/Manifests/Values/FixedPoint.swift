/// An exact decimal number with a fixed number of fractional digits, parsed from text without floating point.
public struct FixedPoint: Sendable, Hashable, Comparable {
    /// The value times 10^scale.
    public var units: Int64
    /// Number of fractional digits kept.
    public var scale: Int

    /// Creates a value from scaled units.
    public init(units: Int64, scale: Int) {
        self.units = units
        self.scale = scale
    }

    /// Parses `-12.345`; nil when malformed, when it has more fractional digits than `scale`, or on overflow.
    public init?(parsing text: some StringProtocol, scale: Int) {
        var digits = Substring(text)
        var negative = false
        if digits.first == "-" || digits.first == "+" {
            negative = digits.first == "-"
            digits.removeFirst()
        }
        let parts = digits.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        guard let whole = parts.first, !whole.isEmpty || parts.count == 2 else { return nil }
        let fraction = parts.count == 2 ? parts[1] : ""
        guard fraction.count <= scale, (whole + fraction).allSatisfy(\.isASCIIDigit), !(whole + fraction).isEmpty else { return nil }
        var value: Int64 = 0
        for character in whole + fraction + String(repeating: "0", count: scale - fraction.count) {
            let (times, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (plus, overflow2) = times.addingReportingOverflow(Int64(character.asciiValue! - 48))
            guard !overflow1, !overflow2 else { return nil }
            value = plus
        }
        units = negative ? -value : value
        self.scale = scale
    }

    /// The value as a double (for ratios and weights in arithmetic and JSON).
    public var doubleValue: Double {
        var divisor = 1.0
        for _ in 0..<scale { divisor *= 10 }
        return Double(units) / divisor
    }

    /// Orders by value (same scale assumed).
    public static func < (lhs: FixedPoint, rhs: FixedPoint) -> Bool { lhs.units < rhs.units }

    /// Decimal text with trailing zeros removed (at least two fractional digits for money-like scales).
    public func formatted(minimumFractionDigits: Int = 0) -> String {
        var divisor: Int64 = 1
        for _ in 0..<scale { divisor *= 10 }
        let magnitude = units.magnitude
        let whole = magnitude / UInt64(divisor)
        var fraction = String(magnitude % UInt64(divisor))
        fraction = String(repeating: "0", count: scale - fraction.count) + fraction
        while fraction.count > minimumFractionDigits, fraction.hasSuffix("0") { fraction.removeLast() }
        let sign = units < 0 ? "-" : ""
        return fraction.isEmpty ? "\(sign)\(whole)" : "\(sign)\(whole).\(fraction)"
    }
}

extension Character {
    /// An ASCII 0-9 digit.
    var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}

extension FixedPoint: Encodable {
    /// Encodes as a JSON number.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(doubleValue)
    }
}
