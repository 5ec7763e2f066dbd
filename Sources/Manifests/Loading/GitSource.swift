import Git

/// Manifests from a git revision: blobs are read from the commit's tree, never from the checkout.
public struct GitSource: ManifestSource {
    /// Repository path.
    public var repository: String
    /// Revision (`main`, a tag, a SHA, `HEAD~1`).
    public var revision: String

    /// Creates a source.
    public init(repository: String, revision: String) {
        self.repository = repository
        self.revision = revision
    }

    public var description: String { "git \(repository) @ \(revision)" }

    public func read(limits: LoadLimits) throws(SourceError) -> SourceSnapshot {
        do {
            let repo = try Repository(at: repository)
            let commit = try repo.resolveCommit(revision)
            let files = try repo.files(at: commit, under: ManifestLayout.roots, maxBytes: limits.maxFileBytes)
            let byPath = Dictionary(files.map { ($0.path, $0) }, uniquingKeysWith: { first, _ in first })
            let inputs = files.filter { ManifestLayout.isManifest($0.path) }.map { file in
                SourceInput(path: file.path, content: Self.content(of: file, byPath: byPath, limit: limits.maxFileBytes))
            }
            return SourceSnapshot(inputs: inputs.sorted { $0.path < $1.path }, revision: commit)
        } catch {
            let hint: String? = error.isNotFound ? "check the revision with 'git -C \(repository) log --oneline'" : nil
            throw SourceError(error.description, hint: hint)
        }
    }

    private static func content(of file: TreeFile, byPath: [String: TreeFile], limit: Int) -> Result<[UInt8], RefusalError> {
        var current = file
        for _ in 0..<8 {  // follow a short chain of links inside the repository
            switch current.kind {
            case .file:
                guard let bytes = current.bytes else { return .failure(RefusalError(.tooLarge(size: current.size, limit: limit))) }
                return .success(bytes)
            case .symlink(let target):
                guard let resolved = ManifestLayout.resolve(link: target, from: current.path) else {
                    return .failure(RefusalError(.symlinkOutside(target: target)))
                }
                guard let next = byPath[resolved] else {
                    let inRoots = ManifestLayout.roots.contains { resolved.hasPrefix($0 + "/") }
                    return .failure(RefusalError(inRoots ? .symlinkDangling(target: target) : .symlinkOutside(target: target)))
                }
                current = next
            }
        }
        return .failure(RefusalError(.unreadable(reason: "too many levels of symbolic links")))
    }
}
