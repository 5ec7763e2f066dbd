import Manifests
import Parallel

/// Plans one region: placement, addresses, then the diff node by node. A region with no spec left the manifests:
/// everything StackLab owns on its nodes goes.
struct RegionPlanner {
    let region: String
    let spec: RegionSpec?
    let slice: RegionSlice
    let catalog: Catalog
    let options: Planner.Options
    /// The region's nodes in the manifests, by name order.
    let nodes: [Resource<NodeSpec>]
    /// Every observed node of the region, by address (nodes that left the manifests included).
    let observed: [Address: ObservedNode]
    /// The addresses of `observed`, sorted: the loops over nodes that make changes go in this order (sorting the
    /// observations themselves would copy each one, every field retained, many times).
    let observedOrder: [Address]
    var changes: [Change] = []
    var unmanaged: [Plan.Unmanaged] = []
    var errors: [Plan.Problem] = []
    var orphans: [Plan.Orphan] = []
    var rings: [RingRebalance] = []
    /// Each compute node's own address on each network (network → node → address).
    var gateways: [String: [Address: IPv4Address]] = [:]
    /// Where the Region document is (rules it alone causes point there).
    var regionLocation: SourceLocation?
    /// The Region document, when planned from one (what the firewall memo knows the region's spec by).
    var regionDocument: Resource<RegionSpec>?
    /// Each compute node's ruleset outcome from the last plan of the region, kept by a long-running planner.
    var regionMemo: RegionMemo?
    /// Fingerprints of observed nodes already known to the caller (the observations are those it digested before).
    var fingerprints: [Address: String] = [:]
    /// The ruleset each compute node should run, as rendered (a node the firewall memo knew is not rendered, so not here).
    var rulesets: [Ruleset] = []
    /// Resources found exactly as wanted.
    var unchanged = 0
    /// The region's object store as observed: its snapshots (nil when the region has none, or it was not observed).
    var snapshots: [ObservedSnapshot]?
    /// The tenants' accounts in the region's object store as observed (nil when StackLab has no reseller credential
    /// there, or they were not observed).
    var accounts: [ObservedAccount]?
    /// Planning now, in hours since the epoch (snapshot schedules).
    var hour: Int32 = 0
    /// Where each tenant volume (libvirt name) belongs once the plan is applied.
    var volumeHomes: [String: Address] = [:]
    /// Whether the plan depends on the hour beyond rings (a snapshot schedule).
    var scheduled = false
    /// What each observed node's installed HAProxy file says (read once: port allocation and billing both use it).
    var installedProxies: [Address: ProxyConfig.Installed] = [:]
    /// Each node of the region (declared or observed) as a change's target, made once: a target is boxed, and the
    /// changes on one node share its box.
    let nodeTargets: [Address: Change.Target]
    /// The region's declared instances' addresses, sorted, each once (empty for a region with no spec).
    var instanceOrder: [Address] = []
    /// How many instances the scheduler placed by room (not kept on the node they run on).
    var placedByRoom = 0

    /// Where an owned domain runs now.
    struct Placed: Sendable {
        var node: Address
        var domain: ObservedDomain
        /// Where the domain is among the observations: its node's position in `observedOrder`, its own in that node's
        /// domains (what a kept run holds instead of the domain).
        var at: Locator

        struct Locator: Sendable {
            var node: Int32
            var domain: Int32
        }
    }

    init(region: String, spec: RegionSpec?, slice: RegionSlice, catalog: Catalog, observed: [ObservedNode], options: Planner.Options) {
        self.region = region
        self.spec = spec
        self.slice = slice
        self.catalog = catalog
        self.options = options
        nodes = slice.nodes.sorted { $0.name < $1.name }
        self.observed = Dictionary(observed.map { ($0.address, $0) }, uniquingKeysWith: { first, _ in first })
        observedOrder = self.observed.keys.sorted()
        var targets = Dictionary(self.observed.keys.map { ($0, Change.Target.node($0)) }, uniquingKeysWith: { first, _ in first })
        for node in slice.nodes {
            let address = Address(kind: .node, region: region, name: node.name)
            if targets[address] == nil { targets[address] = .node(address) }
        }
        nodeTargets = targets
    }

    func nodeAddress(_ name: String) -> Address { Address(kind: .node, region: region, name: name) }

