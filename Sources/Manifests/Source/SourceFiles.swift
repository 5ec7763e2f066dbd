import Zlib

/// One file that was read: its path relative to the repository root, and its bytes (kept for diagnostics).
public struct SourceFile: Sendable {
    /// Path from the repository root, `/`-separated.
    public var path: String
    /// The file's bytes (empty when it was refused, e.g. too large). Inflated on each read once `compacted()` keeps
    /// them deflated: read them once into a local.
    public var bytes: [UInt8] {
        get { deflated ? Zlib.unkept(stored, count: size, what: "the text of \(path)") : stored }
        set {
            stored = newValue
            deflated = false
            size = newValue.count
        }
    }
    /// How many bytes the file has.
    public private(set) var size: Int
    private var stored: [UInt8]
    private var deflated = false
    /// The source's digest of the bytes (git's blob id), when it has one: equal digests mean equal files.
    public var digest: String?

    /// Creates a file.
    public init(path: String, bytes: [UInt8], digest: String? = nil) {
        self.path = path
        stored = bytes
        size = bytes.count
        self.digest = digest
    }

    /// This file as a long-running loader keeps it once decoded: its bytes deflated (manifests shrink several times),
    /// read again only for a diagnostic's lines or for another path that holds the same blob.
    public func compacted() -> SourceFile {
        guard !deflated, let packed = Zlib.kept(stored) else { return self }
        var file = self
        file.stored = packed
        file.deflated = true
        return file
    }

    /// The file's text split into lines in one pass: what a caller asking for many lines (diagnostics of one file)
    /// reads instead of `line(_:)`, which scans from the start (and inflates kept bytes) each time.
    public struct Lines: Sendable {
        let bytes: [UInt8]
        /// Where each line's text lies in the bytes, line 1 first.
        public let ranges: [Range<Int>]

        /// The text of 1-based `line`, without its newline, or nil past the end.
        public func line(_ line: Int32) -> String? {
            guard line >= 1, Int(line) <= ranges.count else { return nil }
            return String(decoding: bytes[ranges[Int(line) - 1]], as: UTF8.self)
        }
    }

    /// The file's lines.
    public func lines() -> Lines {
        let bytes = bytes
        var ranges: [Range<Int>] = []
        var start = 0
        var index = 0
        while index < bytes.count {
            let breakLength = Self.lineBreak(at: index, in: bytes)
            if breakLength > 0 {
                ranges.append(start..<index)
                index += breakLength
                start = index
            } else {
                index += 1
            }
        }
        ranges.append(start..<bytes.count)
        return Lines(bytes: bytes, ranges: ranges)
    }

    /// The text of 1-based `line`, without its newline, or nil past the end.
    public func line(_ line: Int32) -> String? {
        // Lines end where libyaml (whose marks these are) ends them: "\r\n", "\r", "\n", NEL, LS and PS.
        let bytes = bytes
        var current: Int32 = 1
        var start = 0
        var index = 0
        while index < bytes.count {
            let breakLength = Self.lineBreak(at: index, in: bytes)
            if breakLength > 0 {
                if current == line { return String(decoding: bytes[start..<index], as: UTF8.self) }
                current += 1
                index += breakLength
                start = index
            } else {
                index += 1
            }
        }
        return current == line ? String(decoding: bytes[start..<bytes.count], as: UTF8.self) : nil
    }

    /// The length of the line break starting at `index` (0 when there is none).
    private static func lineBreak(at index: Int, in bytes: [UInt8]) -> Int {
        switch bytes[index] {
        case UInt8(ascii: "\n"): return 1
        case UInt8(ascii: "\r"): return index + 1 < bytes.count && bytes[index + 1] == UInt8(ascii: "\n") ? 2 : 1
        case 0xC2: return index + 1 < bytes.count && bytes[index + 1] == 0x85 ? 2 : 0
        case 0xE2: return index + 2 < bytes.count && bytes[index + 1] == 0x80 && (bytes[index + 2] == 0xA8 || bytes[index + 2] == 0xA9) ? 3 : 0
        default: return 0
        }
    }
}

/// The table of loaded files, indexed by `FileID`.
public struct SourceFiles: Sendable {
    /// The files in load order.
    public private(set) var files: [SourceFile] = []

    /// An empty table.
    public init() {}

    /// Adds a file and returns its id.
    public mutating func add(_ file: SourceFile) -> FileID {
        files.append(file)
        return FileID(UInt32(files.count - 1))
    }

    /// The file with `id`.
    public subscript(id: FileID) -> SourceFile {
        get { files[Int(id.index)] }
        set { files[Int(id.index)] = newValue }
    }

    /// How many files the table holds.
    public var count: Int { files.count }

    /// `path:line:column` for a location.
    public func describe(_ location: SourceLocation) -> String {
        "\(self[location.file].path):\(location.line):\(location.column)"
    }
}
