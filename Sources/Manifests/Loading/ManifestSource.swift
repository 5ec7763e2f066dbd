/// Where manifests come from: a working directory or a git revision. The loader parses whatever a source yields.
public protocol ManifestSource: Sendable {
    /// For messages: `directory /srv/cloud` or `git /srv/cloud @ main (3f2a…)`.
    var description: String { get }
    /// Every manifest file under the layout's roots, sorted by path, with refusals (too large, bad symlink) marked.
    func read(limits: LoadLimits) throws(SourceError) -> SourceSnapshot
}

/// The files a source yielded, and which revision they came from.
public struct SourceSnapshot: Sendable {
    /// Files, sorted by path.
    public var inputs: [SourceInput]
    /// The commit, for git sources.
    public var revision: String?
    /// The id of the tree the inputs are, for git sources: what a later `SourceChanges` says it changes.
    public var tree: String?

    /// Creates a snapshot.
    public init(inputs: [SourceInput], revision: String?, tree: String? = nil) {
        self.inputs = inputs
        self.revision = revision
        self.tree = tree
    }
}

/// What a revision changed in the manifests since a tree read before: the files new or changed, and the paths gone.
/// An incremental load applies it to the load of `base` (`Loader.load(_:cache:)`), at the cost of what changed.
public struct SourceChanges: Sendable {
    /// The tree these changes apply to, and the tree they make (ids).
    public var base: String
    public var tree: String
    /// The commit.
    public var revision: String?
    /// Manifest files new or changed since `base`, sorted by path.
    public var changed: [SourceInput]
    /// Manifest paths `base` had and this tree does not.
    public var removed: [String]

    /// Creates changes.
    public init(base: String, tree: String, revision: String?, changed: [SourceInput], removed: [String]) {
        self.base = base
        self.tree = tree
        self.revision = revision
        self.changed = changed
        self.removed = removed
    }
}

/// One manifest file as a source yielded it.
public struct SourceInput: Sendable {
    /// Why a file could not be used.
    public enum Refusal: Sendable, Equatable {
        case tooLarge(size: Int, limit: Int)
        case symlinkOutside(target: String)
        case symlinkDangling(target: String)
        case unreadable(reason: String)
    }

    /// Path from the repository root.
    public var path: String
    /// The bytes, or why there are none.
    public var content: Result<[UInt8], RefusalError>
    /// A digest of the bytes that names them across revisions (git's blob id), when the source has one.
    public var digest: String?
    /// True when the source left the bytes out because the caller said it already holds them under `digest`
    /// (`content` is then empty): an incremental load reads only what changed.
    public var omitted = false

    /// Creates an input.
    public init(path: String, content: Result<[UInt8], RefusalError>, digest: String? = nil) {
        self.path = path
        self.content = content
        self.digest = digest
    }
}

/// A `Refusal` as an error value.
public struct RefusalError: Error, Sendable, Equatable {
    /// Why.
    public var refusal: SourceInput.Refusal

    /// Wraps a refusal.
    public init(_ refusal: SourceInput.Refusal) { self.refusal = refusal }
}

/// A source that could not be read at all (no such directory, bad revision).
public struct SourceError: Error, Sendable, CustomStringConvertible {
    /// What went wrong.
    public var message: String
    /// What to do.
    public var hint: String?

    /// Creates an error.
    public init(_ message: String, hint: String? = nil) {
        self.message = message
        self.hint = hint
    }

    /// The message.
    public var description: String { message }
}

/// Bounds that keep hostile input from hurting.
public struct LoadLimits: Sendable {
    /// Largest manifest file accepted (default 8 MiB).
    public var maxFileBytes: Int
    /// Most YAML events aliases may add in one file (default 100,000).
    public var aliasBudget: Int
    /// Threads used to parse files (default: the machine's cores).
    public var parallelism: Int

    /// Creates limits.
    public init(maxFileBytes: Int = 8 << 20, aliasBudget: Int = 100_000, parallelism: Int = 0) {
        self.maxFileBytes = maxFileBytes
        self.aliasBudget = aliasBudget
        self.parallelism = parallelism
    }
}

/// Which parts of a repository hold manifests.
public enum ManifestLayout {
    /// Top-level directories read: the shared catalog, the regions, the CI pipelines.
    public static let roots = ["manifests", "regions", "ci"]

    /// Whether `path` is a manifest file (YAML under one of the roots).
    public static func isManifest(_ path: String) -> Bool {
        guard path.hasSuffix(".yaml") || path.hasSuffix(".yml") else { return false }
        return roots.contains { path.hasPrefix($0 + "/") }
    }

    /// `regions/<name>/…` implies region `<name>`.
    public static func implicitRegion(of path: String) -> String? {
        let parts = path.split(separator: "/")
        return parts.count >= 3 && parts[0] == "regions" ? String(parts[1]) : nil
    }

    /// Resolves a symlink target written in the file at `path` to a repository path, or nil if it leaves the repository.
    public static func resolve(link target: String, from path: String) -> String? {
        guard !target.hasPrefix("/") else { return nil }
        var parts = path.split(separator: "/").dropLast().map(String.init)
        for part in target.split(separator: "/") {
            switch part {
            case ".": continue
            case "..":
                guard !parts.isEmpty else { return nil }
                parts.removeLast()
            default: parts.append(String(part))
            }
        }
        return parts.joined(separator: "/")
    }
}