    /// `node` as a change's target (shared by the changes on it).
    func target(_ node: Address) -> Change.Target { nodeTargets[node] ?? .node(node) }

    func result() -> RegionPlan {
        var result = RegionPlan(region: region)
        // Every observed node's fingerprint known already (a long-running planner's unchanged nodes): that very
        // dictionary, which the caller then recognises without comparing it entry by entry.
        let allKnown = fingerprints.count == observed.count && observed.keys.allSatisfy { fingerprints[$0] != nil }
        if allKnown { result.fingerprints = fingerprints }
        for node in observed.values {
            if !allKnown { result.fingerprints[node.address] = fingerprints[node.address] ?? node.fingerprint }
            result.managed += node.domains.count { $0.address != nil }
        }
        // Kept as long as the region's inputs are unchanged (a memo may keep every region's plan): without the spare
        // capacity appending left, up to half the array.
        result.changes.reserveCapacity(changes.count)
        result.changes.append(contentsOf: changes)
        result.unmanaged = unmanaged.sorted { ($0.node, $0.name) < ($1.node, $1.name) }
        result.errors = errors
        result.orphans = orphans
        result.rings = rings.filter(\.rebuilt)
        result.unchanged = unchanged
        result.settling = scheduled || rings.contains { !$0.settled }
        return result
    }

