/// An amount of money, exact to a millionth of the currency unit (prices like 0.17 per hour add up without drift).
///
/// Amounts are held in 128 bits: a single amount that comes in (a deposit, a coupon, a price) is bounded by `limit`,
/// so sums of any ledger StackLab accepts, and of one that already holds amounts recorded before the bound (up to
/// 9.2 × 10^12 each), never overflow: a damaged ledger is read, reported and fixable, never a crash.
public struct Money: Sendable, Hashable, Comparable, TextCodable {
    public static let textKind = "amount"
    /// The amount in millionths.
    public var micros: Int128

    /// Creates an amount from millionths.
    public init(micros: Int128) { self.micros = micros }

    /// Zero.
    public static let zero = Money(micros: Int128(0))

    /// The largest amount StackLab takes in at its edges (a deposit, a coupon, a price): one billion currency units.
    /// Anything larger is refused with an error naming this bound.
    public static let limit = Money(micros: Int128(1_000_000_000) * 1_000_000)

    /// Whether the amount is within `limit` either way.
    public var isWithinLimit: Bool { micros.magnitude <= Self.limit.micros.magnitude }

    /// The amount as the ledger stores it (64 bits); nil past that.
    public var storedMicros: Int64? { Int64(exactly: micros) }

    /// Parses `0.17`, `400`, `3.333333`; nil when malformed or finer than a millionth.
    public init?(parsing text: String) {
        var digits = Substring(text.trimmingSpaces)
        var negative = false
        if digits.first == "-" || digits.first == "+" {
            negative = digits.first == "-"
            digits.removeFirst()
        }
        let parts = digits.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        let whole = parts[0], fraction = parts.count == 2 ? parts[1] : ""
        guard fraction.count <= 6, !(whole + fraction).isEmpty, (whole + fraction).allSatisfy(\.isASCIIDigit) else { return nil }
        var value: Int128 = 0
        for character in whole + fraction + String(repeating: "0", count: 6 - fraction.count) {
            let (times, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (plus, overflow2) = times.addingReportingOverflow(Int128(character.asciiValue! - 48))
            guard !overflow1, !overflow2 else { return nil }
            value = plus
        }
        micros = negative ? -value : value
    }

    /// Orders by amount.
    public static func < (lhs: Money, rhs: Money) -> Bool { lhs.micros < rhs.micros }

    /// The sum.
    public static func + (lhs: Money, rhs: Money) -> Money { Money(micros: lhs.micros + rhs.micros) }

    /// The difference.
    public static func - (lhs: Money, rhs: Money) -> Money { Money(micros: lhs.micros - rhs.micros) }

    /// The negation.
    public static prefix func - (amount: Money) -> Money { Money(micros: -amount.micros) }

    /// `0.17`, `400.00`.
    public var description: String {
        let magnitude = micros.magnitude
        var fraction = String(magnitude % 1_000_000)
        fraction = String(repeating: "0", count: 6 - fraction.count) + fraction
        while fraction.count > 2, fraction.hasSuffix("0") { fraction.removeLast() }
        return "\(micros < 0 ? "-" : "")\(magnitude / 1_000_000).\(fraction)"
    }

}
