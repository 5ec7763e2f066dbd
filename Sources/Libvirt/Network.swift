internal import CLibvirt
#if canImport(Glibc)
import Glibc
#endif

/// A libvirt virtual network. Keeps its connection alive.
///
/// `@unchecked Sendable`: network handles are safe to use from any thread, like their connection.
public final class Network: @unchecked Sendable {
    private let handle: OpaquePointer
    /// The connection it belongs to.
    public let connection: Connection

    init(handle: OpaquePointer, connection: Connection) {
        self.handle = handle
        self.connection = connection
    }

    deinit {
        virNetworkFree(handle)
    }

    /// The network's name.
    public var name: String { virNetworkGetName(handle).map { String(cString: $0) } ?? "" }

    /// Whether it is started.
    public func isActive() throws(LibvirtError) -> Bool {
        let result = virNetworkIsActive(handle)
        guard result >= 0 else { throw LibvirtError.last("query network \(name)") }
        return result == 1
    }

    /// Its persistent XML.
    public func xml() throws(LibvirtError) -> String {
        guard let xml = virNetworkGetXMLDesc(handle, 0) else {
            throw LibvirtError.last("dump XML of network \(name)")
        }
        defer { free(xml) }
        return String(cString: xml)
    }

    /// Starts it.
    public func start() throws(LibvirtError) {
        guard virNetworkCreate(handle) == 0 else { throw LibvirtError.last("start network \(name)") }
    }

    /// Stops it.
    public func destroy() throws(LibvirtError) {
        guard virNetworkDestroy(handle) == 0 else { throw LibvirtError.last("stop network \(name)") }
    }

    /// Removes its definition.
    public func undefine() throws(LibvirtError) {
        guard virNetworkUndefine(handle) == 0 else { throw LibvirtError.last("undefine network \(name)") }
    }
}