    mutating func run() {
        let context = runContext()
        if let context, spliceInstances(context) { return }
        installedProxies = observed.compactMapValues { $0.proxy.flatMap(ProxyConfig.Installed.init(parsing:)) }
        let declared = Set(nodes.map { nodeAddress($0.name) })
        // What runs where now. A domain on a node that left the manifests is an orphan.
        var current: [Address: Placed] = [:]
        current.reserveCapacity(observed.values.reduce(0) { $0 + $1.domains.count })
        var duplicates: [Placed] = []
        var unmanagedNames: [Address: Set<String>] = [:]
        for (nodeIndex, address) in observedOrder.enumerated() {
            let node = observed[address]!
            for (domainIndex, domain) in node.domains.enumerated() {
                guard let address = domain.address else {
                    unmanaged.append(.init(node: node.address, kind: "domain", name: domain.name))
                    unmanagedNames[node.address, default: []].insert(domain.name)
                    continue
                }
                if !declared.contains(node.address) && options.keepOrphans {
                    orphans.append(.init(address: address, node: node.address))
                    continue
                }
                let placed = Placed(node: node.address, domain: domain, at: .init(node: Int32(nodeIndex), domain: Int32(domainIndex)))
                if let first = current[address] {
                    // Two copies: one was made from the other by a move that stopped before the old one was deleted. The
                    // copy is the newer one (the move stopped the old domain before copying it).
                    let newer = domain.origin == first.node
                    current[address] = newer ? placed : first
                    duplicates.append(newer ? first : placed)
                } else {
                    current[address] = placed
                }
            }
        }
        let kept = Set(orphans.map(\.address))
        // The region's instances by address, sorted once: placement, addresses and every loop over instances below.
        let (instances, ids) = spec == nil ? ([], []) : slice.instances.sortedByAddress(\.address)
        placedByRoom = 0
        instanceOrder = []
        instanceOrder.reserveCapacity(ids.count)
        for address in ids where instanceOrder.last != address { instanceOrder.append(address) }  // once each
        var desired = desiredDomains(instances, ids: ids, current: current)
        for address in kept { desired[address] = nil }  // still running on a kept orphan node: never a second copy
        // A stale copy on the very node the instance must move to: that copy's delete is this plan's change for the
        // instance on that node, and the move follows in the next plan (a plan has one change per instance and node).
        var strayOnTarget: [Address: Address] = [:]  // instance → the node it moves to
        for entry in duplicates {
            guard let address = entry.domain.address, let want = desired[address], want.node == entry.node, current[address]?.node != entry.node else { continue }
            strayOnTarget[address] = entry.node
            desired[address] = nil  // stays where it is (and keeps its network entries) for this plan
            scheduled = true
        }
        let networks = slice.networks.sorted { $0.name < $1.name }

        let declaredInstances = spec == nil ? [] : Set(slice.instances.map(\.address))
        // Deletes first: domains removed from the manifests, moved away, or duplicated by an interrupted move.
        var freedIPs: [IPv4Address: ChangeID] = [:]
        // Keys sorted, values looked up: sorting the (address, domain) pairs moves every large value many times.
        for address in inOrder(current.keys, declared: declaredInstances) {
            let have = current[address]!
            let onRemovedNode = !declared.contains(have.node)
            if let want = desired[address] {
                guard want.node != have.node else { continue }
                // After the copy on the new node: its volumes are there by then.
                let change = Change(address: address, target: target(have.node), action: .delete, reason: onRemovedNode ? .nodeRemoved : .moved,
                                    fields: [.init(field: "node", old: have.node.name, new: want.node.name)],
                                    dependsOn: [ChangeID(address: address, target: target(want.node))],
                                    operation: .deleteDomain(domain: have.domain.name, instance: address))
                changes.append(change)
            } else if declaredInstances.contains(address) {
                continue  // declared but not plannable now (no address, no room): an error says why; it is never deleted for that
            } else {
                let reason: Change.Reason = spec == nil ? .regionRemoved : onRemovedNode ? .nodeRemoved : .removed
                let change = Change(address: address, target: target(have.node), action: .delete, reason: reason,
                                    destroys: volumes(of: address, on: have.node),
                                    operation: .deleteDomain(domain: have.domain.name, instance: address))
                if let ip = have.domain.ip { freedIPs[ip] = change.id }
                changes.append(change)
            }
        }
        for entry in duplicates {
            let address = entry.domain.address!
            let fields: [Change.FieldChange] = strayOnTarget[address] == entry.node
                ? [.init(field: "stale copy", old: "", new: "deleted first; the move from \(current[address]!.node.name) follows in the next plan")] : []
            changes.append(Change(address: address, target: target(entry.node), action: .delete, reason: .moved, fields: fields,
                                  destroys: volumes(of: entry.domain.address!, on: entry.node),
                                  operation: .deleteDomain(domain: entry.domain.name, instance: entry.domain.address!)))
        }

        // Networks on every compute node, before the domains that use them; a network goes only after every domain
        // deleted from its node.
        var networkChange: [NodeNetworkKey: ChangeID] = [:]  // the change that makes a network on a node
        let computeNodes = nodes.filter { $0.spec.has(.compute) }.map { nodeAddress($0.name) }
        let keptNodes = Set(orphans.map(\.node))
        for node in Set(computeNodes).union(observed.keys).sorted() where !keptNodes.contains(node) {
            let present = Set(observed[node]?.networks ?? [])
            let wanted = computeNodes.contains(node) ? networks : []
            for network in wanted where !present.contains(network.name) {
                let change = Change(address: network.address, target: target(node), action: .create, reason: .new,
                                    operation: .ensureNetwork(network: network.name, bridge: network.spec.bridge.value))
                networkChange[NodeNetworkKey(node: node.name, network: network.name)] = change.id
                changes.append(change)
            }
            let domainDeletes = changes.filter { $0.action == .delete && $0.target.node == node && $0.address.kind == .instance }.map(\.id)
            for name in present.subtracting(wanted.map(\.name)).sorted() {
                let reason: Change.Reason = spec == nil ? .regionRemoved : declared.contains(node) ? .removed : .nodeRemoved
                changes.append(Change(address: Address(kind: .network, region: region, name: name), target: target(node), action: .delete,
                                      reason: reason, dependsOn: domainDeletes, operation: .deleteNetwork(network: name)))
            }
        }

        // Domains, and networking (DHCP, rulesets, HAProxy): neither reads what the other adds (networking reads only the
        // deletes above), so they are planned side by side on copies of this planner, and what each added is taken in
        // this order, as planning one after the other adds it.
        let base = self
        let domainStart = (changes: changes.count, errors: errors.count)
        let parts = ResultSlots<RegionPlanner>(count: 2)
        ParallelWork.forEach(count: 2, workers: 2) { [desired, current, unmanagedNames, freedIPs, networkChange] index in
            var part = base
            if index == 0 {
                part.planDomains(desired: desired, current: current, unmanagedNames: unmanagedNames, freedIPs: freedIPs, networkChange: networkChange)
            } else {
                part.planNetworking(desired: desired, current: current)
            }
            parts[index] = part
        }
        let (domains, networking) = (parts[0]!, parts[1]!)
        changes += domains.changes[changes.count...] + networking.changes[changes.count...]
        errors += domains.errors[errors.count...] + networking.errors[errors.count...]
        unchanged = domains.unchanged + networking.unchanged - unchanged
        scheduled = domains.scheduled || networking.scheduled
        rulesets = networking.rulesets
        planSnapshots(restores: planVolumes(desired: desired))
        planContainers()
        attachMeters()
        if let context, let regionMemo {
            let decided = DecidedInstances(places: instanceOrder.map { address in desired[address].map { .init($0) } },
                                           running: instanceOrder.map { current[$0]?.at }, unmanagedNames: unmanagedNames, freedIPs: freedIPs,
                                           networkChange: networkChange)
            regionMemo.keep(instanceRun(context, decided: decided,
                                        domainChanges: domainStart.changes..<domains.changes.count,
                                        domainErrors: domainStart.errors..<domains.errors.count), of: region)
        }
    }

