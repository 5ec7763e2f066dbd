/// A file read from a commit's tree.
public struct TreeFile: Sendable {
    /// What kind of tree entry it is.
    public enum Kind: Sendable, Equatable {
        /// A regular (or executable) file.
        case file
        /// A symbolic link; the blob holds its target path.
        case symlink(target: String)
    }

    /// The path from the repository root, with `/` separators.
    public var path: String
    /// What kind of entry it is.
    public var kind: Kind
    /// The blob's size in bytes.
    public var size: Int
    /// The blob's bytes, or nil when it is larger than the reader's limit (or a symlink).
    public var bytes: [UInt8]?
    /// The blob's object id, hex.
    public var blobID: String
    /// True when the blob was not read because the caller already knew it (`bytes` is nil, `size` 0).
    public var omitted = false

    /// Creates a file.
    public init(path: String, kind: Kind, size: Int, bytes: [UInt8]?, blobID: String) {
        self.path = path
        self.kind = kind
        self.size = size
        self.bytes = bytes
        self.blobID = blobID
    }
}
