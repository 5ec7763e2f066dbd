import Foundation
import Git
import Manifests

/// Loads revision after revision of one repository at the cost of what changed: a subtree whose id is unchanged is not
/// walked again (`TreeListings`), a blob whose id is unchanged is neither read nor decoded again (`DecodeCache`), and
/// validation keeps what the `DecodeCache` lets it keep. What the service's loop and `IncrementalPlanner` load through.
///
/// One load at a time (a lock makes that certain); the result equals a full load of the same revision.
public final class RevisionLoader: @unchecked Sendable {
    /// The repository.
    public let repository: String
    private let limits: LoadLimits
    private let lock = NSLock()
    private let decodes = DecodeCache()
    private let listings = TreeListings()

    /// What the last load reused: files decoded and kept, trees read and kept.
    public struct Reuse: Sendable {
        public var filesDecoded = 0, filesReused = 0, treesRead = 0, treesReused = 0
    }
    public private(set) var lastReuse = Reuse()

    /// A loader of `repository`'s revisions.
    public init(repository: String, limits: LoadLimits = LoadLimits()) {
        self.repository = repository
        self.limits = limits
    }

    /// Loads and validates `revision`. A revision that cannot be read throws `SourceError`; manifests with errors come
    /// back as diagnostics.
    public func load(revision: String) throws(SourceError) -> LoadResult {
        lock.lock()
        defer { lock.unlock() }
        let start = Date()
        let source = GitSource(repository: repository, revision: revision, known: decodes.known, listings: listings)
        let snapshot = try source.read(limits: limits)
        var result = Loader(limits: limits).load(snapshot, cache: decodes)
        result.timings.read = Date().timeIntervalSince(start)
        lastReuse = Reuse(filesDecoded: decodes.lastDecoded, filesReused: decodes.lastReused, treesRead: listings.lastRead, treesReused: listings.lastReused)
        return result
    }
}