    /// A network on a node, for the change that makes it.
    struct NodeNetworkKey: Hashable, Sendable {
        var node: String, network: String
    }

    /// The domains' creates, moves, updates and power changes (their deletes are planned before), in address order.
    private mutating func planDomains(desired: [Address: DesiredDomain], current: [Address: Placed], unmanagedNames: [Address: Set<String>],
                                      freedIPs: [IPv4Address: ChangeID], networkChange: [NodeNetworkKey: ChangeID]) {
        let networkOf = Dictionary(slice.instances.map { ($0.address, $0.spec.network.value) }, uniquingKeysWith: { first, _ in first })
        // One list per node and network, shared by the changes of its instances (a region plan may be kept long).
        let afterNetwork = networkChange.mapValues { [$0] }
        for address in instanceOrder where desired[address] != nil {
            let want = desired[address]!
            var dependsOn = afterNetwork[NodeNetworkKey(node: want.node.name, network: networkOf[address] ?? "")] ?? []
            if let freed = freedIPs[want.interface.ip] { dependsOn.append(freed) }  // the address is someone else's until that delete
            planDomain(address, want: want, have: current[address], dependsOn: dependsOn, unmanagedNames: unmanagedNames)
        }
    }

    /// The domain change of one instance (`want`; `have`: where it runs now, if anywhere): a create, a move, one of
    /// `planInPlace`'s, an error, or nothing. At most one change or error.
    mutating func planDomain(_ address: Address, want: DesiredDomain, have: Placed?, dependsOn: [ChangeID], unmanagedNames: [Address: Set<String>]) {
        guard let have, have.node == want.node else {
            if unmanagedNames[want.node]?.contains(want.name) == true {
                errors.append(.init(address: address, message: "its domain '\(want.name)' would be created on \(want.node), which already has an unmanaged domain of that name; rename or remove that domain, or pin the instance to another node"))
                return
            }
            guard let moved = have else {
                changes.append(Change(address: address, target: target(want.node), action: .create, reason: .new,
                                      dependsOn: dependsOn, operation: .defineDomain(want, restart: false)))
                return
            }
            var copy = want
            copy.origin = moved.node
            changes.append(Change(address: address, target: target(want.node), action: .create, reason: .moved,
                                  fields: [.init(field: "node", old: moved.node.name, new: want.node.name), copied(address, from: moved.node)],
                                  dependsOn: dependsOn, restarts: moved.domain.state == .running,
                                  operation: .moveDomain(copy, from: moved.node, domain: moved.domain.name)))
            return
        }
        planInPlace(address: address, have: have, want: want, dependsOn: dependsOn)
    }

