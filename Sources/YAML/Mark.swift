/// A position in a YAML source: 1-based line and column (columns count Unicode scalars, as libyaml does).
public struct Mark: Sendable, Hashable, Comparable {
    /// 1-based line number.
    public var line: Int32
    /// 1-based column number.
    public var column: Int32

    /// Creates a mark at a 1-based line and column.
    public init(line: Int32, column: Int32) {
        self.line = line
        self.column = column
    }

    /// Orders marks by line, then column.
    public static func < (lhs: Mark, rhs: Mark) -> Bool {
        (lhs.line, lhs.column) < (rhs.line, rhs.column)
    }
}
