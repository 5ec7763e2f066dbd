import YAML

/// Decodes one file's YAML events straight into typed values, resolving each scalar by the type the schema
/// expects at that position. Type problems become diagnostics (the value is skipped and decoding goes on);
/// only syntax errors and limits (`YAMLError`) stop the file.
final class ManifestDecoder {
    let reader: EventReader
    let file: FileID
    var diagnostics: [Diagnostic] = []
    /// Names of documents left out of the model for their errors (a misspelled field, a missing one): what names
    /// them is not reported again as naming something undeclared.
    var lostNames: [String] = []

    init(reader: EventReader, file: FileID) {
        self.reader = reader
        self.file = file
    }

    // MARK: Locations and diagnostics

    func location(_ mark: Mark) -> SourceLocation {
        SourceLocation(file: file, line: mark.line, column: mark.column)
    }

    func error(_ message: String, at mark: Mark, hint: String? = nil) {
        diagnostics.append(.error(message, at: location(mark), hint: hint))
    }

    func discardDiagnostics(after count: Int) {
        diagnostics.removeSubrange(count...)
    }

    func report(_ diagnostic: Diagnostic) {
        diagnostics.append(diagnostic)
    }

    func warning(_ message: String, at mark: Mark, hint: String? = nil) {
        diagnostics.append(.warning(message, at: location(mark), hint: hint))
    }

    // MARK: Structure

    /// Where a decoded mapping started.
    struct Mapping {
        var mark: Mark
    }

    /// Keys of the mappings being decoded (innermost last), reused so no mapping allocates its own list.
    private var keyStack: [(key: String, mark: Mark)] = []

    /// Decodes a mapping, calling `field` once per key with the key's text and mark; `field` must consume the value.
    /// Reports duplicate and non-scalar keys, and each of `required` that the mapping lacks (a present but invalid
    /// field is reported by its own decoder). Returns the mapping, or nil (after a diagnostic) if the node is not one.
    @discardableResult
    func mapping(_ what: @autoclosure () -> String, required: [String] = [],
                 _ field: (Located<String>) throws(YAMLError) -> Void) throws(YAMLError) -> Mapping? {
        guard try reader.peekKind() == .mappingStart else {
            let start = try reader.next()
            if Self.isNull(start) {
                for name in required { error("\(what()) is missing required field '\(name)'", at: start.mark) }
                return Mapping(mark: start.mark)
            }
            error("expected a mapping for \(what()), found \(Self.describe(start))", at: start.mark)
            if start.opensCollection { try reader.skipRest(of: start) }
            return nil
        }
        let start = try reader.next()
        let base = keyStack.count
        defer { keyStack.removeSubrange(base...) }
        // Small mappings search their keys; a large one (160,000 keys would be quadratic) indexes them.
        var index: [String: Mark]?
        while true {
            let kind = try reader.peekKind()
            if kind == .mappingEnd {
                _ = try reader.next()
                for name in required where !keyStack[base...].contains(where: { $0.key == name }) {
                    // A misspelling of it (`flavr:`) was reported as an unknown field with "did you mean": once is enough.
                    if keyStack[base...].contains(where: { Self.closest(to: $0.key, in: [name]) == name }) { continue }
                    error("\(what()) is missing required field '\(name)'", at: start.mark)
                }
                return Mapping(mark: start.mark)
            }
            let key = try reader.next()
            guard kind == .scalar else {
                error("mapping keys in \(what()) must be plain text, found \(Self.describe(key))", at: key.mark)
                if key.opensCollection { try reader.skipRest(of: key) }
                try reader.skipNode()
                continue
            }
            if index == nil, keyStack.count - base > 32 {
                index = Dictionary(keyStack[base...].map { ($0.key, $0.mark) }, uniquingKeysWith: { first, _ in first })
            }
            let first = index.map { $0[key.value] } ?? keyStack[base...].first(where: { $0.key == key.value })?.mark
            if let first {
                error("duplicate key '\(key.value)' in \(what())", at: key.mark,
                      hint: "'\(key.value)' is already set at line \(first.line); YAML keeps only one, so remove one of them")
                try reader.skipNode()
                continue
            }
            keyStack.append((key.value, key.mark))
            index?[key.value] = key.mark
            try field(Located(key.value, at: location(key.mark)))
        }
    }

