internal import CLibgit2
import Dispatch
import Foundation
import Parallel

/// An open git repository (libgit2). Owns the handle and frees it on deinit.
///
/// Not `Sendable`: libgit2 repository handles must not be shared between threads, and the compiler
/// keeps this one inside the isolation domain that opened it.
public final class Repository {
    /// The machine's cores, read once (blobs are read by at most this many workers).
    static let cores = ProcessInfo.processInfo.activeProcessorCount

    let handle: OpaquePointer
    /// Loose objects, read (and checked) by StackLab before libgit2 may see them.
    private let loose: LooseObjects
    /// The path it was opened at.
    public let path: String

    /// Opens the repository at `path` (a work tree or a bare repository; parent directories are not searched).
    public init(at path: String) throws(GitError) {
        Library.ensureInitialised()
        var repo: OpaquePointer?
        try check("open repository at \(path)", git_repository_open_ext(&repo, path, UInt32(GIT_REPOSITORY_OPEN_NO_SEARCH.rawValue), nil))
        handle = repo!
        self.path = path
        loose = LooseObjects(directory: String(cString: git_repository_commondir(repo!)) + "objects")
    }

    deinit {
        git_repository_free(handle)
    }

    /// Resolves a revision (`main`, `HEAD~2`, a tag, a full or short SHA) to the commit it names, as hex.
    public func resolveCommit(_ revision: String) throws(GitError) -> String {
        let commit = try lookupCommit(revision)
        defer { git_commit_free(commit) }
        return Self.hex(git_commit_id(commit))
    }

    /// The commits of `revision`'s first-parent history, oldest first, each with its committer time (seconds since
    /// the epoch): what the branch was, change by change.
    public func history(of revision: String) throws(GitError) -> [(commit: String, time: Int64)] {
        var commit: OpaquePointer? = try lookupCommit(revision)
        var history: [(commit: String, time: Int64)] = []
        while let current = commit {
            defer { git_commit_free(current) }
            history.append((Self.hex(git_commit_id(current)), Int64(git_commit_time(current))))
            commit = nil
            if git_commit_parentcount(current) > 0 {
                var parent: OpaquePointer?
                try check("read the parent of \(history.last!.commit)", git_commit_parent(&parent, current, 0))
                commit = parent
            }
        }
        return history.reversed()
    }

    /// Every file under `roots` (top-level directory names; all files when empty) in the tree of `revision`.
    /// Blobs larger than `maxBytes` are listed with their size but without bytes. A regular file whose path maps to
    /// its blob id in `known` is listed `omitted`, unread: the caller holds those bytes already. Blobs are read on
    /// `parallelism` threads (the machine's cores when 0), each with its own repository handle. With `listings`, a
    /// subtree walked before is not read again while its id is unchanged (and `listings` is updated to this tree).
    public func files(at revision: String, under roots: [String] = [], maxBytes: Int = .max,
                      known: [String: String] = [:], parallelism: Int = 0, listings: TreeListings? = nil) throws(GitError) -> [TreeFile] {
        let listings = listings ?? TreeListings()
        _ = try walk(revision, under: roots, listings: listings)
        var entries: [Entry] = []
        listings.root?.collect(into: &entries)
        entries.sort { $0.path < $1.path }
        return try read(entries, known: known, maxBytes: maxBytes, parallelism: parallelism)
    }

    /// The blobs under `roots` in the tree of `revision` that are new or changed since the tree `listings` walked last
    /// (read as `files` reads them), and the paths gone; nil when `listings` holds no walk (of these roots) yet. Either
    /// way `listings` is updated to this tree.
    public func changes(at revision: String, under roots: [String] = [], maxBytes: Int = .max,
                        listings: TreeListings) throws(GitError) -> TreeChanges? {
        let before = listings.roots == Set(roots) ? listings.root : nil
        let walked = try walk(revision, under: roots, listings: listings)
        guard let before, let after = listings.root else { return nil }
        var changed = walked.changed
        changed.sort { $0.path < $1.path }
        return TreeChanges(base: Self.hex(before.id), tree: Self.hex(after.id),
                           files: try read(changed, known: [:], maxBytes: maxBytes, parallelism: 0),
                           removed: walked.removed.sorted(), hasLinks: before.links > 0 || after.links > 0)
    }

