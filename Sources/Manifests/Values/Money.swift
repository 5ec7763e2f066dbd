/// An amount of money, exact to a millionth of the currency unit (prices like 0.17 per hour add up without drift).
public struct Money: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    /// The amount in millionths.
    public var micros: Int64

    /// Creates an amount from millionths.
    public init(micros: Int64) { self.micros = micros }

    /// Parses `0.17`, `400`, `3.333333`; nil when malformed or finer than a millionth.
    public init?(parsing text: String) {
        guard let value = FixedPoint(parsing: text.trimmingSpaces, scale: 6) else { return nil }
        micros = value.units
    }

    /// Orders by amount.
    public static func < (lhs: Money, rhs: Money) -> Bool { lhs.micros < rhs.micros }

    /// `0.17`, `400.00`.
    public var description: String { FixedPoint(units: micros, scale: 6).formatted(minimumFractionDigits: 2) }

    /// Encodes as a decimal string, so no precision is lost in JSON.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }

    /// Decodes the string form.
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let money = Money(parsing: text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "bad amount \(text)"))
        }
        self = money
    }
}