    /// An instance that stays on its node: replaced (image changed), updated (restarting it only when its
    /// hardware changes while it runs), powered on or off, or left alone.
    private mutating func planInPlace(address: Address, have: Placed, want: DesiredDomain, dependsOn: [ChangeID]) {
        let running = have.domain.state == .running
        if let image = have.domain.image, image != want.image {
            changes.append(Change(address: address, target: target(want.node), action: .replace, reason: .imageChanged,
                                  fields: [.init(field: "image", old: image, new: want.image)], dependsOn: dependsOn, restarts: running,
                                  destroys: volumes(of: address, on: want.node), operation: .replaceDomain(want)))
            return
        }
        var fields = Self.fieldChanges(have: have.domain, want: want)
        let volumeSizes = observed[want.node]?.volumes ?? [:]
        for disk in want.disks {
            if volumeSizes[disk.volume] == nil, disk.pool == DesiredDomain.volumePool {
                fields.append(.init(field: "attach \(disk.device)", old: "", new: "volume \(disk.volume) (\(ByteSize(bytes: disk.bytes)))"))
            }
            guard let size = volumeSizes[disk.volume], size != disk.bytes else { continue }
            guard size < disk.bytes else {
                errors.append(.init(address: address, message: "disk \(disk.device) would shrink from \(ByteSize(bytes: size)) to \(ByteSize(bytes: disk.bytes)); shrinking a disk loses data: keep the flavor's disk size, or replace the instance"))
                return
            }
            fields.append(.init(field: "disk \(disk.device)", old: "\(ByteSize(bytes: size))", new: "\(ByteSize(bytes: disk.bytes))"))
        }
        let hardware = fields.contains { $0.field != "flavor" }
        let respecified = have.domain.specHash != want.specHash
        if respecified || !fields.isEmpty {
            // A spec that differs in no field we can name may still differ in hardware (bridge, MAC): restart to be sure.
            let restarts = running && want.running && (hardware || fields.isEmpty) && !Self.growsLive(have: have.domain, want: want)
            changes.append(Change(address: address, target: target(want.node), action: .update,
                                  reason: respecified ? .specChanged : .drifted, fields: fields, dependsOn: dependsOn,
                                  restarts: restarts, operation: .defineDomain(want, restart: restarts)))
        } else if running != want.running {
            changes.append(Change(address: address, target: target(want.node), action: .power, reason: .powerState,
                                  fields: [.init(field: "state", old: have.domain.state.rawValue, new: want.running ? "running" : "shutoff")],
                                  operation: .setPower(domain: want.name, running: want.running)))
        } else {
            unchanged += 1
        }
    }

    /// `addresses` sorted: the declared ones in `instanceOrder` (sorted once), merged with the others (instances that
    /// left the manifests), sorted apart. The same order as `addresses.sorted()`.
    private func inOrder(_ addresses: some Collection<Address>, declared: Set<Address>) -> [Address] {
        let present = Set(addresses)
        let known = instanceOrder.filter(present.contains)
        let others = addresses.filter { !declared.contains($0) }.sorted()
        guard !others.isEmpty else { return known }
        var merged: [Address] = []
        merged.reserveCapacity(known.count + others.count)
        var k = 0, o = 0
        while k < known.count || o < others.count {
            if o == others.count || (k < known.count && known[k] < others[o]) {
                merged.append(known[k])
                k += 1
            } else {
                merged.append(others[o])
                o += 1
            }
        }
        return merged
    }

    /// The volumes an instance has on a node, with their sizes, as a plan shows what a change destroys.
    private func volumes(of address: Address, on node: Address) -> [String] {
        let prefix = DesiredDomain.volumePrefix(for: address) + "-"
        return (observed[node]?.volumes ?? [:]).filter { $0.key.hasPrefix(prefix) }.sorted { $0.key < $1.key }
            .map { "volume \($0.key) (\(ByteSize(bytes: $0.value))) on \(node.name)" }
    }

    /// What moving an instance's volumes copies: the bytes they take on the old node.
    private func copied(_ address: Address, from node: Address) -> Change.FieldChange {
        let prefix = DesiredDomain.volumePrefix(for: address) + "-"
        guard let allocations = observed[node]?.allocations else {
            return .init(field: "disks copied", old: "", new: "none (a simulated node's volumes hold no data)")
        }
        let volumes = allocations.filter { $0.key.hasPrefix(prefix) }
        let bytes = volumes.values.reduce(UInt64(0)) { $0.addingReportingOverflow($1).overflow ? .max : $0 + $1 }
        return .init(field: "disks copied", old: "", new: "\(ByteSize(bytes: bytes)) in \(volumes.count) volume\(volumes.count == 1 ? "" : "s"), checked by sha256")
    }