    /// Decodes a sequence, calling `element` for each item (which must consume it).
    /// A single scalar where a list is expected is an error. Returns the sequence's mark, or nil.
    @discardableResult
    func sequence(_ what: @autoclosure () -> String, _ element: () throws(YAMLError) -> Void) throws(YAMLError) -> Mark? {
        guard try reader.peekKind() == .sequenceStart else {
            let start = try reader.next()
            if Self.isNull(start) { return start.mark }
            error("expected a list for \(what()), found \(Self.describe(start))", at: start.mark,
                  hint: start.kind == .scalar ? "write it as a list: [\(start.value)]" : nil)
            if start.opensCollection { try reader.skipRest(of: start) }
            return nil
        }
        let start = try reader.next()
        while try reader.peekKind() != .sequenceEnd {
            try element()
        }
        _ = try reader.next()
        return start.mark
    }

    /// Decodes a list whose items each decode to one value (items that fail are left out, with diagnostics).
    func list<T>(_ what: @autoclosure () -> String, _ item: () throws(YAMLError) -> T?) throws(YAMLError) -> Located<[T]>? {
        var items: [T] = []
        guard let mark = try sequence(what(), { () throws(YAMLError) in
            if let value = try item() { items.append(value) }
        }) else { return nil }
        return Located(items, at: location(mark))
    }

    /// Reports an unknown field (suggesting the closest known one) and skips its value.
    func unknownField(_ key: Located<String>, in what: @autoclosure () -> String, known: [String]) throws(YAMLError) {
        let mark = Mark(line: key.location.line, column: key.location.column)
        var hint = "known fields: \(known.joined(separator: ", "))"
        if let close = Self.closest(to: key.value, in: known) { hint = "did you mean '\(close)'?" }
        error("unknown field '\(key.value)' in \(what())", at: mark, hint: hint)
        try reader.skipNode()
    }

    // MARK: Scalars

    /// The next node as a scalar event, or nil (after a diagnostic) for a collection. Null scalars are returned.
    func scalar(_ what: @autoclosure () -> String) throws(YAMLError) -> Event? {
        let event = try reader.next()
        guard event.kind == .scalar else {
            error("expected \(what()), found \(Self.describe(event))", at: event.mark)
            if event.opensCollection { try reader.skipRest(of: event) }
            return nil
        }
        return event
    }

    /// A string (any scalar); null is reported as a missing value.
    func string(_ field: String) throws(YAMLError) -> Located<String>? {
        guard let event = try scalar("a string for '\(field)'") else { return nil }
        if Self.isNull(event) {
            error("'\(field)' has no value", at: event.mark, hint: "write a value after '\(field):' or leave the field out")
            return nil
        }
        return Located(event.value, at: location(event.mark))
    }

    /// A name: a string of letters, digits, '.', '-', '_' that starts with a letter or digit.
    func name(_ field: String) throws(YAMLError) -> Located<String>? {
        guard let text = try string(field) else { return nil }
        guard Self.isValidName(text.value) else {
            diagnostics.append(.error(
                "'\(text.value)' is not a valid name for '\(field)'", at: text.location,
                hint: "names use letters, digits, '.', '-' and '_', start with a letter or digit, and are at most 63 characters"))
            return nil
        }
        return text
    }

