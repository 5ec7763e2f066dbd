/// Turns a document written in the plain block style manifests use into the events libyaml would give for it,
/// or declines (nil) as soon as anything lies outside that style, and libyaml parses the file instead.
///
/// Why: libyaml's event parser was a fifth of `validate`'s time at the large size, and copying its events out
/// another tenth. Manifests are nearly always ASCII block mappings and sequences of one-line scalars; for those this
/// scanner does in one pass over the bytes what libyaml does through its reader, scanner, token queue and parser.
///
/// What it takes: printable ASCII and line feeds only (no tabs, carriage returns or other bytes); `---` document
/// markers (with an optional comment); comments; block mappings whose keys are one-line plain scalars ending in
/// `: ` or `:` at the end of the line; block sequences (also "indentless" under a key, and `- key: value` items);
/// one-line plain, single-quoted and double-quoted scalars; one-line flow sequences of such scalars; `{}`.
/// Everything else — anchors, aliases, tags, block scalars, multi-line scalars, flow mappings, directives, `...`,
/// empty documents, anything libyaml would reject — declines, so every error message and every rarely used feature
/// stays libyaml's. The events, marks included, equal libyaml's; `BlockSubsetScannerTests` checks that against
/// libyaml over every YAML file in the repository and tens of thousands of mutations of them.
struct BlockSubsetScanner {
    /// Raised to decline: the input is outside the subset (or not valid YAML).
    struct Declined: Error {}

    /// A line that holds something other than spaces and a comment.
    private struct Line {
        /// 0-based line number.
        var number: Int
        /// Offset of the line's first byte.
        var start: Int
        /// Offset of the line feed ending it, or the input's end.
        var end: Int
        /// Leading spaces.
        var indent: Int
    }

    private let bytes: UnsafeBufferPointer<UInt8>
    private var events: [Event] = []
    /// The next content line not yet consumed; nil at the end of the input.
    private var line: Line?
    /// Where libyaml's stream end is: the start of the line after the last (the input's end when that is a line's
    /// start).
    private let streamEnd: Mark
    /// Where the input ends. A block collection more indented than this column ends here; the others end at
    /// `streamEnd` (libyaml unrolls indents at its last token's column, then again after moving to a new line).
    private let inputEnd: Mark
    private var depth = 0
    /// Nesting deeper than this declines (libyaml and the reader's limits then apply).
    private static let maxDepth = 64
    /// libyaml refuses simple keys longer than 1,024 characters.
    private static let maxKeyLength = 1024

    /// libyaml's events for `bytes`, or nil when the input is outside the subset.
    static func events(in bytes: UnsafeBufferPointer<UInt8>) -> [Event]? {
        var lines = 0
        var lastBreak = -1
        for (offset, byte) in bytes.enumerated() {
            if byte == 0x0A {
                lines += 1
                lastBreak = offset
            } else if byte < 0x20 || byte > 0x7E {
                return nil
            }
        }
        let lastColumn = bytes.count - 1 - lastBreak
        let inputEnd = Mark(line: Int32(lines) + 1, column: Int32(lastColumn) + 1)
        let streamEnd = lastColumn == 0 ? inputEnd : Mark(line: Int32(lines) + 2, column: 1)
        var scanner = BlockSubsetScanner(bytes: bytes, streamEnd: streamEnd, inputEnd: inputEnd)
        do {
            try scanner.stream()
            return scanner.events
        } catch {
            return nil
        }
    }

    private init(bytes: UnsafeBufferPointer<UInt8>, streamEnd: Mark, inputEnd: Mark) {
        self.bytes = bytes
        self.streamEnd = streamEnd
        self.inputEnd = inputEnd
        events.reserveCapacity(bytes.count / 8)
    }

    // MARK: Lines

    private static let space = UInt8(ascii: " ")
    private static let hash = UInt8(ascii: "#")
    private static let colon = UInt8(ascii: ":")
    private static let dash = UInt8(ascii: "-")

