import Foundation

/// The blob entries of trees walked before, by path and tree id: a later walk takes an unchanged subtree's entries from
/// here without reading (or inflating) one object of it. A one-file commit changes the trees on the file's path only,
/// so the walk reads those few and reuses every other directory.
///
/// Not thread-safe: one walk at a time (the owner's lock, or one owner).
public final class TreeListings: @unchecked Sendable {
    /// A directory as last walked: its tree id, every blob entry below it, and its subdirectories.
    final class Directory {
        let id: [UInt8]
        let entries: [Repository.Entry]
        let children: [String: Directory]

        init(id: [UInt8], entries: [Repository.Entry], children: [String: Directory]) {
            self.id = id
            self.entries = entries
            self.children = children
        }
    }

    /// The top-level directories (the roots walked) of the last walk.
    var roots: [String: Directory] = [:]
    /// Trees read by the last walk, and subtrees it took from here.
    public internal(set) var lastRead = 0
    public internal(set) var lastReused = 0

    /// An empty cache.
    public init() {}
}
