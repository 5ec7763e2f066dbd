import Git
import Manifests

/// Manifests from a git revision: blobs are read from the commit's tree, never from the checkout.
public struct GitSource: ManifestSource {
    /// Repository path.
    public var repository: String
    /// Revision (`main`, a tag, a SHA, `HEAD~1`).
    public var revision: String
    /// Blob ids the caller already holds, by path: those files come back `omitted`, unread.
    public var known: [String: String] = [:]
    /// Trees walked before: unchanged subtrees are listed from here, unread.
    public var listings: TreeListings?

    /// Creates a source.
    public init(repository: String, revision: String, known: [String: String] = [:], listings: TreeListings? = nil) {
        self.repository = repository
        self.revision = revision
        self.known = known
        self.listings = listings
    }

    public var description: String { "git \(repository) @ \(revision)" }

    public func read(limits: LoadLimits) throws(SourceError) -> SourceSnapshot {
        do {
            let repo = try Repository(at: repository)
            let commit = try repo.resolveCommit(revision)
            let files = try repo.files(at: commit, under: ManifestLayout.roots, maxBytes: limits.maxFileBytes, known: known, listings: listings)
            // Looked up only to follow links: made only when the tree has one.
            let hasLinks = files.contains { if case .symlink = $0.kind { true } else { false } }
            let byPath = hasLinks ? Dictionary(files.map { ($0.path, $0) }, uniquingKeysWith: { first, _ in first }) : [:]
            let inputs = files.filter { ManifestLayout.isManifest($0.path) }.map { file in
                Self.input(for: file, byPath: byPath, limit: limits.maxFileBytes)
            }
            return SourceSnapshot(inputs: inputs.sorted { $0.path < $1.path }, revision: commit, tree: listings?.tree)
        } catch {
            throw Self.sourceError(error, repository: repository)
        }
    }

    /// What `revision` changed in the manifests since the tree `listings` walked last (which then holds this one), or
    /// nil when there is nothing to compare with, or either tree holds a symbolic link (a link's bytes are those of
    /// another path, which may not have changed): `read` then lists the whole tree, from `listings` unread.
    public func readChanges(limits: LoadLimits) throws(SourceError) -> SourceChanges? {
        guard let listings else { return nil }
        do {
            let repo = try Repository(at: repository)
            let commit = try repo.resolveCommit(revision)
            guard let changes = try repo.changes(at: commit, under: ManifestLayout.roots, maxBytes: limits.maxFileBytes, listings: listings),
                  !changes.hasLinks else { return nil }
            let changed = changes.files.filter { ManifestLayout.isManifest($0.path) }.map { file in
                Self.input(for: file, byPath: [:], limit: limits.maxFileBytes)
            }
            return SourceChanges(base: changes.base, tree: changes.tree, revision: commit, changed: changed,
                                 removed: changes.removed.filter(ManifestLayout.isManifest))
        } catch {
            throw Self.sourceError(error, repository: repository)
        }
    }

    private static func sourceError(_ error: GitError, repository: String) -> SourceError {
        let hint: String? = error.isNotFound ? "check the revision with 'git -C \(repository) log --oneline'" : nil
        return SourceError(error.description, hint: hint)
    }

    /// The input for `file`: its bytes (following a short chain of links inside the repository) and the blob id
    /// they came from, or why there are none.
    private static func input(for file: TreeFile, byPath: [String: TreeFile], limit: Int) -> SourceInput {
        let refuse = { (refusal: SourceInput.Refusal) in SourceInput(path: file.path, content: .failure(RefusalError(refusal))) }
        var current = file
        for _ in 0..<8 {
            switch current.kind {
            case .file:
                if current.omitted {
                    var input = SourceInput(path: file.path, content: .success([]), digest: current.blobID)
                    input.omitted = true
                    return input
                }
                guard let bytes = current.bytes else { return refuse(.tooLarge(size: current.size, limit: limit)) }
                return SourceInput(path: file.path, content: .success(bytes), digest: current.blobID)
            case .symlink(let target):
                guard let resolved = ManifestLayout.resolve(link: target, from: current.path) else { return refuse(.symlinkOutside(target: target)) }
                guard let next = byPath[resolved] else {
                    let inRoots = ManifestLayout.roots.contains { resolved.hasPrefix($0 + "/") }
                    return refuse(inRoots ? .symlinkDangling(target: target) : .symlinkOutside(target: target))
                }
                current = next
            }
        }
        return refuse(.unreadable(reason: "too many levels of symbolic links"))
    }
}