    /// The line starting at `start`: where it ends (its line feed, or the input's end) and its first byte that is not
    /// a space (`end` when there is none).
    private func rawLine(at start: Int) -> (end: Int, first: Int) {
        var end = start
        while end < bytes.count, bytes[end] != 0x0A { end += 1 }
        var first = start
        while first < end, bytes[first] == Self.space { first += 1 }
        return (end, first)
    }

    /// Moves `line` to the next content line after `offset` (skipping blank and comment-only lines).
    private mutating func seekContent(from offset: Int, number: Int) {
        var start = offset
        var number = number
        while start < bytes.count {
            let (end, first) = rawLine(at: start)
            if first < end, bytes[first] != Self.hash {
                line = Line(number: number, start: start, end: end, indent: first - start)
                return
            }
            start = end + 1
            number += 1
        }
        line = nil
    }

    private mutating func advance() {
        guard let current = line else { return }
        seekContent(from: current.end + 1, number: current.number + 1)
    }

    private func isDocumentMarker(_ line: Line) throws(Declined) -> Bool {
        guard line.indent == 0, line.end - line.start >= 3 else { return false }
        let s = line.start
        if bytes[s] == UInt8(ascii: "."), bytes[s + 1] == UInt8(ascii: "."), bytes[s + 2] == UInt8(ascii: ".") { throw Declined() }
        if bytes[s] == UInt8(ascii: "%") { throw Declined() }
        guard bytes[s] == Self.dash, bytes[s + 1] == Self.dash, bytes[s + 2] == Self.dash else { return false }
        guard s + 3 == line.end || bytes[s + 3] == Self.space else { return false }
        try expectLineEnd(from: s + 3, in: line)
        return true
    }

    /// Whether the content at `offset` is a block sequence entry indicator (`-` then a space or the line's end).
    private func isEntry(at offset: Int, in line: Line) -> Bool {
        bytes[offset] == Self.dash && (offset + 1 == line.end || bytes[offset + 1] == Self.space)
    }

    private func mark(_ line: Line, _ offset: Int) -> Mark {
        Mark(line: Int32(line.number) + 1, column: Int32(offset - line.start) + 1)
    }

    /// Where a block collection at `column` ends: at the next content line's first character, or at the input's end.
    private func blockEnd(column: Int) -> Mark {
        guard let line else { return column + 1 > inputEnd.column ? inputEnd : streamEnd }
        return mark(line, line.start + line.indent)
    }

    /// Only spaces, then optionally a comment after at least one space, may follow on the line.
    private func expectLineEnd(from offset: Int, in line: Line) throws(Declined) {
        var p = offset
        while p < line.end, bytes[p] == Self.space { p += 1 }
        guard p == line.end || (bytes[p] == Self.hash && p > offset) else { throw Declined() }
    }

    private mutating func emit(_ kind: Event.Kind, _ mark: Mark, _ value: String = "", _ style: ScalarStyle = .plain) {
        events.append(Event(kind: kind, mark: mark, value: value, style: style))
    }

    // MARK: Structure

    private mutating func stream() throws(Declined) {
        emit(.streamStart, Mark(line: 1, column: 1))
        seekContent(from: 0, number: 0)
        while let current = line {
            if try isDocumentMarker(current) {
                emit(.documentStart, mark(current, current.start))
                advance()
                guard let next = line, !(try isDocumentMarker(next)) else { throw Declined() }  // an empty document
            } else {
                emit(.documentStart, mark(current, current.start + current.indent))
            }
            guard let root = line else { throw Declined() }
            try collection(column: root.indent)
            if let after = line, !(try isDocumentMarker(after)) { throw Declined() }
            emit(.documentEnd, line == nil ? streamEnd : blockEnd(column: 0))
        }
        emit(.streamEnd, streamEnd)
    }

    /// Runs `body` one level deeper, declining past `maxDepth`.
    private mutating func nested<T>(_ body: (inout Self) throws(Declined) -> T) throws(Declined) -> T {
        guard depth < Self.maxDepth else { throw Declined() }
        depth += 1
        defer { depth -= 1 }
        return try body(&self)
    }

    /// The block mapping or sequence whose first line is `line`, at its indent.
    private mutating func collection(column: Int) throws(Declined) {
        try nested { scanner throws(Declined) in try scanner.collectionHere(column: column) }
    }

