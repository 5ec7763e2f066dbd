/// A value written as its text form wherever it is encoded (JSON output, saved plans, stored records), so that what
/// StackLab prints reads as what a manifest says, and read back only through `init(parsing:)`.
public protocol TextCodable: Codable, CustomStringConvertible {
    /// The value `text` names; nil when it names none.
    init?(parsing text: String)
    /// What a value is, for the error when text does not parse ("address", "size").
    static var textKind: String { get }
}

extension TextCodable {
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let value = Self(parsing: text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "bad \(Self.textKind) \(text)"))
        }
        self = value
    }
}