    /// An integer within `range` (plain scalars only: a quoted "8" is a string).
    func int(_ field: String, in range: ClosedRange<Int> = Int.min...Int.max) throws(YAMLError) -> Located<Int>? {
        guard let event = try scalar("an integer for '\(field)'") else { return nil }
        guard event.style.isPlain, let value = Int(event.value) else {
            error("expected an integer for '\(field)', found \(Self.describe(event))", at: event.mark,
                  hint: event.style.isPlain ? nil : "remove the quotes")
            return nil
        }
        guard range.contains(value) else {
            error("'\(field)' must be between \(range.lowerBound) and \(range.upperBound), found \(value)", at: event.mark)
            return nil
        }
        return Located(value, at: location(event.mark))
    }

    /// A decimal number (plain scalars only), kept exact as fixed point with `scale` fractional digits.
    func decimal(_ field: String, scale: Int = 6) throws(YAMLError) -> Located<FixedPoint>? {
        guard let event = try scalar("a number for '\(field)'") else { return nil }
        guard event.style.isPlain, let value = FixedPoint(parsing: event.value, scale: scale) else {
            error("expected a number for '\(field)', found \(Self.describe(event))", at: event.mark,
                  hint: event.style.isPlain ? nil : "remove the quotes")
            return nil
        }
        return Located(value, at: location(event.mark))
    }

    /// `true` or `false` (plain only; YAML 1.1's yes/no/on/off are refused as ambiguous).
    func bool(_ field: String) throws(YAMLError) -> Located<Bool>? {
        guard let event = try scalar("true or false for '\(field)'") else { return nil }
        switch (event.style.isPlain, event.value) {
        case (true, "true"), (true, "True"), (true, "TRUE"): return Located(true, at: location(event.mark))
        case (true, "false"), (true, "False"), (true, "FALSE"): return Located(false, at: location(event.mark))
        default:
            error("expected true or false for '\(field)', found \(Self.describe(event))", at: event.mark)
            return nil
        }
    }

    /// One of a fixed set of words.
    func choice<T: RawRepresentable & CaseIterable & Sendable>(_ field: String, _ type: T.Type) throws(YAMLError) -> Located<T>?
    where T.RawValue == String {
        guard let text = try string(field) else { return nil }
        guard let value = T(rawValue: text.value) else {
            let options = T.allCases.map(\.rawValue)
            let hint = Self.closest(to: text.value, in: options).map { "did you mean '\($0)'?" }
                ?? "use one of: \(options.joined(separator: ", "))"
            diagnostics.append(.error("'\(text.value)' is not a valid value for '\(field)'", at: text.location, hint: hint))
            return nil
        }
        return Located(value, at: text.location)
    }

    /// A scalar parsed by `parse`; on failure reports `expected` (e.g. "a size like 8GiB").
    func parsed<T: Sendable>(_ field: String, expected: String, hint: String? = nil, _ parse: (String) -> T?) throws(YAMLError) -> Located<T>? {
        guard let text = try string(field) else { return nil }
        guard let value = parse(text.value) else {
            diagnostics.append(.error("expected \(expected) for '\(field)', found '\(text.value)'", at: text.location, hint: hint))
            return nil
        }
        return Located(value, at: text.location)
    }

    /// A size with a unit: `512MiB`, `2TB`.
    func byteSize(_ field: String) throws(YAMLError) -> Located<ByteSize>? {
        try parsed(field, expected: "a size with a unit", hint: "write e.g. 512MiB, 8GiB or 2TB") { ByteSize(parsing: $0) }
    }

    /// A size with a unit, at least `minimum`.
    func byteSize(_ field: String, atLeast minimum: ByteSize) throws(YAMLError) -> Located<ByteSize>? {
        guard let size = try byteSize(field) else { return nil }
        guard size.value.bytes >= minimum.bytes else {
            diagnostics.append(.error("'\(field)' must be at least \(minimum), found \(size.value)", at: size.location))
            return nil
        }
        return size
    }