    private mutating func collectionHere(column: Int) throws(Declined) {
        guard let current = line else { throw Declined() }
        if isEntry(at: current.start + column, in: current) {
            try sequence(column: column, indentless: false)
        } else {
            try mapping(column: column)
        }
    }

    /// A block mapping whose keys sit at `column`; its first key is at that column of `line` (which may be a
    /// sequence entry's line: `- key: value`).
    private mutating func mapping(column: Int) throws(Declined) {
        guard var current = line else { throw Declined() }
        emit(.mappingStart, mark(current, current.start + column))
        while true {
            let keyStart = current.start + column
            let colon = try keyEnd(from: keyStart, in: current)
            emit(.scalar, mark(current, keyStart), text(keyStart..<colon))
            var p = colon + 1
            while p < current.end, bytes[p] == Self.space { p += 1 }
            if p < current.end, bytes[p] == UInt8(ascii: "|") {
                try literal(at: p, in: current, parentColumn: column)
            } else if p < current.end, bytes[p] != Self.hash {
                try inlineValue(at: p, in: current)
                advance()
            } else {
                let empty = mark(current, colon + 1)
                advance()
                if let next = line, !(try isDocumentMarker(next)), next.indent > column {
                    try collection(column: next.indent)
                } else if let next = line, !(try isDocumentMarker(next)), next.indent == column,
                          isEntry(at: next.start + column, in: next) {
                    try sequence(column: column, indentless: true)
                } else {
                    emit(.scalar, empty)
                }
            }
            guard let next = line, !(try isDocumentMarker(next)) else { break }
            if next.indent < column { break }
            // More indented: a plain scalar going on over lines, or an error. A `-` where a key belongs: an error.
            guard next.indent == column, !isEntry(at: next.start + column, in: next) else { throw Declined() }
            current = next
        }
        emit(.mappingEnd, blockEnd(column: column))
    }

    /// A block sequence whose `-` sit at `column`; an indentless one (under a key at the same column) ends at the
    /// next line at that column that is not an entry.
    private mutating func sequence(column: Int, indentless: Bool) throws(Declined) {
        guard var current = line else { throw Declined() }
        emit(.sequenceStart, mark(current, current.start + column))
        while true {
            let dash = current.start + column
            var p = dash + 1
            while p < current.end, bytes[p] == Self.space { p += 1 }
            if p == current.end || bytes[p] == Self.hash {
                let empty = mark(current, dash + 1)
                advance()
                if let next = line, !(try isDocumentMarker(next)), next.indent > column {
                    try collection(column: next.indent)
                } else {
                    emit(.scalar, empty)
                }
            } else if isEntry(at: p, in: current) {
                throw Declined()  // `- - a`
            } else if bytes[p] == UInt8(ascii: "|") {
                try literal(at: p, in: current, parentColumn: column)
            } else if isKey(at: p, in: current) {
                let column = p - current.start
                try nested { scanner throws(Declined) in try scanner.mapping(column: column) }
            } else {
                try inlineValue(at: p, in: current)
                advance()
            }
            guard let next = line, !(try isDocumentMarker(next)) else { break }
            if next.indent < column { break }
            if next.indent == column, isEntry(at: next.start + column, in: next) {
                current = next
                continue
            }
            if indentless, next.indent == column { break }
            throw Declined()
        }
        emit(.sequenceEnd, blockEnd(column: column))
    }

    // MARK: Scalars

