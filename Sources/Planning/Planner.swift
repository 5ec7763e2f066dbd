import Dispatch
import Foundation
import Manifests
import Parallel

/// Turns the desired model and the observed nodes into a plan. Pure: no I/O, deterministic.
public enum Planner {
    /// Plans `regions` (all when nil). `observed` holds every node of those regions that was observed.
    /// `storedRings` holds each ring's builder from earlier runs (by ring address); `hour` is now, in hours since the
    /// epoch, for min_part_hours. Regions are independent and planned concurrently.
    public static func plan(model: DesiredModel, observed: [ObservedNode], regions only: Set<String>? = nil, revision: String? = nil,
                            storedRings: [String: StoredRing] = [:], hour: Int32 = 0) -> Plan {
        let regions = model.regions.filter { only?.contains($0.name) ?? true }.sorted { $0.name < $1.name }
        let slices = RegionSlices(model)
        let catalog = Catalog(model)
        let observedByNode = Dictionary(observed.map { ($0.address.name, $0) }, uniquingKeysWith: { first, _ in first })
        let results = ResultSlots<RegionPlan>(count: regions.count)
        DispatchQueue.concurrentPerform(iterations: regions.count) { index in
            results[index] = planRegion(regions[index], slice: slices[regions[index].name], catalog: catalog,
                                        observed: observedByNode, storedRings: storedRings, hour: hour)
        }
        return combine(results.values, revision: revision)
    }

    /// Plans one region from its slice of the model. The result depends only on the arguments, so a caller that
    /// knows none of them changed may keep an earlier result (the incremental reconciler does).
    public static func planRegion(_ region: Resource<RegionSpec>, slice: RegionSlice, catalog: Catalog, observed: [String: ObservedNode],
                                  storedRings: [String: StoredRing], hour: Int32) -> RegionPlan {
        let nodes = slice.nodes.sorted { $0.name < $1.name }
        let regionObserved = nodes.compactMap { observed[$0.name] }
        var planner = RegionPlanner(region: region, slice: slice, catalog: catalog, nodes: nodes, observed: regionObserved)
        planner.run()
        planner.planRings(storedRings: storedRings, hour: hour)
        var result = RegionPlan(region: region.name)
        for node in regionObserved { result.fingerprints[node.address.description] = node.fingerprint }
        result.changes = planner.changes
        result.unmanaged = planner.unmanaged
        result.unplaceable = planner.unplaceable
        result.rings = planner.rings.filter(\.rebuilt)
        result.unchanged = planner.unchanged
        result.settling = planner.rings.contains { !$0.state.settled }
        return result
    }

    /// One plan from region plans (in region order).
    public static func combine(_ regions: [RegionPlan], revision: String?) -> Plan {
        var fingerprints: [String: String] = [:]
        for region in regions { fingerprints.merge(region.fingerprints) { first, _ in first } }
        var plan = Plan(revision: revision, regions: regions.map(\.region), observed: fingerprints, changes: regions.flatMap(\.changes),
                        unmanaged: regions.flatMap(\.unmanaged), unplaceable: regions.flatMap(\.unplaceable))
        plan.rings = regions.flatMap(\.rings)
        plan.unchanged = regions.reduce(0) { $0 + $1.unchanged }
        return plan
    }
}

/// What planning one region produced.
public struct RegionPlan: Sendable, Codable {
    public var region: String
    public var fingerprints: [String: String] = [:]
    public var changes: [Change] = []
    public var unmanaged: [Plan.Unmanaged] = []
    public var unplaceable: [Plan.Unplaceable] = []
    public var rings: [RingPlan] = []
    public var unchanged = 0
    /// Whether a ring of the region holds partitions back (min_part_hours): its plan changes with the hour.
    public var settling = false

    /// Whether the region is converged: nothing to change, nothing unmanaged or unplaceable.
    public var isConverged: Bool { changes.isEmpty && unmanaged.isEmpty && unplaceable.isEmpty }

    public init(region: String) {
        self.region = region
    }
}

/// The resources of one region that its plan reads, in declaration order.
public struct RegionSlice: Sendable {
    public var nodes: [Resource<NodeSpec>] = []
    public var instances: [Resource<InstanceSpec>] = []
    public var networks: [Resource<NetworkSpec>] = []
    public var rings: [Resource<RingSpec>] = []

    public init() {}
}

/// Every region's slice, built in one pass over the model.
public struct RegionSlices: Sendable {
    public private(set) var byRegion: [String: RegionSlice] = [:]

