import Foundation
import Git
import Manifests

/// Loads revision after revision of one repository at the cost of what changed: a subtree whose id is unchanged is not
/// walked again (`TreeListings`), the files that changed are applied to the last load (`SourceChanges`), a blob whose id
/// is unchanged is neither read nor decoded again (`DecodeCache`), and validation keeps what the `DecodeCache` lets it
/// keep. What the service's loop and `IncrementalPlanner` load through.
///
/// One load at a time (a lock makes that certain); the result equals a full load of the same revision.
public final class RevisionLoader: @unchecked Sendable {
    /// The repository.
    public let repository: String
    private let limits: LoadLimits
    private let lock = NSLock()
    private let decodes: DecodeCache
    private let listings = TreeListings()

    /// What the last load reused: files decoded and kept, trees read and kept.
    public struct Reuse: Sendable {
        public var filesDecoded = 0, filesReused = 0, treesRead = 0, treesReused = 0
        /// Whether the load applied the tree's changes to the last one (`SourceChanges`), not the whole tree.
        public var changesApplied = false
    }
    public private(set) var lastReuse = Reuse()

    /// A loader of `repository`'s revisions, keeping decodes in `decodes` (which no one else loads through).
    public init(repository: String, limits: LoadLimits = LoadLimits(), decodes: DecodeCache = DecodeCache()) {
        self.repository = repository
        self.limits = limits
        self.decodes = decodes
    }

    /// Loads and validates `revision`. A revision that cannot be read throws `SourceError`; manifests with errors come
    /// back as diagnostics.
    public func load(revision: String) throws(SourceError) -> LoadResult {
        lock.lock()
        defer { lock.unlock() }
        let start = Date()
        let loader = Loader(limits: limits)
        // What changed since the last load, applied to it; else the whole tree (listed from `listings`, unread).
        var result: LoadResult
        // The changes need no blob ids held: a source made with them would hold a second reference to the cache's
        // dictionary (2,368 paths at the large size) while the load sets one entry, which would copy it all.
        let changes = try GitSource(repository: repository, revision: revision, listings: listings).readChanges(limits: limits)
        var trees = (read: listings.lastRead, reused: listings.lastReused)
        var applied = false
        if let changes, let changed = loader.load(changes, cache: decodes) {
            result = changed
            applied = true
        } else {
            let source = GitSource(repository: repository, revision: revision, known: decodes.known, listings: listings)
            result = loader.load(try source.read(limits: limits), cache: decodes)
            trees = (trees.read + listings.lastRead, trees.reused + listings.lastReused)
        }
        result.timings.read = Date().timeIntervalSince(start)
        lastReuse = Reuse(filesDecoded: decodes.lastDecoded, filesReused: decodes.lastReused, treesRead: trees.read,
                          treesReused: trees.reused, changesApplied: applied)
        return result
    }
}
