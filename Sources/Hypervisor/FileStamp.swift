import Foundation

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
        inode = UInt64(info.st_ino)
        size = Int64(info.st_size)
        modified = Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec)
        changed = Int64(info.st_ctim.tv_sec) * 1_000_000_000 + Int64(info.st_ctim.tv_nsec)
    }

    var description: String { "\(inode):\(size):\(modified):\(changed)" }

    /// The names in `directory` that end with `suffix`, sorted (none when it cannot be read).
    static func names(in directory: String, suffix: String) -> [String] {
        guard let handle = opendir(directory) else { return [] }
        defer { closedir(handle) }
        var names: [String] = []
        while let entry = readdir(handle) {
            let name = withUnsafePointer(to: entry.pointee.d_name) { $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) } }
            if name.hasSuffix(suffix) { names.append(name) }
        }
        return names.sorted()
    }
}