    /// Walks the tree of `revision` against the one `listings` holds (of the same roots), which it then holds: the
    /// blobs new or changed since, and the paths gone.
    private func walk(_ revision: String, under roots: [String], listings: TreeListings) throws(GitError) -> (changed: [Entry], removed: [String]) {
        let commit = try lookupCommit(revision)
        defer { git_commit_free(commit) }
        let id = git_commit_tree_id(commit)!
        let raw = withUnsafeBytes(of: id.pointee.id) { [UInt8]($0) }
        let wanted = Set(roots)
        let kept = listings.roots == wanted ? listings.root : nil
        listings.lastRead = 0
        listings.lastReused = 0
        if let kept, kept.id == raw { return ([], []) }
        try checkLoose(id)
        var tree: OpaquePointer?
        try check("read the tree of \(revision)", git_commit_tree(&tree, commit))
        defer { git_tree_free(tree) }
        var changed: [Entry] = []
        var removed: [String] = []
        let root = try walk(tree!, id: raw, prefix: "", roots: wanted, kept: kept, listings: listings, changed: &changed, removed: &removed)
        listings.root = root
        listings.roots = wanted
        return (changed, removed)
    }

    /// `tree` (at `prefix`) as a listing, its subdirectories whose id is `kept`'s for them taken from there unread. Blobs
    /// not in `kept` with the same id and kind go to `changed`; `kept`'s paths this tree lacks go to `removed`.
    private func walk(_ tree: OpaquePointer, id: [UInt8], prefix: String, roots: Set<String>, kept: TreeListings.Directory?,
                      listings: TreeListings, changed: inout [Entry], removed: inout [String]) throws(GitError) -> TreeListings.Directory {
        var files: [String: Entry] = [:]
        var children: [String: TreeListings.Directory] = [:]
        var links = 0
        var keptSeen = 0
        for index in 0..<git_tree_entrycount(tree) {
            guard let entry = git_tree_entry_byindex(tree, index) else { continue }
            let name = String(cString: git_tree_entry_name(entry))
            if prefix.isEmpty, !roots.isEmpty, !roots.contains(name) { continue }
            let path = prefix.isEmpty ? name : prefix + "/" + name
            let mode = git_tree_entry_filemode(entry)
            let oid = git_tree_entry_id(entry)!
            let raw = withUnsafeBytes(of: oid.pointee.id) { [UInt8]($0) }
            switch mode {
            case GIT_FILEMODE_TREE:
                let old = kept?.children[name]
                if old != nil { keptSeen += 1 }
                if let old, old.id == raw {
                    children[name] = old
                    links += old.links
                    listings.lastReused += 1
                    continue
                }
                try checkLoose(oid)
                var subtree: OpaquePointer?
                try check("read tree \(path)", git_tree_lookup(&subtree, handle, oid))
                defer { git_tree_free(subtree) }
                let directory = try walk(subtree!, id: raw, prefix: path, roots: roots, kept: old, listings: listings,
                                         changed: &changed, removed: &removed)
                listings.lastRead += 1
                children[name] = directory
                links += directory.links
            case GIT_FILEMODE_BLOB, GIT_FILEMODE_BLOB_EXECUTABLE, GIT_FILEMODE_LINK:
                let isLink = mode == GIT_FILEMODE_LINK
                let old = kept?.files[name]
                if old != nil { keptSeen += 1 }
                if let old, old.raw == raw, old.isLink == isLink {
                    files[name] = old
                } else {
                    let blob = Entry(path: path, id: Self.hex(oid), raw: raw, isLink: isLink)
                    files[name] = blob
                    changed.append(blob)
                }
                if isLink { links += 1 }
            default:
                continue  // submodules (commits) carry no manifests
            }
        }
        // What the kept directory had and this one lacks (or holds as the other kind) is gone.
        if let kept, keptSeen < kept.files.count + kept.children.count {
            for (name, old) in kept.files where files[name] == nil { removed.append(old.path) }
            for (name, old) in kept.children where children[name] == nil { old.paths(into: &removed) }
        }
        return TreeListings.Directory(id: id, files: files, children: children, links: links)
    }

