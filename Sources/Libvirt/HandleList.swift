#if canImport(Glibc)
import Glibc
#endif

/// libvirt's `virConnectListAll*` calls return a malloc'd array of handles: copy them out and free the array.
func listAll(_ operation: @autoclosure () -> String,
             _ call: (UnsafeMutablePointer<UnsafeMutablePointer<OpaquePointer?>?>) -> Int32) throws(LibvirtError) -> [OpaquePointer] {
    var list: UnsafeMutablePointer<OpaquePointer?>?
    let count = call(&list)
    guard count >= 0, let list else { throw LibvirtError.last(operation()) }
    defer { free(list) }
    return (0..<Int(count)).compactMap { list[$0] }
}
