internal import CLibvirt
#if canImport(Glibc)
import Glibc
#endif

/// A connection to a libvirt hypervisor: `test:///abs/host.xml` for simulated nodes,
/// `qemu+ssh://root@host/system` in production.
///
/// `@unchecked Sendable`: libvirt connections are documented thread-safe, and the handle is immutable.
public final class Connection: @unchecked Sendable {
    let handle: OpaquePointer
    /// The URI it was opened with.
    public let uri: String

    private static let silenced: Bool = {
        stacklab_virt_silence_errors()
        return true
    }()

    /// Opens `uri` read-write.
    public init(uri: String) throws(LibvirtError) {
        _ = Self.silenced
        guard let connection = virConnectOpen(uri) else {
            throw LibvirtError.last("open connection \(uri)")
        }
        handle = connection
        self.uri = uri
    }

    deinit {
        virConnectClose(handle)
    }

    /// The hypervisor's capabilities XML (guest architectures and the domain types each supports).
    public func capabilities() throws(LibvirtError) -> String {
        guard let xml = virConnectGetCapabilities(handle) else { throw LibvirtError.last("get capabilities of \(uri)") }
        defer { free(xml) }
        return String(cString: xml)
    }

    /// The hypervisor host's name.
    public func hostname() throws(LibvirtError) -> String {
        guard let name = virConnectGetHostname(handle) else { throw LibvirtError.last("get hostname of \(uri)") }
        defer { free(name) }
        return String(cString: name)
    }

    /// The node's CPU count and memory (KiB).
    public func nodeInfo() throws(LibvirtError) -> (cpus: Int, memoryKiB: UInt64) {
        var info = virNodeInfo()
        guard virNodeGetInfo(handle, &info) == 0 else { throw LibvirtError.last("get node info of \(uri)") }
        return (Int(info.cpus), UInt64(info.memory))
    }

    /// Defines (or redefines) a persistent domain from XML.
    @discardableResult
    public func defineDomain(xml: String) throws(LibvirtError) -> Domain {
        guard let domain = virDomainDefineXML(handle, xml) else { throw LibvirtError.last("define domain") }
        return Domain(handle: domain, connection: self)
    }

    /// The domain called `name`, or nil when there is none.
    public func domain(named name: String) throws(LibvirtError) -> Domain? {
        guard let domain = virDomainLookupByName(handle, name) else {
            let error = LibvirtError.last("look up domain \(name)")
            if error.isNoSuchObject { return nil }
            throw error
        }
        return Domain(handle: domain, connection: self)
    }

    /// The domain with UUID `uuid` (`xxxxxxxx-xxxx-…`), or nil when there is none.
    public func domain(uuid: String) throws(LibvirtError) -> Domain? {
        guard let domain = virDomainLookupByUUIDString(handle, uuid) else {
            let error = LibvirtError.last("look up domain \(uuid)")
            if error.isNoSuchObject { return nil }
            throw error
        }
        return Domain(handle: domain, connection: self)
    }

    /// Defines a persistent network from XML.
    @discardableResult
    public func defineNetwork(xml: String) throws(LibvirtError) -> Network {
        guard let network = virNetworkDefineXML(handle, xml) else { throw LibvirtError.last("define network") }
        return Network(handle: network, connection: self)
    }

    /// Every network.
    public func networks() throws(LibvirtError) -> [Network] {
        try listAll("list networks on \(uri)") { virConnectListAllNetworks(handle, $0, 0) }.map { Network(handle: $0, connection: self) }
    }

    /// Defines a persistent storage pool from XML.
    @discardableResult
    public func definePool(xml: String) throws(LibvirtError) -> StoragePool {
        guard let pool = virStoragePoolDefineXML(handle, xml, 0) else { throw LibvirtError.last("define storage pool") }
        return StoragePool(handle: pool, connection: self)
    }

    /// Every storage pool.
    public func pools() throws(LibvirtError) -> [StoragePool] {
        try listAll("list storage pools on \(uri)") { virConnectListAllStoragePools(handle, $0, 0) }.map { StoragePool(handle: $0, connection: self) }
    }

    /// Every domain, defined or running.
    public func domains() throws(LibvirtError) -> [Domain] {
        try listAll("list domains on \(uri)") { virConnectListAllDomains(handle, $0, 0) }.map { Domain(handle: $0, connection: self) }
    }
}