    public init(_ model: DesiredModel) {
        for node in model.nodes { if let region = node.region { byRegion[region, default: .init()].nodes.append(node) } }
        for instance in model.instances { if let region = instance.region { byRegion[region, default: .init()].instances.append(instance) } }
        for network in model.networks { if let region = network.region { byRegion[region, default: .init()].networks.append(network) } }
        for ring in model.rings { if let region = ring.region { byRegion[region, default: .init()].rings.append(ring) } }
    }

    public subscript(region: String) -> RegionSlice { byRegion[region] ?? RegionSlice() }
}

/// The cloud-wide catalog a region's plan reads: flavors and images by name.
public struct Catalog: Sendable {
    public var flavors: [String: Resource<FlavorSpec>] = [:]
    public var images: [String: Resource<ImageSpec>] = [:]

    public init(_ model: DesiredModel) {
        flavors = Dictionary(model.flavors.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        images = Dictionary(model.images.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
    }
}

/// Plans one region: placement, addresses, then the diff node by node.
struct RegionPlanner {
    let region: Resource<RegionSpec>
    let slice: RegionSlice
    let catalog: Catalog
    let nodes: [Resource<NodeSpec>]
    let observed: [ObservedNode]
    let observedByName: [String: ObservedNode]
    var changes: [Change] = []
    var unmanaged: [Plan.Unmanaged] = []
    var unplaceable: [Plan.Unplaceable] = []
    var rings: [RingPlan] = []
    /// Instances found exactly as wanted.
    var unchanged = 0

    init(region: Resource<RegionSpec>, slice: RegionSlice, catalog: Catalog, nodes: [Resource<NodeSpec>], observed: [ObservedNode]) {
        self.region = region
        self.slice = slice
        self.catalog = catalog
        self.nodes = nodes
        self.observed = observed
        observedByName = Dictionary(observed.map { ($0.address.name, $0) }, uniquingKeysWith: { first, _ in first })
    }

    private func nodeAddress(_ name: String) -> Address { Address(kind: .node, region: region.name, name: name) }

    mutating func run() {
        // What runs where now.
        var current: [Address: (node: String, domain: ObservedDomain)] = [:]
        var duplicates: [(node: String, domain: ObservedDomain)] = []
        for node in observed {
            for domain in node.domains {
                guard let address = domain.address else {
                    unmanaged.append(.init(node: node.address, kind: "domain", name: domain.name))
                    continue
                }
                if current[address] == nil { current[address] = (node.address.name, domain) } else { duplicates.append((node.address.name, domain)) }
            }
        }

        let desired = desiredDomains(current: current)
        let computeNodes = Set(nodes.filter { $0.spec.has(.compute) }.map(\.name))
        let networks = slice.networks.sorted { $0.name < $1.name }

        // Deletes first: domains removed from the manifests, moved away, or duplicated by an interrupted move.
        for (address, entry) in current.sorted(by: { $0.key < $1.key }) {
            if let want = desired[address] {
                if want.node != entry.node {
                    changes.append(Change(address: address, node: nodeAddress(entry.node), action: .delete, reason: .moved,
                                          fields: [.init(field: "node", old: entry.node, new: want.node)], observedName: entry.domain.name))
                }
            } else {
                changes.append(Change(address: address, node: nodeAddress(entry.node), action: .delete, reason: .removed, observedName: entry.domain.name))
            }
        }
        for entry in duplicates {
            changes.append(Change(address: entry.domain.address!, node: nodeAddress(entry.node), action: .delete, reason: .moved,
                                  observedName: entry.domain.name))
        }

        // Networks on every compute node, before the domains that use them.
        var networkChange: [String: String] = [:]  // "<node>/<network>" → change id
        for node in nodes where computeNodes.contains(node.name) {
            let present = Set(observedByName[node.name]?.networks ?? [])
            for network in networks where !present.contains(network.name) {
                let change = Change(address: network.address, node: nodeAddress(node.name), action: .create, reason: .new, bridge: network.spec.bridge.value)
                networkChange["\(node.name)/\(network.name)"] = change.id
                changes.append(change)
            }
            // A network goes only after every domain deleted from this node (deletes run in reverse dependency order).
            let domainDeletes = changes.filter { $0.action == .delete && $0.node.name == node.name && $0.address.kind == .instance }.map(\.id)
            for name in present.subtracting(networks.map(\.name)).sorted() {
                changes.append(Change(address: Address(kind: .network, region: region.name, name: name), node: nodeAddress(node.name),
                                      action: .delete, reason: .removed, dependsOn: domainDeletes))
            }
        }

        // Domains.
        let networkOf = Dictionary(slice.instances.map { ($0.address, $0.spec.network.value) },
                                   uniquingKeysWith: { first, _ in first })
        for (address, want) in desired.sorted(by: { $0.key < $1.key }) {
            let node = nodeAddress(want.node)
            let network = networkOf[address] ?? ""
            let dependsOn = networkChange["\(want.node)/\(network)"].map { [$0] } ?? []
            guard let have = current[address], have.node == want.node else {
                let moved = current[address] != nil
                let deleteID = moved ? ["\(address)@\(current[address]!.node)"] : []
                changes.append(Change(address: address, node: node, action: .create, reason: moved ? .moved : .new, domain: want,
                                      dependsOn: dependsOn + deleteID))
                continue
            }
            let fields = Self.fieldChanges(have: have.domain, want: want)
            if have.domain.specHash != want.specHash {
                changes.append(Change(address: address, node: node, action: .update, reason: .specChanged, fields: fields, domain: want, dependsOn: dependsOn))
            } else if !fields.isEmpty {
                changes.append(Change(address: address, node: node, action: .update, reason: .drifted, fields: fields, domain: want, dependsOn: dependsOn))
            } else if (have.domain.state == .running) != want.running {
                changes.append(Change(address: address, node: node, action: .power, reason: .powerState,
                                      fields: [.init(field: "state", old: have.domain.state.rawValue, new: want.running ? "running" : "shutoff")],
                                      domain: want))
            } else {
                unchanged += 1
            }
        }
    }

    /// Rebalances each Ring of the region (on a copy of its stored builder) and installs the ring file on every
    /// storage and controller node whose copy is missing or differs (by sha256).
    mutating func planRings(storedRings: [String: StoredRing], hour: Int32) {
        let regionName = region.name
        let servers = nodes.filter { $0.spec.has(.storage) || $0.spec.has(.controller) }
        for ring in slice.rings.sorted(by: { $0.name < $1.name }) {
            let ringPlan: RingPlan
            do {
                ringPlan = try RingPlanner.plan(ring: ring, nodes: nodes, stored: storedRings[ring.address.description], hour: hour)
            } catch {
                unplaceable.append(.init(address: ring.address, reason: "\(error)"))
                continue
            }
            rings.append(ringPlan)
            let regionAddress = Address(kind: .region, name: regionName)
            var build: [String] = []
            if ringPlan.rebuilt {
                let state = try? ringPlan.state.encoded()
                let change = Change(address: ring.address, node: regionAddress, action: storedRings[ring.address.description] == nil ? .create : .update,
                                    reason: storedRings[ring.address.description] == nil ? .new : .specChanged,
                                    fields: ringFields(ringPlan), payload: state, checksum: ringPlan.checksum)
                changes.append(change)
                build = [change.id]
            }
            for server in servers {
                let installed = observedByName[server.name]?.rings[ringPlan.fileName]
                guard installed != ringPlan.checksum else { continue }
                guard let payload = try? RingPlanner.file(for: ringPlan) else { continue }
                // An unchanged ring whose file is missing or altered on a node is drift; a rebuilt one is new or changed.
                let reason: Change.Reason = ringPlan.rebuilt ? (installed == nil ? .new : .specChanged) : .drifted
                changes.append(Change(address: ring.address, node: nodeAddress(server.name), action: installed == nil ? .create : .update,
                                      reason: reason, fields: [.init(field: ringPlan.fileName, old: installed.map { String($0.prefix(12)) } ?? "missing",
                                                                     new: String(ringPlan.checksum.prefix(12)))],
                                      dependsOn: build, payload: payload, checksum: ringPlan.checksum, file: ringPlan.fileName))
            }
        }
    }

    private func ringFields(_ plan: RingPlan) -> [Change.FieldChange] {
        var fields: [Change.FieldChange] = []
        if !plan.added.isEmpty { fields.append(.init(field: "devices added", old: "", new: "\(plan.added.count)")) }
        if !plan.removed.isEmpty { fields.append(.init(field: "devices removed", old: "", new: "\(plan.removed.count)")) }
        if !plan.changed.isEmpty { fields.append(.init(field: "devices changed", old: "", new: "\(plan.changed.count)")) }
        fields.append(.init(field: "replicas moved", old: "", new: "\(plan.replicasMoved)"))
        fields.append(.init(field: "balance", old: plan.balanceBefore.map { String(format: "%.2f%%", $0) } ?? "-",
                            new: String(format: "%.2f%%", plan.balanceAfter)))
        if plan.heldBack > 0 { fields.append(.init(field: "held back by min_part_hours", old: "", new: "\(plan.heldBack) partitions")) }
        for warning in plan.warnings { fields.append(.init(field: "warning", old: "", new: warning)) }
        return fields
    }

    /// The desired domain of every instance of the region that can be placed.
    private mutating func desiredDomains(current: [Address: (node: String, domain: ObservedDomain)]) -> [Address: DesiredDomain] {
        let instances = slice.instances.sorted { $0.address < $1.address }
        let flavors = catalog.flavors
        let images = catalog.images
        let networks = Dictionary(slice.networks.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })

        var requests: [Scheduler.Request] = []
        for instance in instances {
            guard let flavor = flavors[instance.spec.flavor.value] else { continue }
            requests.append(Scheduler.Request(address: instance.address, vcpus: flavor.spec.vcpus.value, ramBytes: flavor.spec.ram.value.bytes,
                                              zone: instance.spec.zone?.value, pinnedNode: instance.spec.node?.value,
                                              current: current[instance.address]?.node))
        }
        let (placements, failures) = Scheduler.place(requests, on: Scheduler.hosts(of: region, nodes: nodes))
        unplaceable += failures.map { Plan.Unplaceable(address: $0.address, reason: $0.reason) }

        // Addresses: manifest fixed IPs first, then addresses instances already have, then the lowest free ones.
        var pools = networks.mapValues { AddressPool(network: $0.spec) }
        var addresses: [Address: IPv4Address] = [:]
        for instance in instances {
            if let ip = instance.spec.fixedIP?.value, pools[instance.spec.network.value]?.claim(ip) == true { addresses[instance.address] = ip }
        }
        for instance in instances where addresses[instance.address] == nil && instance.spec.fixedIP == nil {
            if let ip = current[instance.address]?.domain.ip, pools[instance.spec.network.value]?.claim(ip) == true { addresses[instance.address] = ip }
        }
        for instance in instances where addresses[instance.address] == nil && placements[instance.address] != nil {
            if let ip = pools[instance.spec.network.value]?.allocate() { addresses[instance.address] = ip }
        }

        var desired: [Address: DesiredDomain] = [:]
        for instance in instances {
            guard let node = placements[instance.address], let ip = addresses[instance.address],
                  let flavor = flavors[instance.spec.flavor.value], let network = networks[instance.spec.network.value] else { continue }
            let prefix = DesiredDomain.volumePrefix(for: instance.address)
            var disks = [DesiredDomain.Disk(pool: "stacklab-instances", volume: "\(prefix)-root", bytes: flavor.spec.disk.value.bytes,
                                            device: "vda", image: images[instance.spec.image.value]?.spec.source.value)]
            if let ephemeral = flavor.spec.ephemeral?.value, ephemeral.bytes > 0 {
                disks.append(.init(pool: "stacklab-instances", volume: "\(prefix)-ephemeral", bytes: ephemeral.bytes, device: "vdb", image: nil))
            }
            desired[instance.address] = DesiredDomain(
                address: instance.address, node: node, name: DesiredDomain.name(for: instance.address),
                vcpus: flavor.spec.vcpus.value, memoryKiB: flavor.spec.ram.value.bytes / 1024, disks: disks,
                interface: .init(bridge: network.spec.bridge.value, mac: DesiredDomain.mac(for: instance.address), ip: ip),
                running: (instance.spec.state?.value ?? .running) == .running,
                flavor: flavor.name, image: instance.spec.image.value)
        }
        return desired
    }

    /// Field-level differences between what runs and what is wanted.
    static func fieldChanges(have: ObservedDomain, want: DesiredDomain) -> [Change.FieldChange] {
        var fields: [Change.FieldChange] = []
        if let flavor = have.flavor, flavor != want.flavor { fields.append(.init(field: "flavor", old: flavor, new: want.flavor)) }
        if let image = have.image, image != want.image { fields.append(.init(field: "image", old: image, new: want.image)) }
        if have.vcpus != want.vcpus { fields.append(.init(field: "vcpus", old: "\(have.vcpus)", new: "\(want.vcpus)")) }
        if have.memoryKiB != want.memoryKiB {
            fields.append(.init(field: "memory", old: "\(ByteSize(bytes: have.memoryKiB * 1024))", new: "\(ByteSize(bytes: want.memoryKiB * 1024))"))
        }
        if let ip = have.ip, ip != want.interface.ip { fields.append(.init(field: "fixedIP", old: "\(ip)", new: "\(want.interface.ip)")) }
        return fields
    }
}
