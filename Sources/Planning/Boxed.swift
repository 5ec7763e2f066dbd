/// A value held by reference, compared, hashed and encoded as the value. For a field that is seldom set in a type a
/// long-running planner keeps by the hundred thousand (a domain's origin while it moves): held as `Boxed?`, it costs
/// 8 bytes where it is not set, not its own size.
final class Boxed<Value: Sendable & Hashable & Codable>: Sendable, Hashable, Codable {
    let value: Value

    init(_ value: Value) {
        self.value = value
    }

    static func == (lhs: Boxed, rhs: Boxed) -> Bool { lhs.value == rhs.value }

    func hash(into hasher: inout Hasher) {
        hasher.combine(value)
    }

    /// Read as the value is.
    init(from decoder: any Decoder) throws {
        value = try Value(from: decoder)
    }

    /// Written as the value is.
    func encode(to encoder: any Encoder) throws {
        try value.encode(to: encoder)
    }
}
