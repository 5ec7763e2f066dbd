internal import CLibvirt
#if canImport(Glibc)
import Glibc
#endif

/// A libvirt storage pool. Keeps its connection alive.
///
/// `@unchecked Sendable`: pool handles are safe to use from any thread, like their connection.
public final class StoragePool: @unchecked Sendable {
    private let handle: OpaquePointer
    /// The connection it belongs to.
    public let connection: Connection

    init(handle: OpaquePointer, connection: Connection) {
        self.handle = handle
        self.connection = connection
    }

    deinit {
        virStoragePoolFree(handle)
    }

    /// The pool's name.
    public var name: String { virStoragePoolGetName(handle).map { String(cString: $0) } ?? "" }

    /// Whether it is started.
    public func isActive() throws(LibvirtError) -> Bool {
        let result = virStoragePoolIsActive(handle)
        guard result >= 0 else { throw LibvirtError.last("query storage pool \(name)") }
        return result == 1
    }

    /// Builds it (a `dir` pool: makes its directory).
    public func refresh() throws(LibvirtError) {
        guard virStoragePoolRefresh(handle, 0) == 0 else { throw LibvirtError.last("refresh storage pool \(name)") }
    }

    /// Builds the pool (creates its directory).
    public func build() throws(LibvirtError) {
        guard virStoragePoolBuild(handle, 0) == 0 else { throw LibvirtError.last("build storage pool \(name)") }
    }

    /// Starts it.
    public func start() throws(LibvirtError) {
        guard virStoragePoolCreate(handle, 0) == 0 else { throw LibvirtError.last("start storage pool \(name)") }
    }

    /// Its persistent XML.
    public func xml() throws(LibvirtError) -> String {
        guard let xml = virStoragePoolGetXMLDesc(handle, 0) else {
            throw LibvirtError.last("dump XML of storage pool \(name)")
        }
        defer { free(xml) }
        return String(cString: xml)
    }

    /// Creates a volume from XML.
    @discardableResult
    public func createVolume(xml: String) throws(LibvirtError) -> StorageVolume {
        guard let volume = virStorageVolCreateXML(handle, xml, 0) else { throw LibvirtError.last("create volume in pool \(name)") }
        return StorageVolume(handle: volume, pool: self)
    }

    /// Every volume in the pool.
    public func volumes() throws(LibvirtError) -> [StorageVolume] {
        try listAll("list volumes of pool \(name)") { virStoragePoolListAllVolumes(handle, $0, 0) }.map { StorageVolume(handle: $0, pool: self) }
    }
}

/// A volume in a storage pool. Keeps its pool alive.
///
/// `@unchecked Sendable`: volume handles are safe to use from any thread, like their connection.
public final class StorageVolume: @unchecked Sendable {
    let handle: OpaquePointer
    /// The pool it lives in.
    public let pool: StoragePool

    init(handle: OpaquePointer, pool: StoragePool) {
        self.handle = handle
        self.pool = pool
    }

    deinit {
        virStorageVolFree(handle)
    }

    /// The volume's name.
    public var name: String { virStorageVolGetName(handle).map { String(cString: $0) } ?? "" }

    /// Its XML.
    public func xml() throws(LibvirtError) -> String {
        guard let xml = virStorageVolGetXMLDesc(handle, 0) else { throw LibvirtError.last("dump XML of volume \(name)") }
        defer { free(xml) }
        return String(cString: xml)
    }

    /// Its capacity in bytes (`virStorageVolGetInfo`).
    public func capacity() throws(LibvirtError) -> UInt64 {
        var info = virStorageVolInfo()
        guard virStorageVolGetInfo(handle, &info) == 0 else { throw LibvirtError.last("read info of volume \(name)") }
        return UInt64(info.capacity)
    }

    /// Grows it to `bytes` (`virStorageVolResize`); libvirt refuses to shrink without a flag StackLab never passes.
    public func resize(to bytes: UInt64) throws(LibvirtError) {
        guard virStorageVolResize(handle, bytes, 0) == 0 else { throw LibvirtError.last("resize volume \(name)") }
    }

    /// Deletes it.
    public func delete() throws(LibvirtError) {
        guard virStorageVolDelete(handle, 0) == 0 else { throw LibvirtError.last("delete volume \(name)") }
    }
}
