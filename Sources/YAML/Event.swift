/// How a scalar was written; decides which types it may resolve to (a quoted `"8"` is never an integer).
public enum ScalarStyle: Sendable, Hashable {
    case plain, singleQuoted, doubleQuoted, literal, folded

    /// Whether the scalar was written without quotes or block indicators.
    public var isPlain: Bool { self == .plain }
}

/// One event of libyaml's parser, copied out of C memory, with the mark where it starts.
public struct Event: Sendable {
    /// What the event is.
    public enum Kind: Sendable, Hashable {
        case streamStart, streamEnd, documentStart, documentEnd
        case alias, scalar, sequenceStart, sequenceEnd, mappingStart, mappingEnd
    }

    /// What the event is.
    public var kind: Kind
    /// Where the event starts.
    public var mark: Mark
    /// The scalar's text, or the alias' anchor name; empty otherwise.
    public var value: String
    /// The scalar style (plain for non-scalars).
    public var style: ScalarStyle
    /// Anchor and tag, which manifests rarely use: kept out of line so that copying an event
    /// (which decoding does for every one) retains one string, not three.
    private var properties: Properties?

    /// An event's rarely present anchor and tag.
    final class Properties: Sendable {
        let anchor: String?
        let tag: String?

        init(anchor: String?, tag: String?) {
            self.anchor = anchor
            self.tag = tag
        }
    }

    /// The anchor declared on a scalar, sequence or mapping, if any.
    public var anchor: String? { properties?.anchor }
    /// An explicit tag (`!!str`, `!foo`) if one was written.
    public var tag: String? { properties?.tag }

    /// Creates an event.
    public init(kind: Kind, mark: Mark, value: String = "", anchor: String? = nil, tag: String? = nil, style: ScalarStyle = .plain) {
        self.kind = kind
        self.mark = mark
        self.value = value
        self.style = style
        self.properties = anchor == nil && tag == nil ? nil : Properties(anchor: anchor, tag: tag)
    }

    /// Whether this event opens a collection (sequence or mapping).
    public var opensCollection: Bool { kind == .sequenceStart || kind == .mappingStart }
    /// Whether this event closes a collection.
    public var closesCollection: Bool { kind == .sequenceEnd || kind == .mappingEnd }
}
