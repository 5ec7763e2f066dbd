import Foundation
internal import CLibgit2

/// Merging without a work tree: what the CI gate tests is the commit a change would become, made in the object
/// database only (no branch moves unless asked).
extension Repository {
    /// What merging a change onto a base gives.
    public enum MergeOutcome: Sendable, Equatable {
        /// The merge commit (or the change itself when it already contains the base: a fast-forward).
        case merged(commit: String)
        /// The files both sides changed in ways that do not merge.
        case conflicts([String])
    }

    /// Merges commit `theirs` onto `ours` (revisions) in memory, as `author`; a clean merge is written as a commit
    /// with both as parents, unreferenced.
    public func merge(_ theirs: String, onto ours: String, message: String, author: (name: String, email: String)) throws(GitError) -> MergeOutcome {
        let base = try lookupCommit(ours)
        defer { git_commit_free(base) }
        let change = try lookupCommit(theirs)
        defer { git_commit_free(change) }
        // Already contained: the change is an ancestor of the base, or the base of the change (fast-forward).
        if git_oid_equal(git_commit_id(base), git_commit_id(change)) != 0 || git_graph_descendant_of(handle, git_commit_id(base), git_commit_id(change)) == 1 {
            return .merged(commit: Self.hex(git_commit_id(base)))
        }
        if git_graph_descendant_of(handle, git_commit_id(change), git_commit_id(base)) == 1 {
            return .merged(commit: Self.hex(git_commit_id(change)))
        }
        var index: OpaquePointer?
        _ = try check("merge \(theirs) onto \(ours)", git_merge_commits(&index, handle, base, change, nil))
        defer { git_index_free(index) }
        if git_index_has_conflicts(index) != 0 {
            var conflicts = Set<String>()
            var iterator: OpaquePointer?
            _ = try check("list the conflicts", git_index_conflict_iterator_new(&iterator, index))
            defer { git_index_conflict_iterator_free(iterator) }
            var ancestor: UnsafePointer<git_index_entry>?, mine: UnsafePointer<git_index_entry>?, yours: UnsafePointer<git_index_entry>?
            while git_index_conflict_next(&ancestor, &mine, &yours, iterator) == 0 {
                for entry in [ancestor, mine, yours] { if let path = entry?.pointee.path { conflicts.insert(String(cString: path)) } }
            }
            return .conflicts(conflicts.sorted())
        }
        var tree = git_oid()
        _ = try check("write the merged tree", git_index_write_tree_to(&tree, index, handle))
        var treeHandle: OpaquePointer?
        _ = try check("read the merged tree", git_tree_lookup(&treeHandle, handle, &tree))
        defer { git_tree_free(treeHandle) }
        var signature: UnsafeMutablePointer<git_signature>?
        _ = try check("make a signature", git_signature_now(&signature, author.name, author.email))
        defer { git_signature_free(signature) }
        var commit = git_oid()
        var parents: [OpaquePointer?] = [base, change]
        _ = try check("write the merge commit", parents.withUnsafeMutableBufferPointer { buffer in
            git_commit_create(&commit, handle, nil, signature, signature, nil, message, treeHandle, 2, buffer.baseAddress)
        })
        return .merged(commit: Self.hex(&commit))
    }

    /// Points `reference` (`refs/heads/main`) at `commit`, only if it still points at `expected` (nil: create it).
    public func updateReference(_ reference: String, to commit: String, expected: String?, message: String) throws(GitError) {
        var target = git_oid()
        _ = try check("parse \(commit)", git_oid_fromstr(&target, commit))
        var ref: OpaquePointer?
        if let expected {
            var old = git_oid()
            _ = try check("parse \(expected)", git_oid_fromstr(&old, expected))
            // Compare-and-swap: refused when someone moved the reference since.
            _ = try check("move \(reference)", git_reference_create_matching(&ref, handle, reference, &target, 1, &old, message))
        } else {
            _ = try check("create \(reference)", git_reference_create(&ref, handle, reference, &target, 1, message))
        }
        git_reference_free(ref)
    }