    /// `entries` read: a blob whose path maps to its id in `known` is listed `omitted`, unread; the others on
    /// `parallelism` threads (the machine's cores when 0, one for a few), each with its own repository handle.
    private func read(_ entries: [Entry], known: [String: String], maxBytes: Int, parallelism: Int) throws(GitError) -> [TreeFile] {
        var files = entries.map { entry in
            var file = TreeFile(path: entry.path, kind: .file, size: 0, bytes: nil, blobID: entry.id)
            file.omitted = !entry.isLink && known[entry.path] == entry.id
            return file
        }
        let toRead = files.indices.filter { !files[$0].omitted }
        let workers = max(1, min(parallelism > 0 ? parallelism : Self.cores, toRead.count / 64 + 1))
        let read = ResultSlots<Result<(size: Int, bytes: [UInt8]?), GitError>>(count: toRead.count)
        let path = self.path
        if workers == 1 {
            // A few blobs (a push's): read here, through this handle.
            for (slot, index) in toRead.enumerated() {
                read[slot] = Result { () throws(GitError) in try blob(entries[index], maxBytes: maxBytes) }
            }
        } else {
            DispatchQueue.concurrentPerform(iterations: workers) { worker in
                // libgit2 handles are not shared between threads: each worker opens the repository itself.
                let repository: Repository
                switch Result(catching: { () throws(GitError) in try Repository(at: path) }) {
                case .success(let opened): repository = opened
                case .failure(let error):
                    for slot in stride(from: worker, to: toRead.count, by: workers) { read[slot] = .failure(error) }
                    return
                }
                for slot in stride(from: worker, to: toRead.count, by: workers) {
                    let entry = entries[toRead[slot]]
                    read[slot] = Result { () throws(GitError) in try repository.blob(entry, maxBytes: maxBytes) }
                }
            }
        }
        for (slot, index) in toRead.enumerated() {
            let blob = try read[slot]!.get()
            files[index].size = blob.size
            if entries[index].isLink {
                files[index].kind = .symlink(target: String(decoding: blob.bytes ?? [], as: UTF8.self))
            } else {
                files[index].bytes = blob.bytes
            }
        }
        return files
    }

    /// A blob entry of a tree: path, id, whether it is a symbolic link.
    struct Entry: Sendable {
        var path: String
        var id: String
        var raw: [UInt8]
        var isLink: Bool
    }

    /// A blob's size and bytes (nil when over `maxBytes`; a link's target is always read). A loose blob is read by
    /// `LooseObjects`; a packed one is measured from its header before libgit2 reads it.
    private func blob(_ entry: Entry, maxBytes: Int) throws(GitError) -> (size: Int, bytes: [UInt8]?) {
        let limit = entry.isLink ? 4096 : maxBytes
        if let object = try loose.read(entry.id, maxBytes: limit) {
            guard object.type == "blob" else {
                throw GitError(operation: "read blob \(entry.path)", code: -1, message: "object \(entry.id) is a \(object.type), not a blob")
            }
            return (object.size, object.bytes)
        }
        var oid = git_oid()
        withUnsafeMutableBytes(of: &oid.id) { $0.copyBytes(from: entry.raw) }
        var odb: OpaquePointer?
        try check("open the object database", git_repository_odb(&odb, handle))
        defer { git_odb_free(odb) }
        var declared = 0
        var type = GIT_OBJECT_ANY
        try check("read the header of blob \(entry.path)", git_odb_read_header(&declared, &type, odb, &oid))
        guard declared <= limit else { return (declared, nil) }
        var blob: OpaquePointer?
        try check("read blob \(entry.path)", git_blob_lookup(&blob, handle, &oid))
        defer { git_blob_free(blob) }
        let size = Int(git_blob_rawsize(blob))
        guard entry.isLink || size <= maxBytes else { return (size, nil) }
        return (size, [UInt8](UnsafeRawBufferPointer(start: git_blob_rawcontent(blob), count: size)))
    }

    /// Reads the object `oid` through `LooseObjects` when it is loose, so a damaged one is an error before libgit2 reads
    /// it (libgit2 1.5.1 loops forever on a truncated loose object).
    private func checkLoose(_ oid: UnsafePointer<git_oid>?) throws(GitError) {
        _ = try loose.read(Self.hex(oid), maxBytes: Int.max)
    }

