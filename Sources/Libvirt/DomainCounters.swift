internal import CLibvirt

/// A running domain's cumulative counters, as libvirt reads them from the hypervisor (they restart from zero when
/// the domain restarts). A counter the hypervisor does not keep is nil.
public struct DomainCounters: Sendable, Equatable {
    /// CPU time used by all its virtual CPUs, in nanoseconds.
    public var cpuTimeNanoseconds: UInt64
    /// Bytes and requests read and written by each disk, by target device (`vda`).
    public var disks: [String: Block]
    /// Bytes and packets received and sent by each interface, by the device it was asked for (a MAC address).
    public var interfaces: [String: Interface]

    public struct Block: Sendable, Equatable {
        public var readBytes: UInt64?
        public var writeBytes: UInt64?
        public var readRequests: UInt64?
        public var writeRequests: UInt64?
    }

    public struct Interface: Sendable, Equatable {
        public var receivedBytes: UInt64?
        public var receivedPackets: UInt64?
        public var sentBytes: UInt64?
        public var sentPackets: UInt64?
    }
}

extension Domain {
    /// The counters of `disks` (target devices) and `interfaces` (names or MAC addresses), read one call each:
    /// `virDomainGetInfo`, `virDomainBlockStats`, `virDomainInterfaceStats`.
    public func counters(disks: [String], interfaces: [String]) throws(LibvirtError) -> DomainCounters {
        var info = virDomainInfo()
        guard virDomainGetInfo(handle, &info) == 0 else { throw LibvirtError.last("read the CPU time of domain \(name)") }
        var counters = DomainCounters(cpuTimeNanoseconds: UInt64(info.cpuTime), disks: [:], interfaces: [:])
        for device in disks {
            var stats = virDomainBlockStatsStruct()
            guard virDomainBlockStats(handle, device, &stats, MemoryLayout<virDomainBlockStatsStruct>.size) == 0 else {
                throw LibvirtError.last("read the counters of disk \(device) of domain \(name)")
            }
            counters.disks[device] = .init(readBytes: Self.kept(stats.rd_bytes), writeBytes: Self.kept(stats.wr_bytes),
                                           readRequests: Self.kept(stats.rd_req), writeRequests: Self.kept(stats.wr_req))
        }
        for device in interfaces {
            var stats = virDomainInterfaceStatsStruct()
            guard virDomainInterfaceStats(handle, device, &stats, MemoryLayout<virDomainInterfaceStatsStruct>.size) == 0 else {
                throw LibvirtError.last("read the counters of interface \(device) of domain \(name)")
            }
            counters.interfaces[device] = .init(receivedBytes: Self.kept(stats.rx_bytes), receivedPackets: Self.kept(stats.rx_packets),
                                                sentBytes: Self.kept(stats.tx_bytes), sentPackets: Self.kept(stats.tx_packets))
        }
        return counters
    }

    /// libvirt marks a counter the hypervisor does not keep with -1.
    private static func kept(_ value: Int64) -> UInt64? { value < 0 ? nil : UInt64(value) }
}
