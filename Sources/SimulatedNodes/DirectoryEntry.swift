#if canImport(Glibc)
import Glibc
#endif

/// What `readdir` returned, read in place. A `dirent` is only as long as its name (`d_reclen`), not
/// `MemoryLayout<dirent>.size`: reading `pointee` whole copies up to 255 bytes past the entry, which faults when the
/// entry ends a page.
extension UnsafeMutablePointer<dirent> {
    /// The entry's name.
    var entryName: String {
        guard let name = pointer(to: \.d_name) else { return "" }
        return UnsafeRawPointer(name).withMemoryRebound(to: CChar.self, capacity: 1) { String(cString: $0) }
    }

    /// The entry's type (`DT_DIR`, `DT_UNKNOWN`, …).
    var entryType: UInt8 {
        pointer(to: \.d_type)?.pointee ?? UInt8(DT_UNKNOWN)
    }
}
