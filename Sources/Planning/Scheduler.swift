import Manifests

/// Places instances on compute nodes: deterministic, sticky (an instance that runs somewhere stays there),
/// honouring pinned nodes and zones, with vCPU and RAM allocation ratios, preferring the node with the most
/// free RAM (ties broken by name) — like nova's filter scheduler with the RAM weigher.
public struct Scheduler: Sendable {
    /// A compute node's capacity after allocation ratios.
    public struct Host: Sendable {
        public var name: String
        public var zone: String
        public var vcpus: Int
        public var ramBytes: UInt64
        /// The instance pool's capacity (disks are not overcommitted).
        public var diskBytes: UInt64
        /// The tenant-volume pool's capacity: the node's disks when it has the `volume` role, else none.
        public var volumeBytes: UInt64
        var usedVCPUs = 0
        var usedRAM: UInt64 = 0
        var usedDisk: UInt64 = 0
        var usedVolume: UInt64 = 0

        /// A host with capacities already multiplied by the allocation ratios.
        public init(name: String, zone: String, vcpus: Int, ramBytes: UInt64, diskBytes: UInt64 = .max, volumeBytes: UInt64 = .max) {
            self.name = name
            self.zone = zone
            self.vcpus = vcpus
            self.ramBytes = ramBytes
            self.diskBytes = diskBytes
            self.volumeBytes = volumeBytes
        }

        var freeRAM: UInt64 { ramBytes - min(ramBytes, usedRAM) }
        var freeDisk: UInt64 { diskBytes - min(diskBytes, usedDisk) }
        var freeVolume: UInt64 { volumeBytes - min(volumeBytes, usedVolume) }

        func fits(_ request: Request) -> Bool {
            usedVCPUs + request.vcpus <= vcpus && request.ramBytes <= freeRAM && request.diskBytes <= freeDisk && request.volumeBytes <= freeVolume
        }

        mutating func take(_ request: Request) {
            usedVCPUs += request.vcpus
            usedRAM += request.ramBytes
            usedDisk += request.diskBytes
            usedVolume = usedVolume.addingReportingOverflow(request.volumeBytes).overflow ? .max : usedVolume + request.volumeBytes
        }
    }

    /// One instance to place.
    public struct Request: Sendable {
        public var address: Address
        public var vcpus: Int
        public var ramBytes: UInt64
        /// Root plus ephemeral disk.
        public var diskBytes: UInt64
        /// The Volumes attached to it (they live in its node's volume pool).
        public var volumeBytes: UInt64 = 0
        public var zone: String?
        public var pinnedNode: String?
        /// Where it runs now, if anywhere.
        public var current: String?

        /// Creates a request.
        public init(address: Address, vcpus: Int, ramBytes: UInt64, diskBytes: UInt64 = 0, zone: String?, pinnedNode: String?, current: String?) {
            self.address = address
            self.diskBytes = diskBytes
            self.vcpus = vcpus
            self.ramBytes = ramBytes
            self.zone = zone
            self.pinnedNode = pinnedNode
            self.current = current
        }
    }

    /// Why an instance could not be placed.
    public struct Failure: Sendable, Equatable {
        public var address: Address
        public var reason: String
    }

    /// The hosts of a region, from its compute nodes and allocation ratios.
    public static func hosts(of region: RegionSpec, nodes: [Resource<NodeSpec>]) -> [Host] {
        nodes.filter { $0.spec.has(.compute) }.map { node in
            Host(name: node.name, zone: node.spec.zone?.value ?? node.name,
                 vcpus: Int(saturating: Double(node.spec.cpus.value) * region.effectiveCPURatio),
                 ramBytes: UInt64(saturating: Double(node.spec.memory.value.bytes) * region.effectiveRAMRatio),
                 diskBytes: node.spec.instanceStorageBytes,
                 volumeBytes: node.spec.has(.volume) ? (node.spec.disks?.value ?? []).reduce(UInt64(0)) { $0.addingReportingOverflow($1.size.value.bytes).overflow ? .max : $0 + $1.size.value.bytes } : 0)
        }.sorted { $0.name < $1.name }
    }

