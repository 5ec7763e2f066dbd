internal import CLibvirt
#if canImport(Glibc)
import Glibc
#endif

/// A libvirt domain (a virtual machine). Keeps its connection alive.
///
/// `@unchecked Sendable`: domain handles are safe to use from any thread, like their connection.
public final class Domain: @unchecked Sendable {
    private let handle: OpaquePointer
    /// The connection it belongs to.
    public let connection: Connection

    init(handle: OpaquePointer, connection: Connection) {
        self.handle = handle
        self.connection = connection
    }

    deinit {
        virDomainFree(handle)
    }

    /// The domain's name.
    public var name: String {
        virDomainGetName(handle).map { String(cString: $0) } ?? ""
    }

    /// Whether the domain is running.
    public func isActive() throws(LibvirtError) -> Bool {
        let result = virDomainIsActive(handle)
        guard result >= 0 else { throw LibvirtError.last("query state of domain \(name)") }
        return result == 1
    }

    /// The persistent (inactive) XML definition.
    public func persistentXML() throws(LibvirtError) -> String {
        guard let xml = virDomainGetXMLDesc(handle, UInt32(VIR_DOMAIN_XML_INACTIVE.rawValue)) else {
            throw LibvirtError.last("dump XML of domain \(name)")
        }
        defer { free(xml) }
        return String(cString: xml)
    }

    /// Starts the domain.
    public func start() throws(LibvirtError) {
        guard virDomainCreate(handle) == 0 else { throw LibvirtError.last("start domain \(name)") }
    }

    /// Stops the domain at once (power off).
    public func destroy() throws(LibvirtError) {
        guard virDomainDestroy(handle) == 0 else { throw LibvirtError.last("stop domain \(name)") }
    }

    /// Removes the persistent definition.
    public func undefine() throws(LibvirtError) {
        guard virDomainUndefine(handle) == 0 else { throw LibvirtError.last("undefine domain \(name)") }
    }
}
