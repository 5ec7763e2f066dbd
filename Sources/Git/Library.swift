internal import CLibgit2

/// libgit2's process-wide initialisation, done once on first use.
enum Library {
    private static let initialised: Bool = {
        git_libgit2_init()
        // Manifest repositories are often checked out by another user (CI, a service account);
        // reading blobs is safe, so libgit2's ownership check would only get in the way.
        _ = stacklab_git_set_owner_validation(0)
        return true
    }()

    static func ensureInitialised() {
        _ = initialised
    }
}
