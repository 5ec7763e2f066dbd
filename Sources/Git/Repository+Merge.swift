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

    /// A commit's author (name and e-mail), time and summary line.
    public func commitInfo(_ revision: String) throws(GitError) -> (commit: String, author: String, email: String, time: Int64, summary: String) {
        let commit = try lookupCommit(revision)
        defer { git_commit_free(commit) }
        let author = git_commit_author(commit)!.pointee
        return (Self.hex(git_commit_id(commit)), String(cString: author.name), String(cString: author.email), Int64(git_commit_time(commit)),
                git_commit_summary(commit).map { String(cString: $0) } ?? "")
    }
}
