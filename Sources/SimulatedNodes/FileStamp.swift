import Foundation
import Manifests

/// What `stat` says about a file that changes whenever its content is replaced or edited: inode, size,
/// modification and status-change times (nanoseconds). Status-change time cannot be set back by a program, so an
/// edit that restores the old modification time still shows.
struct FileStamp: CustomStringConvertible, Equatable {
    var inode: UInt64
    var size: Int64
    var modified: Int64
    var changed: Int64

    /// The file's stamp, or nil when it cannot be read.
    init?(path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        self.init(info)
    }

    init(_ info: stat) {
        inode = UInt64(info.st_ino)
        size = Int64(info.st_size)
        modified = Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec)
        changed = Int64(info.st_ctim.tv_sec) * 1_000_000_000 + Int64(info.st_ctim.tv_nsec)
    }

    var description: String { "\(inode):\(size):\(modified):\(changed)" }

    /// Adds the stamp to `hasher`.
    func combine(into hasher: inout StableHasher) {
        hasher.combine(inode)
        hasher.combine(UInt64(bitPattern: size))
        hasher.combine(UInt64(bitPattern: modified))
        hasher.combine(UInt64(bitPattern: changed))
    }

    /// A digest of the name and stamp of every entry of `directory` whose name ends with `suffix`, independent of
    /// the order they are listed in (0 when the directory cannot be read; nil when an entry listed cannot be
    /// stat'ed, as when it is being replaced). Entries are stat'ed relative to the open directory.
    static func entries(in directory: String, suffix: String) -> UInt64? {
        guard let handle = opendir(directory) else { return 0 }
        defer { closedir(handle) }
        var digest: UInt64 = 0
        for name in listing(handle, suffix: suffix) {
            var info = stat()
            guard fstatat(dirfd(handle), name, &info, 0) == 0 else { return nil }
            var hasher = StableHasher()
            hasher.combine(name)
            FileStamp(info).combine(into: &hasher)
            digest &+= hasher.value
        }
        return digest
    }

    /// The names in `directory` that end with `suffix`, sorted (none when it cannot be read).
    static func names(in directory: String, suffix: String) -> [String] {
        guard let handle = opendir(directory) else { return [] }
        defer { closedir(handle) }
        return listing(handle, suffix: suffix).sorted()
    }

    /// The names an open directory lists that end with `suffix`, but `.` and `..`, in the order listed.
    private static func listing(_ handle: OpaquePointer, suffix: String) -> [String] {
        var names: [String] = []
        while let entry = readdir(handle) {
            let name = entry.entryName
            if name != "." && name != ".." && name.hasSuffix(suffix) { names.append(name) }
        }
        return names
    }
}
