internal import CLibYAML

/// A YAML document's events, as libyaml's event parser gives them. Owns the parser and a private copy of the input.
///
/// A document in the plain block style manifests use is scanned by `BlockSubsetScanner`, which gives the same events
/// (marks included) in a fraction of libyaml's time; anything else, and every error, is libyaml's.
///
/// Not `Sendable`: one parser is driven by one thread at a time (files are parsed in parallel, each with its own).
public final class EventParser {
    private var parser = yaml_parser_t()
    private let input: UnsafeMutableBufferPointer<UInt8>
    private var finished = false
    /// The whole stream's events when the block-style scanner took the document; nil when libyaml parses it.
    private var scanned: [Event]?
    private var scannedIndex = 0

    /// Starts parsing `bytes` (UTF-8, UTF-16 with a BOM is also accepted by libyaml). With `libyamlOnly`, libyaml
    /// parses every document (the floor benchmark measures libyaml itself).
    public init(bytes: some Collection<UInt8>, libyamlOnly: Bool = false) {
        input = .allocate(capacity: max(bytes.count, 1))
        _ = input.initialize(from: bytes)
        if !libyamlOnly {
            scanned = BlockSubsetScanner.events(in: UnsafeBufferPointer(rebasing: input[0..<bytes.count]))
        }
        yaml_parser_initialize(&parser)
        yaml_parser_set_input_string(&parser, input.baseAddress, bytes.count)
    }

    deinit {
        yaml_parser_delete(&parser)
        input.deallocate()
    }

    /// The rest of the stream's events, when the block-style scanner took the document (they hold no aliases or
    /// anchors, and nest at most 64 deep); the parser is finished then. Nil when libyaml parses the document.
    func takeScanned() -> ArraySlice<Event>? {
        guard let scanned else { return nil }
        defer {
            self.scanned = nil
            finished = true
        }
        return scanned[scannedIndex...]
    }

    /// The next event; after `streamEnd` keeps returning `streamEnd`.
    public func next() throws(YAMLError) -> Event {
        if finished { return Event(kind: .streamEnd, mark: Mark(line: 1, column: 1)) }
        if let scanned {
            let event = scanned[scannedIndex]
            if event.kind == .streamEnd {
                finished = true
                self.scanned = nil
            } else {
                scannedIndex += 1
            }
            return event
        }
        var event = yaml_event_t()
        guard yaml_parser_parse(&parser, &event) == 1 else {
            throw syntaxError()
        }
        defer { yaml_event_delete(&event) }
        let mark = Mark(line: Int32(event.start_mark.line) + 1, column: Int32(event.start_mark.column) + 1)
        switch event.type {
        case YAML_STREAM_START_EVENT:
            return Event(kind: .streamStart, mark: mark)
        case YAML_STREAM_END_EVENT:
            finished = true
            return Event(kind: .streamEnd, mark: mark)
        case YAML_DOCUMENT_START_EVENT:
            return Event(kind: .documentStart, mark: mark)
        case YAML_DOCUMENT_END_EVENT:
            return Event(kind: .documentEnd, mark: mark)
        case YAML_ALIAS_EVENT:
            return Event(kind: .alias, mark: mark, value: Self.string(event.data.alias.anchor))
        case YAML_SCALAR_EVENT:
            let scalar = event.data.scalar
            let text = String(
                decoding: UnsafeBufferPointer(start: scalar.value, count: scalar.length), as: UTF8.self)
            return Event(
                kind: .scalar, mark: mark, value: text,
                anchor: Self.optionalString(scalar.anchor), tag: Self.optionalString(scalar.tag),
                style: Self.style(scalar.style))
        case YAML_SEQUENCE_START_EVENT:
            let start = event.data.sequence_start
            return Event(kind: .sequenceStart, mark: mark,
                         anchor: Self.optionalString(start.anchor), tag: Self.optionalString(start.tag))
        case YAML_SEQUENCE_END_EVENT:
            return Event(kind: .sequenceEnd, mark: mark)
        case YAML_MAPPING_START_EVENT:
            let start = event.data.mapping_start
            return Event(kind: .mappingStart, mark: mark,
                         anchor: Self.optionalString(start.anchor), tag: Self.optionalString(start.tag))
        case YAML_MAPPING_END_EVENT:
            return Event(kind: .mappingEnd, mark: mark)
        default:
            throw YAMLError(message: "unexpected libyaml event \(event.type.rawValue)", mark: mark)
        }
    }