    /// The desired domain of every instance of the region (`instances`, by address, each with its address in `ids`) that
    /// can be placed. What is decided per instance is kept by position, not looked up by address: an instance declared
    /// twice (the same address, so side by side) shares the first one's slot, as a table by address would.
    private mutating func desiredDomains(_ instances: [Resource<InstanceSpec>], ids: [Address], current: [Address: Placed]) -> [Address: DesiredDomain] {
        guard let spec else { return [:] }
        let flavors = catalog.flavors
        let networks = Dictionary(slice.networks.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        let count = instances.count
        var slot = Array(0..<count)
        for index in ids.indices.dropFirst() where ids[index] == ids[index - 1] { slot[index] = slot[index - 1] }
        let now = ids.map { current[$0] }
        let flavorOf = instances.map { flavors[$0.spec.flavor.value] }

        var requests: [Scheduler.Request] = []
        requests.reserveCapacity(count)
        let volumesByInstance = Dictionary(grouping: slice.volumes.filter { $0.spec.instance != nil }) {
            Address(kind: .instance, region: region, tenant: $0.tenant, name: $0.spec.instance!.value)
        }
        for (index, instance) in instances.enumerated() {
            guard let flavor = flavorOf[index] else { continue }
            var request = Scheduler.Request(address: ids[index], vcpus: flavor.spec.vcpus.value, ramBytes: flavor.spec.ram.value.bytes,
                                            diskBytes: flavor.spec.diskDemand, zone: instance.spec.zone?.value,
                                            pinnedNode: instance.spec.node?.value, current: now[index]?.node.name)
            if !volumesByInstance.isEmpty {
                request.volumeBytes = (volumesByInstance[ids[index]] ?? []).reduce(UInt64(0)) { $0 &+ $1.spec.size.value.bytes }
            }
            requests.append(request)
        }
        let (placements, failures, pending) = Scheduler.place(requests, on: Scheduler.hosts(of: spec, nodes: nodes))
        placedByRoom = pending
        errors += failures.map { Plan.Problem(address: $0.address, message: "cannot place it: \($0.reason)") }
        let placed = ids.map { placements[$0] }

        // Addresses: manifest fixed IPs first, then addresses instances already have, then the lowest free ones. A
        // fixed IP that another declared instance was given (and keeps) is an error: a running instance is never
        // renumbered, nor deleted, to make room.
        var pools = networks.mapValues { AddressPool(network: $0.spec) }
        var addresses = [IPv4Address?](repeating: nil, count: count)  // by slot
        var holders: [String: [IPv4Address: Address]] = [:]  // network → address → the declared instance that has it now
        for (index, instance) in instances.enumerated() where instance.spec.fixedIP == nil {
            if let ip = now[index]?.domain.ip { holders[instance.spec.network.value, default: [:]][ip] = ids[index] }
        }
        var refused = [Bool](repeating: false, count: count)  // by slot
        for (index, instance) in instances.enumerated() {
            guard let ip = instance.spec.fixedIP?.value else { continue }
            if let holder = holders[instance.spec.network.value]?[ip], holder != ids[index] {
                errors.append(.init(address: ids[index], message: "its fixed IP \(ip) is in use by \(holder), which was given it earlier; StackLab never renumbers a running instance: pick another fixedIP, or give \(holder.name) a fixedIP of its own first"))
                refused[slot[index]] = true
            } else if pools[instance.spec.network.value]?.claim(ip) == true {
                addresses[slot[index]] = ip
            }
        }
        for (index, instance) in instances.enumerated() where addresses[slot[index]] == nil && instance.spec.fixedIP == nil {
            if let ip = now[index]?.domain.ip, pools[instance.spec.network.value]?.claim(ip) == true { addresses[slot[index]] = ip }
        }
        claimGateways(in: &pools)
        for (index, instance) in instances.enumerated() where addresses[slot[index]] == nil && placed[index] != nil && !refused[slot[index]] {
            if let ip = pools[instance.spec.network.value]?.allocate() {
                addresses[slot[index]] = ip
            } else {
                errors.append(.init(address: ids[index], message: "network '\(instance.spec.network.value)' has no free address left for it; widen its fixedRange or remove instances"))
            }
        }

        // MACs: unique per network. An instance keeps the MAC it has (recorded in its domain); a new one gets the first
        // free candidate of its address's hash sequence (24 bits collide with even odds at ~5,000 instances).
        var macsTaken: [String: Set<String>] = [:]
        var macs = [String?](repeating: nil, count: count)  // by slot
        for (index, instance) in instances.enumerated() {
            let had = now[index].map { $0.domain.mac ?? DesiredDomain.mac(for: ids[index]) }
            if let had, macsTaken[instance.spec.network.value, default: []].insert(had).inserted { macs[slot[index]] = had }
        }
        for (index, instance) in instances.enumerated() where macs[slot[index]] == nil {
            var attempt = 0
            var mac = DesiredDomain.mac(for: ids[index])
            while !macsTaken[instance.spec.network.value, default: []].insert(mac).inserted {
                attempt += 1
                mac = DesiredDomain.mac(for: ids[index], attempt: attempt)
            }
            macs[slot[index]] = mac
        }

        var desired: [Address: DesiredDomain] = [:]
        desired.reserveCapacity(count)
        for (index, instance) in instances.enumerated() {
            guard let node = placed[index], let ip = addresses[slot[index]],
                  let flavor = flavorOf[index], let network = networks[instance.spec.network.value] else { continue }
            let address = ids[index]
            desired[address] = desiredDomain(instance, address: address, node: nodeAddress(node), ip: ip, mac: macs[slot[index]]!, flavor: flavor,
                                             network: network, attached: volumesByInstance[address] ?? [])
        }
        return desired
    }

    /// The domain `instance` (at `address`) should be, placed on `node` with `ip` and `mac`: its flavor's disks, then
    /// those of the Volumes `attached` to it.
    func desiredDomain(_ instance: Resource<InstanceSpec>, address: Address, node: Address, ip: IPv4Address, mac: String, flavor: Resource<FlavorSpec>,
                       network: Resource<NetworkSpec>, attached: [Resource<VolumeSpec>]) -> DesiredDomain {
        let prefix = DesiredDomain.volumePrefix(for: address)
        var disks = [DesiredDomain.Disk(pool: "stacklab-instances", volume: "\(prefix)-root", bytes: flavor.spec.disk.value.bytes,
                                        device: "vda", image: catalog.images[instance.spec.image.value]?.spec.source.value)]
        if let ephemeral = flavor.spec.ephemeral?.value, ephemeral.bytes > 0 {
            disks.append(.init(pool: "stacklab-instances", volume: "\(prefix)-ephemeral", bytes: ephemeral.bytes, device: "vdb", image: nil))
        }
        disks += volumeDisks(of: instance, attached: attached, after: disks)
        return DesiredDomain(
            address: address, node: node, name: DesiredDomain.name(for: address),
            vcpus: flavor.spec.vcpus.value, memoryKiB: flavor.spec.ram.value.bytes / 1024, disks: disks,
            interface: .init(bridge: network.spec.bridge.value, mac: mac, ip: ip),
            running: (instance.spec.state?.value ?? .running) == .running,
            flavor: flavor.name, image: instance.spec.image.value)
    }

    /// Whether a running domain can become `want` without a restart: nothing but its size changes (same shape), and
    /// it only grows, within the maximums it was defined with. Disks grow under a running guest; vCPUs are plugged
    /// and memory is given through the balloon. Shrinking restarts: a guest cannot be relied on to give back memory or
    /// CPUs it uses.
    static func growsLive(have: ObservedDomain, want: DesiredDomain) -> Bool {
        guard let shape = have.shapeHash, shape == want.shapeHash else { return false }
        return have.vcpus <= want.vcpus && want.vcpus <= have.maxVcpus && have.memoryKiB <= want.memoryKiB && want.memoryKiB <= have.maxMemoryKiB
    }

    /// Field-level differences between what runs and what is wanted.
    static func fieldChanges(have: ObservedDomain, want: DesiredDomain) -> [Change.FieldChange] {
        var fields: [Change.FieldChange] = []
        if let flavor = have.flavor, flavor != want.flavor { fields.append(.init(field: "flavor", old: flavor, new: want.flavor)) }
        if have.vcpus != want.vcpus { fields.append(.init(field: "vcpus", old: "\(have.vcpus)", new: "\(want.vcpus)")) }
        if have.memoryKiB != want.memoryKiB {
            fields.append(.init(field: "memory", old: "\(ByteSize(kib: have.memoryKiB))", new: "\(ByteSize(kib: want.memoryKiB))"))
        }
        if let ip = have.ip, ip != want.interface.ip { fields.append(.init(field: "fixedIP", old: "\(ip)", new: "\(want.interface.ip)")) }
        let port = DesiredDomain.port(for: want.address)
        if have.port != port { fields.append(.init(field: "port", old: have.port ?? "unnamed (not bound by the node's ruleset)", new: port)) }
        return fields
    }
}
