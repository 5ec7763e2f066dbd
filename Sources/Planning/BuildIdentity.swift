import Foundation

/// The running binary's identity (inode, size and time of `/proc/self/exe`): what one build remembered (a region's plan,
/// a node's observation) is not taken for another's, whose planner or observer may read the same inputs differently.
public enum BuildIdentity {
    public static let current: String = {
        var info = stat()
        guard stat("/proc/self/exe", &info) == 0 else { return "unknown-\(getpid())" }
        return "\(info.st_ino):\(info.st_size):\(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec)"
    }()
}
