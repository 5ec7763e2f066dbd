/// One file that was read: its path relative to the repository root, and its bytes (kept for diagnostics).
public struct SourceFile: Sendable {
    /// Path from the repository root, `/`-separated.
    public var path: String
    /// The file's bytes (empty when it was refused, e.g. too large).
    public var bytes: [UInt8]
    /// The source's digest of the bytes (git's blob id), when it has one: equal digests mean equal files.
    public var digest: String?

    /// Creates a file.
    public init(path: String, bytes: [UInt8], digest: String? = nil) {
        self.path = path
        self.bytes = bytes
        self.digest = digest
    }

    /// The text of 1-based `line`, without its newline, or nil past the end.
    public func line(_ line: Int32) -> String? {
        var current: Int32 = 1
        var start = 0
        var index = 0
        while index < bytes.count {
            if bytes[index] == UInt8(ascii: "\n") {
                if current == line { break }
                current += 1
                start = index + 1
            }
            index += 1
        }
        guard current == line, start <= bytes.count else { return nil }
        var end = index
        if end > start, bytes[end - 1] == UInt8(ascii: "\r") { end -= 1 }
        return String(decoding: bytes[start..<end], as: UTF8.self)
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
