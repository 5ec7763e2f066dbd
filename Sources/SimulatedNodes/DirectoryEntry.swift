#if canImport(Glibc)
import Glibc
#endif

/// What `readdir` returned, read in place. A `dirent` is only as long as its name (`d_reclen`), not
/// `MemoryLayout<dirent>.size`: reading `pointee` whole copies up to 255 bytes past the entry, which faults when the
/// entry ends a page.
extension UnsafeMutablePointer<dirent> {
    /// The entry's name.
    var entryName: String {
        // `d_name` is a tuple of `CChar`, so its memory is bound to `CChar`; the name ends at its NUL.
        guard let name = pointer(to: \.d_name) else { return "" }
        return String(cString: UnsafeRawPointer(name).assumingMemoryBound(to: CChar.self))
    }

    /// The entry's type (`DT_DIR`, `DT_UNKNOWN`, …).
    var entryType: UInt8 {
        pointer(to: \.d_type)?.pointee ?? UInt8(DT_UNKNOWN)
    }
}