    /// An amount of money: `0.17`.
    func money(_ field: String) throws(YAMLError) -> Located<Money>? {
        guard let event = try scalar("an amount for '\(field)'") else { return nil }
        guard let value = Money(parsing: event.value), value.micros >= 0 else {
            error("expected a non-negative amount for '\(field)', found \(Self.describe(event))", at: event.mark,
                  hint: "write e.g. 0.17 (at most six decimal places)")
            return nil
        }
        guard value.isWithinLimit else {
            error("the amount for '\(field)' is \(value), more than StackLab accepts (\(Money.limit))", at: event.mark,
                  hint: "amounts are at most one billion currency units")
            return nil
        }
        return Located(value, at: location(event.mark))
    }

    /// An IPv4 address.
    func ipv4(_ field: String) throws(YAMLError) -> Located<IPv4Address>? {
        try parsed(field, expected: "an IPv4 address", hint: "write e.g. 10.10.0.5") { IPv4Address(parsing: $0) }
    }

    /// An IPv4 network in CIDR notation; host bits must be zero.
    func cidr(_ field: String) throws(YAMLError) -> Located<IPv4Network>? {
        guard let text = try string(field) else { return nil }
        switch IPv4Network.parse(text.value) {
        case .success(let network):
            return Located(network, at: text.location)
        case .failure(.malformed):
            diagnostics.append(.error("'\(text.value)' is not a valid CIDR for '\(field)'", at: text.location,
                                      hint: "write an IPv4 network like 10.10.0.0/16"))
        case .failure(.hostBitsSet(let suggestion)):
            diagnostics.append(.error("'\(text.value)' has host bits set for '\(field)'", at: text.location,
                                      hint: "did you mean '\(suggestion)'?"))
        }
        return nil
    }

    /// A port (`22`) or range (`8000-8100`).
    func portRange(_ field: String) throws(YAMLError) -> Located<PortRange>? {
        guard let event = try scalar("a port for '\(field)'") else { return nil }
        guard let range = PortRange(parsing: event.value) else {
            error("expected a port or port range for '\(field)', found \(Self.describe(event))", at: event.mark,
                  hint: "write a port 1-65535 or a range like 8000-8100")
            return nil
        }
        return Located(range, at: location(event.mark))
    }

    // MARK: Helpers

    static func isNull(_ event: Event) -> Bool {
        guard event.kind == .scalar, event.style.isPlain, event.tag == nil else { return false }
        // By length first: every scalar decoded passes here, and most are neither empty nor four characters long.
        switch event.value.utf8.count {
        case 0: return true
        case 1: return event.value == "~"
        case 4: return event.value == "null" || event.value == "Null" || event.value == "NULL"
        default: return false
        }
    }

    static func describe(_ event: Event) -> String {
        switch event.kind {
        case .mappingStart: return "a mapping"
        case .sequenceStart: return "a list"
        case .scalar:
            if isNull(event) { return "nothing (null)" }
            let text = event.value.count > 40 ? String(event.value.prefix(40)) + "…" : event.value
            return event.style.isPlain ? "'\(text)'" : "the quoted string '\(text)'"
        default: return "the end of the document"
        }
    }

    static func isValidName(_ name: String) -> Bool {
        let utf8 = name.utf8
        guard (1...63).contains(utf8.count), let first = utf8.first, isAlphanumeric(first) else { return false }
        return utf8.allSatisfy { isAlphanumeric($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "_") }
    }

    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }

    /// The candidate within edit distance 2 (or a third of the word) of `word`, if any.
    static func closest(to word: String, in candidates: [String]) -> String? {
        let limit = max(2, word.count / 3)
        return candidates.map { ($0, editDistance(word.lowercased(), $0.lowercased())) }
            .filter { $0.1 <= limit }
            .min { $0.1 < $1.1 }?.0
    }

    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a.utf8), b = Array(b.utf8)
        var previous = Array(0...b.count)
        for i in 1...max(a.count, 1) where !a.isEmpty {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...max(b.count, 1) where !b.isEmpty {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}
