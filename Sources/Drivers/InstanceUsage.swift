import Libvirt
import Manifests
import Planning

/// What one running instance has used since it started, read from its hypervisor: the counters the service exports
/// per instance (like Sina's Kanyun monitor), summed over its disks and interfaces.
public struct InstanceUsage: Sendable, Equatable {
    /// The instance (from StackLab's metadata on the domain).
    public var instance: Address
    /// The libvirt domain.
    public var domain: String
    public var cpuSeconds: Double
    public var diskReadBytes: UInt64
    public var diskWriteBytes: UInt64
    public var networkReceivedBytes: UInt64
    public var networkSentBytes: UInt64
    /// Read from a simulated node: libvirt's test driver makes its counters up (its CPU time is its own clock, in
    /// seconds since the epoch), so they prove the reading works but measure no work; pages say "simulated".
    public var simulated = false

    public init(instance: Address, domain: String, counters: DomainCounters) {
        self.instance = instance
        self.domain = domain
        cpuSeconds = Double(counters.cpuTimeNanoseconds) / 1e9
        diskReadBytes = counters.disks.values.reduce(0) { $0 &+ ($1.readBytes ?? 0) }
        diskWriteBytes = counters.disks.values.reduce(0) { $0 &+ ($1.writeBytes ?? 0) }
        networkReceivedBytes = counters.interfaces.values.reduce(0) { $0 &+ ($1.receivedBytes ?? 0) }
        networkSentBytes = counters.interfaces.values.reduce(0) { $0 &+ ($1.sentBytes ?? 0) }
    }

    /// The target devices of the `<disk>` elements of a domain's XML (`vda`, `vdb`…).
    public static func diskDevices(inDomainXML xml: String) -> [String] {
        var devices: [String] = []
        var rest = xml[...]
        while let open = rest.range(of: "<disk "), let close = rest.range(of: "</disk>", range: open.upperBound..<rest.endIndex) {
            let disk = rest[open.upperBound..<close.lowerBound]
            if let target = disk.range(of: "<target "), let dev = disk.range(of: "dev='", range: target.upperBound..<disk.endIndex) ?? disk.range(of: "dev=\"", range: target.upperBound..<disk.endIndex),
               let end = disk[dev.upperBound...].firstIndex(where: { $0 == "'" || $0 == "\"" }) {
                devices.append(String(disk[dev.upperBound..<end]))
            }
            rest = rest[close.upperBound...]
        }
        return devices
    }
}
