internal import CLibgit2

/// An open git repository (libgit2). Owns the handle and frees it on deinit.
///
/// Not `Sendable`: libgit2 repository handles must not be shared between threads, and the compiler
/// keeps this one inside the isolation domain that opened it.
public final class Repository {
    private let handle: OpaquePointer
    /// The path it was opened at.
    public let path: String

    /// Opens the repository at `path` (a work tree or a bare repository; parent directories are not searched).
    public init(at path: String) throws(GitError) {
        Library.ensureInitialised()
        var repo: OpaquePointer?
        try check("open repository at \(path)", git_repository_open_ext(&repo, path, UInt32(GIT_REPOSITORY_OPEN_NO_SEARCH.rawValue), nil))
        handle = repo!
        self.path = path
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

    /// Every file under `roots` (top-level directory names; all files when empty) in the tree of `revision`.
    /// Blobs larger than `maxBytes` are listed with their size but without bytes. A regular file whose path maps to
    /// its blob id in `known` is listed `omitted`, unread: the caller holds those bytes already.
    public func files(at revision: String, under roots: [String] = [], maxBytes: Int = .max,
                      known: [String: String] = [:]) throws(GitError) -> [TreeFile] {
        let commit = try lookupCommit(revision)
        defer { git_commit_free(commit) }
        var tree: OpaquePointer?
        try check("read the tree of \(revision)", git_commit_tree(&tree, commit))
        defer { git_tree_free(tree) }
        var files: [TreeFile] = []
        try walk(tree!, prefix: "", roots: Set(roots), maxBytes: maxBytes, known: known, into: &files)
        return files
    }

    private func lookupCommit(_ revision: String) throws(GitError) -> OpaquePointer {
        var object: OpaquePointer?
        try check("resolve revision '\(revision)'", git_revparse_single(&object, handle, revision))
        defer { git_object_free(object) }
        var commit: OpaquePointer?
        try check("resolve revision '\(revision)' to a commit", git_object_peel(&commit, object, GIT_OBJECT_COMMIT))
        return commit!
    }

    private func walk(_ tree: OpaquePointer, prefix: String, roots: Set<String>, maxBytes: Int, known: [String: String],
                      into files: inout [TreeFile]) throws(GitError) {
        for index in 0..<git_tree_entrycount(tree) {
            guard let entry = git_tree_entry_byindex(tree, index) else { continue }
            let name = String(cString: git_tree_entry_name(entry))
            if prefix.isEmpty, !roots.isEmpty, !roots.contains(name) { continue }
            let path = prefix.isEmpty ? name : prefix + "/" + name
            let mode = git_tree_entry_filemode(entry)
            switch mode {
            case GIT_FILEMODE_TREE:
                var subtree: OpaquePointer?
                try check("read tree \(path)", git_tree_lookup(&subtree, handle, git_tree_entry_id(entry)))
                defer { git_tree_free(subtree) }
                try walk(subtree!, prefix: path, roots: roots, maxBytes: maxBytes, known: known, into: &files)
            case GIT_FILEMODE_BLOB, GIT_FILEMODE_BLOB_EXECUTABLE, GIT_FILEMODE_LINK:
                if mode != GIT_FILEMODE_LINK, let knownID = known[path] {
                    let id = Self.hex(git_tree_entry_id(entry))
                    if id == knownID {
                        var file = TreeFile(path: path, kind: .file, size: 0, bytes: nil, blobID: id)
                        file.omitted = true
                        files.append(file)
                        continue
                    }
                }
                var blob: OpaquePointer?
                try check("read blob \(path)", git_blob_lookup(&blob, handle, git_tree_entry_id(entry)))
                defer { git_blob_free(blob) }
                let size = Int(git_blob_rawsize(blob))
                let id = Self.hex(git_tree_entry_id(entry))
                let raw = UnsafeRawBufferPointer(start: git_blob_rawcontent(blob), count: size)
                if mode == GIT_FILEMODE_LINK {
                    let target = String(decoding: raw, as: UTF8.self)
                    files.append(TreeFile(path: path, kind: .symlink(target: target), size: size, bytes: nil, blobID: id))
                } else {
                    let bytes = size <= maxBytes ? [UInt8](raw) : nil
                    files.append(TreeFile(path: path, kind: .file, size: size, bytes: bytes, blobID: id))
                }
            default:
                continue  // submodules (commits) carry no manifests
            }
        }
    }

    private static func hex(_ oid: UnsafePointer<git_oid>?) -> String {
        var buffer = [CChar](repeating: 0, count: Int(GIT_OID_HEXSZ) + 1)
        git_oid_tostr(&buffer, buffer.count, oid)
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
