/// Identifies a loaded file inside a `SourceFiles` table (compact, so 100,000 objects carry cheap locations).
public struct FileID: Sendable, Hashable, Codable {
    /// Index into the table.
    public var index: UInt32

    /// Creates an id.
    public init(_ index: UInt32) { self.index = index }
}

/// A 1-based line and column in a loaded file.
public struct SourceLocation: Sendable, Hashable, Comparable {
    /// The file.
    public var file: FileID
    /// 1-based line.
    public var line: Int32
    /// 1-based column.
    public var column: Int32

    /// Creates a location.
    public init(file: FileID, line: Int32, column: Int32) {
        self.file = file
        self.line = line
        self.column = column
    }

    /// Orders by file, line, column.
    public static func < (lhs: SourceLocation, rhs: SourceLocation) -> Bool {
        (lhs.file.index, lhs.line, lhs.column) < (rhs.file.index, rhs.line, rhs.column)
    }
}