    private func syntaxError() -> YAMLError {
        let problem = parser.problem.map { String(cString: $0) } ?? "invalid YAML"
        let context = parser.context.map { String(cString: $0) }
        var mark = parser.problem_mark
        // libyaml reports reader errors (bad encoding) by byte offset only, often just past the bad byte:
        // find the first invalid UTF-8 sequence ourselves to point at it.
        if parser.error == YAML_READER_ERROR {
            let bytes = UnsafeBufferPointer(input)
            let offset = UTF8Scan.firstInvalidOffset(in: bytes) ?? Int(parser.problem_offset)
            mark = Self.mark(atOffset: offset, in: bytes)
            let message = offset < bytes.count
                ? "file is not valid UTF-8: byte 0x\(String(bytes[offset], radix: 16, uppercase: true)) cannot appear here"
                : "file is not valid UTF-8: \(problem)"
            return YAMLError(
                message: message,
                mark: Mark(line: Int32(mark.line) + 1, column: Int32(mark.column) + 1),
                hint: "manifests must be UTF-8 text; re-save the file as UTF-8 (it looks like Latin-1 or another legacy encoding)")
        }
        let message = context.map { "\($0): \(problem)" } ?? problem
        // At the end of the input libyaml moves to a line of its own past the last one: point at where the input ends.
        let end = Self.mark(atOffset: input.count, in: UnsafeBufferPointer(input))
        if (mark.line, mark.column) > (end.line, end.column) { mark = end }
        return YAMLError(
            message: message,
            mark: Mark(line: Int32(mark.line) + 1, column: Int32(mark.column) + 1))
    }

    /// The line and column of byte `offset`, counting line breaks as libyaml does ("\r\n", "\r", "\n", NEL, LS, PS).
    private static func mark(atOffset offset: Int, in bytes: UnsafeBufferPointer<UInt8>) -> yaml_mark_t {
        var line = 0
        var column = 0
        var index = 0
        let end = min(offset, bytes.count)
        while index < end {
            let byte = bytes[index]
            var breakLength = 0
            if byte == UInt8(ascii: "\n") {
                breakLength = 1
            } else if byte == UInt8(ascii: "\r") {
                breakLength = index + 1 < bytes.count && bytes[index + 1] == UInt8(ascii: "\n") ? 2 : 1
            } else if byte == 0xC2, index + 1 < bytes.count, bytes[index + 1] == 0x85 {
                breakLength = 2
            } else if byte == 0xE2, index + 2 < bytes.count, bytes[index + 1] == 0x80, bytes[index + 2] == 0xA8 || bytes[index + 2] == 0xA9 {
                breakLength = 3
            }
            if breakLength > 0 {
                line += 1
                column = 0
                index += breakLength
            } else {
                if byte & 0xC0 != 0x80 { column += 1 }
                index += 1
            }
        }
        return yaml_mark_t(index: offset, line: line, column: column)
    }

    private static func string(_ pointer: UnsafeMutablePointer<yaml_char_t>?) -> String {
        pointer.map { String(cString: $0) } ?? ""
    }

    private static func optionalString(_ pointer: UnsafeMutablePointer<yaml_char_t>?) -> String? {
        pointer.map { String(cString: $0) }
    }

    private static func style(_ style: yaml_scalar_style_t) -> ScalarStyle {
        switch style {
        case YAML_SINGLE_QUOTED_SCALAR_STYLE: .singleQuoted
        case YAML_DOUBLE_QUOTED_SCALAR_STYLE: .doubleQuoted
        case YAML_LITERAL_SCALAR_STYLE: .literal
        case YAML_FOLDED_SCALAR_STYLE: .folded
        default: .plain
        }
    }
}
