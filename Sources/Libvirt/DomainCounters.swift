internal import CLibvirt

/// A running domain's cumulative counters, as libvirt reads them from the hypervisor (they restart from zero when
/// the domain restarts). A counter the hypervisor does not keep is nil.
public struct DomainCounters: Sendable, Equatable {
    /// CPU time used by all its virtual CPUs, in nanoseconds.
    public var cpuTimeNanoseconds: UInt64
    /// Bytes and requests read and written by each disk, by target device (`vda`).
    public var disks: [String: Block]
    /// Bytes and packets received and sent by each interface, by the device it was asked for (a MAC address) or, read
    /// in bulk, by its host-side device (the tap).
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

extension Connection {
    /// Every running domain with its counters, read in one call (`virConnectGetAllDomainStats` with the CPU, block
    /// and interface groups): on a remote node one round trip, however many guests it runs. A driver that keeps a
    /// group's counters elsewhere leaves them out (libvirt's test driver reports only state); such a domain's
    /// counters are nil, for the caller to read one domain at a time.
    public func runningDomainCounters() throws(LibvirtError) -> [(domain: Domain, counters: DomainCounters?)] {
        var records: UnsafeMutablePointer<virDomainStatsRecordPtr?>?
        let groups = VIR_DOMAIN_STATS_CPU_TOTAL.rawValue | VIR_DOMAIN_STATS_INTERFACE.rawValue | VIR_DOMAIN_STATS_BLOCK.rawValue
        let count = virConnectGetAllDomainStats(handle, groups, &records, VIR_CONNECT_GET_ALL_DOMAINS_STATS_ACTIVE.rawValue)
        guard count >= 0, let records else { throw LibvirtError.last("read the counters of the running domains on \(uri)") }
        defer { virDomainStatsRecordListFree(records) }
        var result: [(domain: Domain, counters: DomainCounters?)] = []
        for index in 0..<Int(count) {
            guard let record = records[index]?.pointee, let dom = record.dom, virDomainRef(dom) == 0 else { continue }
            let parameters = TypedParameters(record.params, count: Int(record.nparams))
            result.append((Domain(handle: dom, connection: self), parameters.counters()))
        }
        return result
    }
}

/// A stats record's typed parameters, by name.
private struct TypedParameters {
    private var numbers: [String: UInt64] = [:]
    private var strings: [String: String] = [:]

    init(_ parameters: UnsafeMutablePointer<virTypedParameter>?, count: Int) {
        guard let parameters else { return }
        for index in 0..<count {
            var parameter = parameters[index]
            let name = withUnsafeBytes(of: &parameter.field) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            switch Int32(parameter.type) {
            case Int32(VIR_TYPED_PARAM_ULLONG.rawValue): numbers[name] = parameter.value.ul
            case Int32(VIR_TYPED_PARAM_LLONG.rawValue): if parameter.value.l >= 0 { numbers[name] = UInt64(parameter.value.l) }
            case Int32(VIR_TYPED_PARAM_UINT.rawValue): numbers[name] = UInt64(parameter.value.ui)
            case Int32(VIR_TYPED_PARAM_INT.rawValue): if parameter.value.i >= 0 { numbers[name] = UInt64(parameter.value.i) }
            case Int32(VIR_TYPED_PARAM_STRING.rawValue): if let text = parameter.value.s { strings[name] = String(cString: text) }
            default: break
            }
        }
    }

    /// The counters these parameters hold (`cpu.time`, `block.N.*`, `net.N.*`), or nil without a CPU time.
    func counters() -> DomainCounters? {
        guard let cpu = numbers["cpu.time"] else { return nil }
        var counters = DomainCounters(cpuTimeNanoseconds: cpu, disks: [:], interfaces: [:])
        for index in 0..<Int(numbers["block.count"] ?? 0) {
            let prefix = "block.\(index)."
            guard let device = strings[prefix + "name"] else { continue }
            counters.disks[device] = .init(readBytes: numbers[prefix + "rd.bytes"], writeBytes: numbers[prefix + "wr.bytes"],
                                           readRequests: numbers[prefix + "rd.reqs"], writeRequests: numbers[prefix + "wr.reqs"])
        }
        for index in 0..<Int(numbers["net.count"] ?? 0) {
            let prefix = "net.\(index)."
            guard let device = strings[prefix + "name"] else { continue }
            counters.interfaces[device] = .init(receivedBytes: numbers[prefix + "rx.bytes"], receivedPackets: numbers[prefix + "rx.pkts"],
                                                sentBytes: numbers[prefix + "tx.bytes"], sentPackets: numbers[prefix + "tx.pkts"])
        }
        return counters
    }
}
