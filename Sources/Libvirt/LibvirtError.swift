internal import CLibvirt

/// A libvirt failure: what we attempted plus libvirt's own error code, domain and message.
public struct LibvirtError: Error, Sendable, CustomStringConvertible {
    /// What StackLab was doing ("define domain gerrit").
    public var operation: String
    /// libvirt's `virErrorNumber` (e.g. 42 = no domain).
    public var code: Int32
    /// libvirt's message.
    public var message: String

    /// Creates an error.
    public init(operation: String, code: Int32, message: String) {
        self.operation = operation
        self.code = code
        self.message = message
    }

    /// Whether libvirt says the object does not exist.
    public var isNoSuchObject: Bool {
        [VIR_ERR_NO_DOMAIN, VIR_ERR_NO_NETWORK, VIR_ERR_NO_STORAGE_POOL, VIR_ERR_NO_STORAGE_VOL]
            .map { Int32($0.rawValue) }.contains(code)
    }

    /// Whether the driver does not implement the call (libvirt's test driver lacks some, e.g. volume resize).
    public var isUnsupported: Bool {
        [VIR_ERR_NO_SUPPORT, VIR_ERR_OPERATION_UNSUPPORTED].map { Int32($0.rawValue) }.contains(code)
    }

    /// Whether retrying may help (timeouts, lost connections, busy hypervisors) rather than the request being wrong.
    /// A failure to reach the hypervisor (transient: the node may answer later).
    public static func cannotConnect(_ operation: String, message: String) -> LibvirtError {
        LibvirtError(operation: operation, code: Int32(VIR_ERR_NO_CONNECT.rawValue), message: message)
    }

    public var isTransient: Bool {
        [VIR_ERR_OPERATION_TIMEOUT, VIR_ERR_NO_CONNECT, VIR_ERR_RPC, VIR_ERR_SYSTEM_ERROR, VIR_ERR_AGENT_UNRESPONSIVE,
         VIR_ERR_OPERATION_ABORTED, VIR_ERR_RESOURCE_BUSY]
            .map { Int32($0.rawValue) }.contains(code)
    }

    /// Human text.
    public var description: String { "libvirt: \(operation): \(message)" }

    /// The error libvirt recorded for the failing call on this thread. It is read before `operation` is
    /// evaluated: describing the operation may call libvirt (an object's name), and every libvirt call resets
    /// the thread's last error.
    static func last(_ operation: @autoclosure () -> String) -> LibvirtError {
        guard let error = virGetLastError() else {
            return LibvirtError(operation: operation(), code: -1, message: "unknown libvirt error")
        }
        let code = error.pointee.code
        let message = error.pointee.message.map { String(cString: $0) } ?? "libvirt error \(code)"
        return LibvirtError(operation: operation(), code: code, message: message)
    }
}
