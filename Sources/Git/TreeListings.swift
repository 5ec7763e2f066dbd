import Foundation

/// The blob entries of the tree walked last, directory by directory with each one's tree id: a later walk takes an
/// unchanged subtree from here without reading (or inflating) one object of it, and tells the blobs that changed. A
/// one-file commit changes the trees on the file's path only, so the walk reads those few and reuses every other
/// directory.
///
/// Not thread-safe: one walk at a time (the owner's lock, or one owner).
public final class TreeListings: @unchecked Sendable {
    /// A directory as last walked: its tree id, the blobs directly in it (by name), its subdirectories, and how many
    /// symbolic links it holds, all the way down.
    final class Directory {
        let id: [UInt8]
        let files: [String: Repository.Entry]
        let children: [String: Directory]
        let links: Int

        init(id: [UInt8], files: [String: Repository.Entry], children: [String: Directory], links: Int) {
            self.id = id
            self.files = files
            self.children = children
            self.links = links
        }

        /// Every blob entry at and below this directory.
        func collect(into entries: inout [Repository.Entry]) {
            entries.append(contentsOf: files.values)
            for child in children.values { child.collect(into: &entries) }
        }

        /// The paths of every blob at and below this directory.
        func paths(into paths: inout [String]) {
            paths.append(contentsOf: files.values.map(\.path))
            for child in children.values { child.paths(into: &paths) }
        }
    }

    /// The root of the last walk (its top-level entries limited to `roots`), and those roots.
    var root: Directory?
    var roots: Set<String> = []
    /// The id of the tree walked last (hex), nil before the first walk.
    public var tree: String? { root.map { Repository.hex($0.id) } }
    /// Trees read by the last walk, and subtrees it took from here.
    public internal(set) var lastRead = 0
    public internal(set) var lastReused = 0

    /// An empty cache.
    public init() {}
}

/// What changed in a tree since `TreeListings` last walked it: the blobs that are new or changed (read), and the paths
/// gone.
public struct TreeChanges: Sendable {
    /// The tree walked before, and this one (ids, hex).
    public var base: String
    public var tree: String
    /// Blobs new or changed since `base`, sorted by path, read as `Repository.files` reads them.
    public var files: [TreeFile]
    /// Paths of `base` that this tree no longer has (as blobs), sorted.
    public var removed: [String]
    /// Whether either tree holds a symbolic link: a link's bytes are another path's, which may be one that did not change.
    public var hasLinks: Bool
}