    /// Characters that cannot start a plain scalar here (the rest of YAML's indicators are declined too).
    private static func isIndicator(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "-"), UInt8(ascii: "?"), UInt8(ascii: ":"), UInt8(ascii: ","), UInt8(ascii: "["),
             UInt8(ascii: "]"), UInt8(ascii: "{"), UInt8(ascii: "}"), UInt8(ascii: "#"), UInt8(ascii: "&"),
             UInt8(ascii: "*"), UInt8(ascii: "!"), UInt8(ascii: "|"), UInt8(ascii: ">"), UInt8(ascii: "'"),
             UInt8(ascii: "\""), UInt8(ascii: "%"), UInt8(ascii: "@"), UInt8(ascii: "`"):
            true
        default:
            false
        }
    }

    /// Whether a plain key (`key:` then a space or the line's end) starts at `offset`.
    private func isKey(at offset: Int, in line: Line) -> Bool {
        guard !Self.isIndicator(bytes[offset]) else { return false }
        var p = offset
        while p < line.end {
            let byte = bytes[p]
            if byte == Self.hash, bytes[p - 1] == Self.space { return false }
            if byte == Self.colon, p + 1 == line.end || bytes[p + 1] == Self.space { return true }
            p += 1
        }
        return false
    }

    /// The offset of the `:` that ends the plain key starting at `offset`.
    private func keyEnd(from offset: Int, in line: Line) throws(Declined) -> Int {
        guard offset < line.end, !Self.isIndicator(bytes[offset]) else { throw Declined() }
        var p = offset
        while p < line.end {
            let byte = bytes[p]
            if byte == Self.hash, bytes[p - 1] == Self.space { throw Declined() }
            if byte == Self.colon, p + 1 == line.end || bytes[p + 1] == Self.space {
                guard bytes[p - 1] != Self.space, p - offset <= Self.maxKeyLength else { throw Declined() }
                return p
            }
            p += 1
        }
        throw Declined()
    }

    /// A literal block scalar (`|` or `|-`) whose indicator is at `offset`, inside a collection at `parentColumn`;
    /// moves `line` past it. Declines explicit indentation, keeping (`|+`), leading blank lines and an empty body.
    private mutating func literal(at offset: Int, in header: Line, parentColumn: Int) throws(Declined) {
        var p = offset + 1
        let strip = p < header.end && bytes[p] == Self.dash
        if strip { p += 1 }
        guard p == header.end || bytes[p] == Self.space else { throw Declined() }
        try expectLineEnd(from: p, in: header)
        // The body: raw lines (a `#` there is text), the first fixing the indentation.
        var start = header.end + 1
        var number = header.number + 1
        var indent = -1
        var value: [UInt8] = []
        var pendingBreaks = 0
        var endsWithBreak = false
        while start < bytes.count {
            let (end, first) = rawLine(at: start)
            if first == end {
                // A blank line: a line break of the text, unless the text has not begun or its spaces reach into it.
                guard indent >= 0, first - start <= indent else { throw Declined() }
                pendingBreaks += 1
            } else {
                if indent < 0 {
                    guard first - start > parentColumn else { throw Declined() }
                    indent = first - start
                } else if first - start < indent {
                    break
                }
                if !value.isEmpty { value.append(contentsOf: repeatElement(0x0A, count: pendingBreaks + 1)) }
                pendingBreaks = 0
                value.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[(start + indent)..<end]))
                endsWithBreak = end < bytes.count
            }
            guard end < bytes.count else {
                start = end
                number += 1
                break
            }
            start = end + 1
            number += 1
        }
        guard indent >= 0 else { throw Declined() }
        if !strip, endsWithBreak { value.append(0x0A) }
        emit(.scalar, mark(header, offset), String(decoding: value, as: UTF8.self), .literal)
        seekContent(from: start, number: number)
    }

    /// A value that starts at `offset` and ends on its line: a scalar, or a flow sequence or mapping.
    private mutating func inlineValue(at offset: Int, in line: Line) throws(Declined) {
        switch bytes[offset] {
        case UInt8(ascii: "\""), UInt8(ascii: "'"), UInt8(ascii: "["), UInt8(ascii: "{"):
            let end = try flowNode(at: offset, in: line)
            try expectLineEnd(from: end, in: line)
        default:
            guard !Self.isIndicator(bytes[offset]) else { throw Declined() }
            var p = offset
            var last = offset  // one past the last non-space byte
            while p < line.end {
                let byte = bytes[p]
                if byte == Self.hash, bytes[p - 1] == Self.space { break }
                if byte == Self.colon, p + 1 == line.end || bytes[p + 1] == Self.space { throw Declined() }
                p += 1
                if byte != Self.space { last = p }
            }
            emit(.scalar, mark(line, offset), text(offset..<last))
        }
    }

    /// A node inside a one-line flow collection (or one that opens it): a quoted or plain scalar, a flow sequence
    /// or a flow mapping. Returns the offset after it.
    private mutating func flowNode(at offset: Int, in line: Line) throws(Declined) -> Int {
        guard offset < line.end else { throw Declined() }
        switch bytes[offset] {
        case UInt8(ascii: "\""), UInt8(ascii: "'"):
            return try quoted(at: offset, in: line)
        case UInt8(ascii: "["):
            return try flowCollection(at: offset, in: line, closing: UInt8(ascii: "]"))
        case UInt8(ascii: "{"):
            return try flowCollection(at: offset, in: line, closing: UInt8(ascii: "}"))
        default:
            let (last, stop) = try flowPlain(at: offset, in: line)
            guard stop == line.end || bytes[stop] != Self.colon else { throw Declined() }  // an implicit `a: b` pair
            emit(.scalar, mark(line, offset), text(offset..<last))
            return last
        }
    }

    /// A plain scalar in a flow collection: returns one past its last non-space byte, and where it stopped (`,`,
    /// `]`, `}`, a `:` followed by a space, or the line's end).
    private func flowPlain(at offset: Int, in line: Line) throws(Declined) -> (last: Int, stop: Int) {
        guard !Self.isIndicator(bytes[offset]) else { throw Declined() }
        var p = offset
        var last = offset
        while p < line.end {
            let c = bytes[p]
            switch c {
            case UInt8(ascii: ","), UInt8(ascii: "]"), UInt8(ascii: "}"):
                return (last, p)
            case Self.colon:
                guard p + 1 < line.end, bytes[p + 1] == Self.space, bytes[p - 1] != Self.space else { throw Declined() }
                return (last, p)
            case UInt8(ascii: "["), UInt8(ascii: "{"), Self.hash, UInt8(ascii: "?"), UInt8(ascii: "\""), UInt8(ascii: "'"):
                throw Declined()
            default:
                p += 1
                if c != Self.space { last = p }
            }
        }
        return (last, p)
    }

    /// A one-line flow sequence (`[a, b]`) or mapping (`{k: v, k2: v2}`) from its opening bracket; returns the
    /// offset after its closing one.
    private mutating func flowCollection(at offset: Int, in line: Line, closing: UInt8) throws(Declined) -> Int {
        try nested { scanner throws(Declined) in try scanner.flowCollectionHere(at: offset, in: line, closing: closing) }
    }

    private mutating func flowCollectionHere(at offset: Int, in line: Line, closing: UInt8) throws(Declined) -> Int {
        let isMapping = closing == UInt8(ascii: "}")
        emit(isMapping ? .mappingStart : .sequenceStart, mark(line, offset))
        var p = offset + 1
        while p < line.end, bytes[p] == Self.space { p += 1 }
        if p < line.end, bytes[p] == closing {
            emit(isMapping ? .mappingEnd : .sequenceEnd, mark(line, p))
            return p + 1
        }
        while true {
            guard p < line.end else { throw Declined() }
            if isMapping {
                let (last, stop) = try flowPlain(at: p, in: line)
                guard stop < line.end, bytes[stop] == Self.colon, last == stop else { throw Declined() }
                emit(.scalar, mark(line, p), text(p..<last))
                p = stop + 1
                while p < line.end, bytes[p] == Self.space { p += 1 }
                guard p < line.end, bytes[p] != UInt8(ascii: ","), bytes[p] != closing else { throw Declined() }
            }
            p = try flowNode(at: p, in: line)
            while p < line.end, bytes[p] == Self.space { p += 1 }
            guard p < line.end else { throw Declined() }
            if bytes[p] == closing {
                emit(isMapping ? .mappingEnd : .sequenceEnd, mark(line, p))
                return p + 1
            }
            guard bytes[p] == UInt8(ascii: ",") else { throw Declined() }
            p += 1
            while p < line.end, bytes[p] == Self.space { p += 1 }
            guard p < line.end, bytes[p] != closing, bytes[p] != UInt8(ascii: ",") else { throw Declined() }
        }
    }

    /// A one-line quoted scalar from its opening quote; returns the offset after the closing one.
    private mutating func quoted(at offset: Int, in line: Line) throws(Declined) -> Int {
        let quote = bytes[offset]
        var value: [UInt8] = []
        var p = offset + 1
        var plainRun = p  // start of bytes not yet copied into `value`
        while true {
            guard p < line.end else { throw Declined() }
            let byte = bytes[p]
            if byte == quote {
                if quote == UInt8(ascii: "'"), p + 1 < line.end, bytes[p + 1] == quote {
                    value.append(contentsOf: bytes[plainRun...p])
                    p += 2
                    plainRun = p
                    continue
                }
                value.append(contentsOf: bytes[plainRun..<p])
                break
            }
            if quote == UInt8(ascii: "\""), byte == UInt8(ascii: "\\") {
                value.append(contentsOf: bytes[plainRun..<p])
                p = try escape(at: p, in: line, into: &value)
                plainRun = p
                continue
            }
            p += 1
        }
        let style: ScalarStyle = quote == UInt8(ascii: "'") ? .singleQuoted : .doubleQuoted
        emit(.scalar, mark(line, offset), String(decoding: value, as: UTF8.self), style)
        return p + 1
    }

    /// One escape of a double-quoted scalar at `offset` (its backslash); returns the offset after it.
    private func escape(at offset: Int, in line: Line, into value: inout [UInt8]) throws(Declined) -> Int {
        guard offset + 1 < line.end else { throw Declined() }  // a line continuation
        if let simple = Self.simpleEscapes[bytes[offset + 1]] {
            value.append(simple)
            return offset + 2
        }
        let digits: Int
        switch bytes[offset + 1] {
        case UInt8(ascii: "x"): digits = 2
        case UInt8(ascii: "u"): digits = 4
        case UInt8(ascii: "U"): digits = 8
        case UInt8(ascii: "N"): return append(0x85, to: &value, after: offset + 2)
        case UInt8(ascii: "_"): return append(0xA0, to: &value, after: offset + 2)
        case UInt8(ascii: "L"): return append(0x2028, to: &value, after: offset + 2)
        case UInt8(ascii: "P"): return append(0x2029, to: &value, after: offset + 2)
        default: throw Declined()
        }
        guard offset + 2 + digits <= line.end else { throw Declined() }
        var code: UInt32 = 0
        for p in (offset + 2)..<(offset + 2 + digits) {
            guard let digit = Self.hexValue(bytes[p]) else { throw Declined() }
            code = code << 4 | digit
        }
        guard Unicode.Scalar(code) != nil else { throw Declined() }
        return append(code, to: &value, after: offset + 2 + digits)
    }

    /// YAML's one-character escapes and the byte each stands for.
    private static let simpleEscapes: [UInt8: UInt8] = [
        UInt8(ascii: "0"): 0x00, UInt8(ascii: "a"): 0x07, UInt8(ascii: "b"): 0x08, UInt8(ascii: "t"): 0x09,
        UInt8(ascii: "n"): 0x0A, UInt8(ascii: "v"): 0x0B, UInt8(ascii: "f"): 0x0C, UInt8(ascii: "r"): 0x0D,
        UInt8(ascii: "e"): 0x1B, UInt8(ascii: " "): 0x20, UInt8(ascii: "\""): 0x22, UInt8(ascii: "/"): 0x2F,
        UInt8(ascii: "\\"): 0x5C,
    ]

    private func append(_ code: UInt32, to value: inout [UInt8], after offset: Int) -> Int {
        if let scalar = Unicode.Scalar(code) { value.append(contentsOf: String(Character(scalar)).utf8) }
        return offset
    }

    private static func hexValue(_ byte: UInt8) -> UInt32? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt32(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): UInt32(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): UInt32(byte - UInt8(ascii: "A") + 10)
        default: nil
        }
    }

    private func text(_ range: Range<Int>) -> String {
        String(decoding: UnsafeBufferPointer(rebasing: bytes[range]), as: UTF8.self)
    }
}