    /// Places every request: instances already running keep their node (if it still exists and matches a pin or
    /// zone); the rest are placed largest first. Returns node by address, failures with the shortfall, and how many
    /// requests were placed by room (`pending`: not kept where they run). While none is, what each request asks for
    /// places no other: an instance that keeps its node may change its size and every placement stays.
    public static func place(_ requests: [Request], on hosts: [Host]) -> (placements: [Address: String], failures: [Failure], pending: Int) {
        var hosts = hosts
        let position = Dictionary(uniqueKeysWithValues: hosts.enumerated().map { ($1.name, $0) })
        var placements: [Address: String] = [:]
        var failures: [Failure] = []
        var pending: [Request] = []
        for request in requests {
            if let current = request.current, let index = position[current],
               request.pinnedNode == nil || request.pinnedNode == current,
               request.zone == nil || request.zone == hosts[index].zone {
                // Where it runs it stays, but volumes attached to it must fit that node's volume pool.
                guard request.volumeBytes <= hosts[index].freeVolume else {
                    failures.append(Failure(address: request.address, reason: "its volumes need \(ByteSize(bytes: request.volumeBytes)) but node '\(current)' has \(ByteSize(bytes: hosts[index].freeVolume)) of volume storage free (volumes live on their instance's node, which needs the 'volume' role and disks); pin the instance to a volume node with room"))
                    continue
                }
                hosts[index].take(request)
                placements[request.address] = current
            } else {
                pending.append(request)
            }
        }
        pending.sort { ($0.ramBytes, $0.vcpus, $1.address) > ($1.ramBytes, $1.vcpus, $0.address) }
        for request in pending {
            var best: Int?
            for (index, host) in hosts.enumerated() {
                if let pin = request.pinnedNode, pin != host.name { continue }
                if let zone = request.zone, zone != host.zone { continue }
                guard host.fits(request) else { continue }
                if let current = best, hosts[current].freeRAM >= host.freeRAM { continue }
                best = index
            }
            guard let index = best else {
                failures.append(Failure(address: request.address, reason: shortfall(for: request, on: hosts)))
                continue
            }
            hosts[index].take(request)
            placements[request.address] = hosts[index].name
        }
        return (placements, failures, pending.count)
    }

    private static func shortfall(for request: Request, on hosts: [Host]) -> String {
        let candidates = hosts.filter { host in
            (request.pinnedNode == nil || request.pinnedNode == host.name) && (request.zone == nil || request.zone == host.zone)
        }
        if candidates.isEmpty {
            if let pin = request.pinnedNode { return "node '\(pin)' is not a compute node of the region" }
            if let zone = request.zone { return "zone '\(zone)' has no compute node" }
            return "the region has no compute node"
        }
        let freeVCPUs = candidates.map { $0.vcpus - $0.usedVCPUs }.max() ?? 0
        let freeRAM = candidates.map(\.freeRAM).max() ?? 0
        let freeDisk = candidates.map(\.freeDisk).max() ?? 0
        if request.volumeBytes > 0, !candidates.contains(where: { $0.freeVolume >= request.volumeBytes }) {
            return "its volumes need \(ByteSize(bytes: request.volumeBytes)) of volume storage, and no eligible node has that much free (volumes live on their instance's node: it needs the 'volume' role and disks)"
        }
        return "it needs \(request.vcpus) vCPUs, \(ByteSize(bytes: request.ramBytes)) RAM and \(ByteSize(bytes: request.diskBytes)) disk; the roomiest eligible node has \(freeVCPUs) vCPUs, \(ByteSize(bytes: freeRAM)) RAM and \(ByteSize(bytes: freeDisk)) disk free"
    }
}
