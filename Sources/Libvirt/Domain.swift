internal import CLibvirt
#if canImport(Glibc)
import Glibc
#endif

/// A libvirt domain (a virtual machine). Keeps its connection alive.
///
/// `@unchecked Sendable`: domain handles are safe to use from any thread, like their connection.
public final class Domain: @unchecked Sendable {
    let handle: OpaquePointer
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

    /// The domain's UUID (held by the handle: no call to the daemon).
    public var uuid: String {
        var text = [CChar](repeating: 0, count: Int(VIR_UUID_STRING_BUFLEN))
        guard virDomainGetUUIDString(handle, &text) == 0 else { return "" }
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The id of a running domain (a new one every time it starts), or nil when it is shut off.
    public var id: UInt32? {
        let id = virDomainGetID(handle)
        return id == UInt32.max ? nil : id
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

    /// libvirt's view of a domain's state.
    public enum State: Sendable, Equatable {
        case running, paused, shutoff, crashed, other(Int32)
    }

    /// State, maximum memory (KiB) and virtual CPUs, from `virDomainGetInfo`.
    public func info() throws(LibvirtError) -> (state: State, maxMemoryKiB: UInt64, memoryKiB: UInt64, vcpus: Int) {
        var info = virDomainInfo()
        guard virDomainGetInfo(handle, &info) == 0 else { throw LibvirtError.last("read info of domain \(name)") }
        let state: State
        switch Int32(info.state) {
        case Int32(VIR_DOMAIN_RUNNING.rawValue), Int32(VIR_DOMAIN_BLOCKED.rawValue): state = .running
        case Int32(VIR_DOMAIN_PAUSED.rawValue), Int32(VIR_DOMAIN_PMSUSPENDED.rawValue): state = .paused
        case Int32(VIR_DOMAIN_SHUTOFF.rawValue), Int32(VIR_DOMAIN_SHUTDOWN.rawValue): state = .shutoff
        case Int32(VIR_DOMAIN_CRASHED.rawValue): state = .crashed
        default: state = .other(Int32(info.state))
        }
        return (state, UInt64(info.maxMem), UInt64(info.memory), Int(info.nrVirtCpu))
    }

    /// The metadata element in namespace `uri` of the persistent definition, or nil when the domain has none.
    public func metadata(namespace uri: String) throws(LibvirtError) -> String? {
        let flags = UInt32(VIR_DOMAIN_AFFECT_CONFIG.rawValue)
        guard let xml = virDomainGetMetadata(handle, Int32(VIR_DOMAIN_METADATA_ELEMENT.rawValue), uri, flags) else {
            let error = LibvirtError.last("read metadata of domain \(name)")
            if error.code == Int32(VIR_ERR_NO_DOMAIN_METADATA.rawValue) { return nil }
            throw error
        }
        defer { free(xml) }
        return String(cString: xml)
    }

    /// The live XML (running state) definition.
    public func liveXML() throws(LibvirtError) -> String {
        guard let xml = virDomainGetXMLDesc(handle, 0) else { throw LibvirtError.last("dump XML of domain \(name)") }
        defer { free(xml) }
        return String(cString: xml)
    }

    /// The maximum number of virtual CPUs (the definition's `<vcpu>`; `current` vCPUs may be fewer).
    public func maxVcpus() throws(LibvirtError) -> Int {
        let count = virDomainGetVcpusFlags(handle, UInt32(VIR_DOMAIN_VCPU_MAXIMUM.rawValue))
        guard count >= 0 else { throw LibvirtError.last("read the maximum vCPUs of domain \(name)") }
        return Int(count)
    }

    /// Plugs or unplugs virtual CPUs of the running domain, up to its maximum; the persistent definition is untouched.
    public func setLiveVcpus(_ count: Int) throws(LibvirtError) {
        guard virDomainSetVcpusFlags(handle, UInt32(count), UInt32(VIR_DOMAIN_AFFECT_LIVE.rawValue)) == 0 else {
            throw LibvirtError.last("set the vCPUs of running domain \(name) to \(count)")
        }
    }

    /// Sets the running domain's memory through its balloon (KiB), up to its maximum; the persistent definition is
    /// untouched.
    public func setLiveMemory(kib: UInt64) throws(LibvirtError) {
        guard virDomainSetMemoryFlags(handle, UInt(kib), UInt32(VIR_DOMAIN_AFFECT_LIVE.rawValue)) == 0 else {
            throw LibvirtError.last("set the memory of running domain \(name) to \(kib) KiB")
        }
    }

    /// Grows the running domain's disk `device` (`vda`) to `bytes` (QEMU resizes the image under the guest).
    public func resizeDisk(_ device: String, bytes: UInt64) throws(LibvirtError) {
        guard virDomainBlockResize(handle, device, bytes, UInt32(VIR_DOMAIN_BLOCK_RESIZE_BYTES.rawValue)) == 0 else {
            throw LibvirtError.last("resize disk \(device) of domain \(name)")
        }
    }

    /// Sets the maximum memory of the persistent definition (KiB) — used to simulate changes behind StackLab's back.
    public func setMaxMemory(kib: UInt64) throws(LibvirtError) {
        guard virDomainSetMaxMemory(handle, UInt(kib)) == 0 else { throw LibvirtError.last("set memory of domain \(name)") }
    }

    /// Pauses a running domain.
    public func suspend() throws(LibvirtError) {
        guard virDomainSuspend(handle) == 0 else { throw LibvirtError.last("pause domain \(name)") }
    }

    /// Resumes a paused domain.
    public func resume() throws(LibvirtError) {
        guard virDomainResume(handle) == 0 else { throw LibvirtError.last("resume domain \(name)") }
    }

    /// Starts the domain.
    public func start() throws(LibvirtError) {
        guard virDomainCreate(handle) == 0 else { throw LibvirtError.last("start domain \(name)") }
    }

    /// Asks the guest to shut down (ACPI); returns at once, the domain stops when the guest has shut down.
    public func shutdown() throws(LibvirtError) {
        guard virDomainShutdown(handle) == 0 else { throw LibvirtError.last("shut down domain \(name)") }
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