    /// Moves branch `reference` (`refs/heads/main`) from `expected` to `commit`, as `updateReference` does. When it is the
    /// branch checked out in this repository's work tree, the work tree and index come along (a safe checkout of the new
    /// tip, as `git merge --ff-only` would): a work tree with uncommitted changes to tracked files is refused before
    /// anything moves, so a later `git commit -a` can never quietly undo the move.
    public func advanceBranch(_ reference: String, to commit: String, expected: String, message: String) throws(GitError) {
        guard git_repository_is_bare(handle) == 0, try checkedOut(reference) else {
            return try updateReference(reference, to: commit, expected: expected, message: message)
        }
        let changed = try changedTrackedFiles()
        guard changed.isEmpty else {
            throw GitError(operation: "move \(reference)", code: -1,
                           message: "the work tree has uncommitted changes (\(changed.prefix(5).joined(separator: ", "))\(changed.count > 5 ? ", …" : "")); commit or stash them first")
        }
        try checkoutTree(of: commit)
        do {
            try updateReference(reference, to: commit, expected: expected, message: message)
        } catch {
            try? checkoutTree(of: expected)  // the branch did not move: neither do the files
            throw error
        }
    }

    /// Whether `reference` is the branch HEAD names.
    private func checkedOut(_ reference: String) throws(GitError) -> Bool {
        var head: OpaquePointer?
        guard git_repository_head(&head, handle) == 0, let head else { return false }
        defer { git_reference_free(head) }
        return String(cString: git_reference_name(head)) == reference
    }

    /// Tracked files whose index or work-tree copy differs from HEAD (untracked files left out).
    private func changedTrackedFiles() throws(GitError) -> [String] {
        var options = git_status_options()
        _ = try check("prepare a status", git_status_options_init(&options, UInt32(GIT_STATUS_OPTIONS_VERSION)))
        options.show = GIT_STATUS_SHOW_INDEX_AND_WORKDIR
        options.flags = GIT_STATUS_OPT_EXCLUDE_SUBMODULES.rawValue
        var list: OpaquePointer?
        _ = try check("read the work tree's status", git_status_list_new(&list, handle, &options))
        defer { git_status_list_free(list) }
        var files: [String] = []
        for index in 0..<git_status_list_entrycount(list) {
            guard let entry = git_status_byindex(list, index)?.pointee else { continue }
            let delta = entry.head_to_index ?? entry.index_to_workdir
            if let path = delta?.pointee.new_file.path { files.append(String(cString: path)) }
        }
        return files.sorted()
    }

    /// Makes the work tree and index hold `commit`'s tree, safely (a file changed since HEAD is a conflict, not lost).
    private func checkoutTree(of commit: String) throws(GitError) {
        let target = try lookupCommit(commit)
        defer { git_commit_free(target) }
        var options = git_checkout_options()
        _ = try check("prepare a checkout", git_checkout_options_init(&options, UInt32(GIT_CHECKOUT_OPTIONS_VERSION)))
        options.checkout_strategy = GIT_CHECKOUT_SAFE.rawValue
        _ = try check("check out \(commit)", git_checkout_tree(handle, target, &options))
    }

    /// A commit's author (name and e-mail), time and summary line.
    public func commitInfo(_ revision: String) throws(GitError) -> (commit: String, author: String, email: String, time: Int64, summary: String) {
        let commit = try lookupCommit(revision)
        defer { git_commit_free(commit) }
        let author = git_commit_author(commit)!.pointee
        return (Self.hex(git_commit_id(commit)), String(cString: author.name), String(cString: author.email), Int64(git_commit_time(commit)),
                git_commit_summary(commit).map { String(cString: $0) } ?? "")
    }
}