    /// Resolves `revision` checking every object on the way first: its base (a branch, tag, `HEAD` or a full SHA) and
    /// each commit that `~N` and `^N` steps reach. Other forms (`@{…}`, `^{type}`, short SHAs) have their base
    /// checked, then go to libgit2's parser.
    func lookupCommit(_ revision: String) throws(GitError) -> OpaquePointer {
        let cut = revision.firstIndex { "~^@:{".contains($0) } ?? revision.endIndex
        let base = String(revision[..<cut])
        var oid = git_oid()
        var resolvedBase = false
        if base.count == Int(GIT_OID_HEXSZ), base.allSatisfy(\.isHexDigit) {
            resolvedBase = git_oid_fromstr(&oid, base) == 0
        } else if !base.isEmpty {
            var reference: OpaquePointer?
            if git_reference_dwim(&reference, handle, base) == 0 {
                defer { git_reference_free(reference) }
                var direct: OpaquePointer?
                if git_reference_resolve(&direct, reference) == 0 {
                    defer { git_reference_free(direct) }
                    if let target = git_reference_target(direct) {
                        oid = target.pointee
                        resolvedBase = true
                    }
                }
            }
        }
        if resolvedBase { try checkLoose(&oid) }
        if resolvedBase, let steps = Self.ancestry(revision[cut...]) {
            var object: OpaquePointer?
            try check("resolve revision '\(revision)'", git_object_lookup(&object, handle, &oid, GIT_OBJECT_ANY))
            defer { git_object_free(object) }
            var commit: OpaquePointer?
            try check("resolve revision '\(revision)' to a commit", git_object_peel(&commit, object, GIT_OBJECT_COMMIT))
            for (parent, count) in steps {
                for _ in 0..<count {
                    guard let id = git_commit_parent_id(commit, UInt32(parent)) else {
                        git_commit_free(commit)
                        throw GitError(operation: "resolve revision '\(revision)'", code: GIT_ENOTFOUND.rawValue,
                                       message: "revspec '\(revision)' not found (a commit on the way has no such parent)")
                    }
                    do {
                        try checkLoose(id)
                    } catch {
                        git_commit_free(commit)
                        throw error
                    }
                    var next: OpaquePointer?
                    let status = git_commit_parent(&next, commit, UInt32(parent))
                    git_commit_free(commit)
                    try check("resolve revision '\(revision)'", status)
                    commit = next
                }
            }
            return commit!
        }
        var object: OpaquePointer?
        try check("resolve revision '\(revision)'", git_revparse_single(&object, handle, revision))
        defer { git_object_free(object) }
        var commit: OpaquePointer?
        try check("resolve revision '\(revision)' to a commit", git_object_peel(&commit, object, GIT_OBJECT_COMMIT))
        return commit!
    }

    /// `~N`, `^N`, `~` and `^` steps as (parent index, repetitions): `~3` is the first parent three times, `^2` the
    /// second parent once. Nil for any other syntax.
    static func ancestry(_ suffix: Substring) -> [(parent: Int, count: Int)]? {
        var steps: [(parent: Int, count: Int)] = []
        var rest = suffix
        while let first = rest.first {
            guard first == "~" || first == "^" else { return nil }
            rest = rest.dropFirst()
            let digits = rest.prefix { $0.isASCII && $0.isNumber }
            rest = rest.dropFirst(digits.count)
            guard digits.count <= 6 else { return nil }
            let number = digits.isEmpty ? 1 : Int(digits)!
            if first == "~" {
                steps.append((0, number))
            } else {
                guard number >= 1 else { return nil }  // ^0 is the commit itself: left to libgit2
                steps.append((number - 1, 1))
            }
        }
        return steps
    }

    static func hex(_ oid: UnsafePointer<git_oid>?) -> String {
        var buffer = [CChar](repeating: 0, count: Int(GIT_OID_HEXSZ) + 1)
        git_oid_tostr(&buffer, buffer.count, oid)
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// An object id's raw bytes, as hex (libgit2's, as every other id here).
    static func hex(_ raw: [UInt8]) -> String {
        var oid = git_oid()
        withUnsafeMutableBytes(of: &oid.id) { $0.copyBytes(from: raw) }
        return hex(&oid)
    }
}