extension Repository {
    /// One run of lines of a file and the commit that last changed them.
    public struct BlameHunk: Sendable, Equatable {
        /// First line (1-based) and count, in the file as of the blamed revision.
        public var start: Int
        public var count: Int
        public var commit: String
        public var author: String
        public var email: String
    }

    /// Who last changed each line of `path` as of `revision` (libgit2's blame).
    public func blame(_ path: String, at revision: String) throws(GitError) -> [BlameHunk] {
        let commit = try lookupCommit(revision)
        let newest = git_commit_id(commit)!.pointee
        git_commit_free(commit)
        var options = git_blame_options()
        _ = try check("prepare blame", git_blame_options_init(&options, UInt32(GIT_BLAME_OPTIONS_VERSION)))
        options.newest_commit = newest
        var blame: OpaquePointer?
        _ = try check("blame \(path)", git_blame_file(&blame, handle, path, &options))
        defer { git_blame_free(blame) }
        var hunks: [BlameHunk] = []
        for index in 0..<git_blame_get_hunk_count(blame) {
            guard let hunk = git_blame_get_hunk_byindex(blame, index)?.pointee else { continue }
            var id = hunk.final_commit_id
            let signature = hunk.final_signature?.pointee
            hunks.append(BlameHunk(start: Int(hunk.final_start_line_number), count: Int(hunk.lines_in_hunk), commit: Self.hex(&id),
                                   author: signature.map { String(cString: $0.name) } ?? "", email: signature.map { String(cString: $0.email) } ?? ""))
        }
        return hunks
    }

    /// Whether `commit` is `ancestor` or one of its ancestors' descendants… precisely: whether `ancestor` is
    /// `commit` or reachable from it.
    public func contains(_ commit: String, ancestor: String) throws(GitError) -> Bool {
        var a = git_oid(), b = git_oid()
        _ = try check("parse \(commit)", git_oid_fromstr(&a, commit))
        _ = try check("parse \(ancestor)", git_oid_fromstr(&b, ancestor))
        if git_oid_equal(&a, &b) != 0 { return true }
        return git_graph_descendant_of(handle, &a, &b) == 1
    }

    /// The paths whose blobs differ between two revisions (added, removed or changed), under `roots`.
    public func changedFiles(from old: String, to new: String, under roots: [String]) throws(GitError) -> [String] {
        let before = Dictionary(try files(at: old, under: roots, maxBytes: 0).map { ($0.path, $0.blobID) }, uniquingKeysWith: { a, _ in a })
        let after = Dictionary(try files(at: new, under: roots, maxBytes: 0).map { ($0.path, $0.blobID) }, uniquingKeysWith: { a, _ in a })
        return Set(before.keys).union(after.keys).filter { before[$0] != after[$0] }.sorted()
    }
}

extension Repository {
    /// Opens the bare repository at `path`, creating it empty first if there is none.
    public static func openOrCreateBare(at path: String) throws(GitError) -> Repository {
        if FileManager.default.fileExists(atPath: path + "/objects") { return try Repository(at: path) }
        Library.ensureInitialised()
        var created: OpaquePointer?
        _ = try check("create a bare repository at \(path)", git_repository_init(&created, path, 1))
        git_repository_free(created)
        return try Repository(at: path)
    }

    /// Fetches every branch of `url` into this repository's branches (`+refs/heads/*:refs/heads/*`: a mirror that
    /// follows the remote, forced updates included).
    public func fetchBranches(from url: String) throws(GitError) {
        var remote: OpaquePointer?
        _ = try check("reach \(url)", git_remote_create_anonymous(&remote, handle, url))
        defer { git_remote_free(remote) }
        let refspec = strdup("+refs/heads/*:refs/heads/*")
        defer { free(refspec) }
        var strings = [refspec]
        _ = try check("fetch from \(url)", strings.withUnsafeMutableBufferPointer { buffer in
            var array = git_strarray(strings: buffer.baseAddress, count: 1)
            return git_remote_fetch(remote, &array, nil, "stacklab fetch")
        })
    }
}
