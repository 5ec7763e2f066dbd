import Manifests

/// A region's run kept for its next plan (by `RegionMemo`): when only instance documents changed since, and none of
/// them in what places it, numbers it or puts it on the network, the next plan decides again only those instances'
/// domains and takes everything else from the kept run. A push that resizes one instance of a region of thousands
/// then costs what that instance costs.
///
/// What makes this exact: the run is a function of its context (every document but the instances', by digest and
/// place; the catalog's stamp; every observed node's fingerprint; the options; the hour, when the run read it) and of
/// the instances. With an equal context and every instance kept where it runs (the scheduler placed none by room), an
/// instance's placement, address and MAC follow from the instances' nodes, zones, pins, networks and fixed IPs (and
/// not from their sizes): while a changed instance keeps those, every placement, address and MAC is the kept one, and
/// so is every change but its own domain change. Networking reads the fields `NetworkingInputs.Link` holds: a changed
/// instance must keep those too. Anything else plans the region in full.
extension RegionPlanner {
    /// Everything a region's run reads besides its instance documents.
    struct RunContext: Equatable, Sendable {
        /// The Region document, then its nodes, networks, floating IPs, volumes, load balancers, containers and rings,
        /// each list closed by `.absent`.
        var documents: [FirewallRules.SharedInputs.Document]
        var catalog: UInt64
        /// Every observed node (in address order) and its fingerprint.
        var observed: [Address]
        var fingerprints: [String]
        var options: Planner.Options
    }

    /// What a region's run decided per instance, and what it made of it: by position in `instanceOrder`, each desired
    /// domain's place (nil: the instance could not be planned) and where its domain runs (nil: nowhere), as a locator
    /// into the observations (equal observations have equal fingerprints, domains in the same order). A run keeps these
    /// few bytes per instance, not the domains.
    struct DecidedInstances: Sendable {
        var places: [Place?]
        var running: [Placed.Locator?]
        var unmanagedNames: [Address: Set<String>]
        var freedIPs: [IPv4Address: ChangeID]
        var networkChange: [NodeNetworkKey: ChangeID]
    }

    /// Where a desired domain goes: its node, address and MAC (the rest follows from the instance's document).
    struct Place: Sendable {
        var node: Address
        var ip: IPv4Address
        var mac: String

        init(_ domain: DesiredDomain) {
            node = domain.node
            ip = domain.interface.ip
            mac = domain.interface.mac
        }
    }

    /// A region's run, kept with what it was made from.
    struct InstanceRun: Sendable {
        var context: RunContext
        /// The hour the run was made at, and whether it read it (a snapshot schedule, a stale copy's delete).
        var hour: Int32
        var scheduled: Bool
        /// The region's instances as declared.
        var instances: [Resource<InstanceSpec>]
        var instanceOrder: [Address]
        var decided: DecidedInstances
        var changes: [Change]
        var errors: [Plan.Problem]
        var unmanaged: [Plan.Unmanaged]
        var orphans: [Plan.Orphan]
        var unchanged: Int
        /// Where the domain changes (`planDomain`'s, in instance order) are among `changes`, and each one's instance
        /// (its position in `instanceOrder`); the same for their errors.
        var domainChanges: Range<Int>
        var changeOwners: [Int]
        var domainErrors: Range<Int>
        var errorOwners: [Int]
    }

    /// This run's context, when a long-running planner keeps runs and every document is known by digest (nil otherwise:
    /// a region with no spec, one whose object store was observed, a document not known). An observation whose
    /// fingerprint the caller did not know (a node observed anew, as after an apply) is digested here, once: the plan's
    /// result reports that fingerprint.
    mutating func runContext() -> RunContext? {
        guard regionMemo != nil, spec != nil, let regionDocument, snapshots == nil, accounts == nil, let catalog = catalog.stamp else { return nil }
        typealias Document = FirewallRules.SharedInputs.Document
        var documents: [Document] = [Document(Optional(regionDocument)), .absent]
        func add<Spec>(_ list: [Resource<Spec>]) {
            for resource in list { documents.append(Document(resource)) }
            documents.append(.absent)
        }
        add(slice.nodes)
        add(slice.networks)
        add(slice.floatingIPs)
        add(slice.volumes)
        add(slice.loadBalancers)
        add(slice.containers)
        add(slice.rings)
        guard !documents.contains(.unknown) else { return nil }
        var prints: [String] = []
        prints.reserveCapacity(observedOrder.count)
        for address in observedOrder {
            let print = fingerprints[address] ?? observed[address]!.fingerprint
            fingerprints[address] = print
            prints.append(print)
        }
        return RunContext(documents: documents, catalog: catalog, observed: observedOrder, fingerprints: prints, options: options)
    }

    /// The run just made, to keep: nil when it cannot be spliced later (an instance the scheduler placed by room, an
    /// address declared twice).
    func instanceRun(_ context: RunContext, decided: DecidedInstances, domainChanges: Range<Int>, domainErrors: Range<Int>) -> InstanceRun? {
        guard placedByRoom == 0, instanceOrder.count == slice.instances.count else { return nil }
        let changeOwners = changes[domainChanges].map { instanceOrder.position(of: $0.address) }
        let errorOwners = errors[domainErrors].map { instanceOrder.position(of: $0.address) }
        guard !changeOwners.contains(nil), !errorOwners.contains(nil) else { return nil }
        return InstanceRun(context: context, hour: hour, scheduled: scheduled, instances: slice.instances, instanceOrder: instanceOrder, decided: decided,
                           changes: changes.compacted(), errors: errors, unmanaged: unmanaged, orphans: orphans, unchanged: unchanged,
                           domainChanges: domainChanges, changeOwners: changeOwners.map { $0! }, domainErrors: domainErrors,
                           errorOwners: errorOwners.map { $0! })
    }

    /// Plans the run from the region's kept one when its context is `context` and only instances that keep their
    /// place changed (see the type's comment); false, having changed nothing, when it cannot.
    mutating func spliceInstances(_ context: RunContext) -> Bool {
        guard let regionMemo, let kept = regionMemo.takeInstanceRun(of: region), kept.context == context, !kept.scheduled || kept.hour == hour,
              kept.instances.count == slice.instances.count else { return false }
        let networks = Dictionary(slice.networks.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        var changed: [(position: Int, instance: Resource<InstanceSpec>)] = []
        for (old, new) in zip(kept.instances, slice.instances) {
            guard new.meta.digest == 0 || old.meta.digest != new.meta.digest || old.meta.location != new.meta.location else { continue }
            guard new.meta.digest != 0, old.address == new.address, Self.keepsPlace(old, as: new, flavors: catalog.flavors),
                  let position = kept.instanceOrder.position(of: new.address) else { return false }
            changed.append((position, new))
        }
        changed.sort { $0.position < $1.position }

        // The changed instances' domains, each with its kept place, and where it runs now: all found before anything is
        // planned, so a splice that cannot be made changes nothing.
        let volumes = changed.isEmpty ? [] : slice.volumes.filter { $0.spec.instance != nil }
        var previouslyUnchanged = 0
        let owned = changed.isEmpty ? [] : Set(kept.changeOwners).union(kept.errorOwners)
        var decided: [(address: Address, network: String, want: DesiredDomain, have: Placed?)] = []
        for (position, instance) in changed {
            let address = kept.instanceOrder[position]
            guard let place = kept.decided.places[position] else { continue }  // not plannable then, so not now: its error stands
            if !owned.contains(position) { previouslyUnchanged += 1 }
            guard let flavor = catalog.flavors[instance.spec.flavor.value], let network = networks[instance.spec.network.value] else { return false }
            let attached = volumes.filter { $0.spec.instance?.value == instance.name && $0.tenant == instance.tenant }
            let want = desiredDomain(instance, address: address, node: place.node, ip: place.ip, mac: place.mac, flavor: flavor,
                                     network: network, attached: attached)
            var have: Placed?
            if let at = kept.decided.running[position] {
                let node = observedOrder[Int(at.node)]
                guard let domains = observed[node]?.domains, Int(at.domain) < domains.count, domains[Int(at.domain)].address == address else { return false }
                have = Placed(node: node, domain: domains[Int(at.domain)], at: at)
            }
            decided.append((address, instance.spec.network.value, want, have))
        }
        // Their domain changes, planned alone, in instance order.
        for (address, network, want, have) in decided {
            var dependsOn = kept.decided.networkChange[NodeNetworkKey(node: want.node.name, network: network)].map { [$0] } ?? []
            if let freed = kept.decided.freedIPs[want.interface.ip] { dependsOn.append(freed) }
            planDomain(address, want: want, have: have, dependsOn: dependsOn, unmanagedNames: kept.decided.unmanagedNames)
        }
        attachMeters(instances: Dictionary(changed.map { ($0.instance.address, $0.instance) }, uniquingKeysWith: { first, _ in first }))
        let positions = Dictionary(changed.map { (kept.instanceOrder[$0.position], $0.position) }, uniquingKeysWith: { first, _ in first })
        let replaced = Set(changed.map(\.position))

        // Each section merged: the kept entries of instances that did not change, and the new ones, in instance order.
        func merged<Entry>(_ kept: ArraySlice<Entry>, owners: [Int], _ new: [Entry], address: (Entry) -> Address) -> (entries: [Entry], owners: [Int]) {
            var entries: [Entry] = [], merged: [Int] = []
            entries.reserveCapacity(kept.count + new.count)
            merged.reserveCapacity(kept.count + new.count)
            var next = 0
            func takeNew(before owner: Int) {
                while next < new.count, let position = positions[address(new[next])], position < owner {
                    entries.append(new[next])
                    merged.append(position)
                    next += 1
                }
            }
            for (entry, owner) in zip(kept, owners) where !replaced.contains(owner) {
                takeNew(before: owner)
                entries.append(entry)
                merged.append(owner)
            }
            takeNew(before: Int.max)
            return (entries, merged)
        }
        let (sectionChanges, changeOwners) = merged(kept.changes[kept.domainChanges], owners: kept.changeOwners, changes, address: \.address)
        let (sectionErrors, errorOwners) = merged(kept.errors[kept.domainErrors], owners: kept.errorOwners, errors, address: \.address)
        let newUnchanged = unchanged
        changes = Array(kept.changes[..<kept.domainChanges.lowerBound]) + sectionChanges + kept.changes[kept.domainChanges.upperBound...]
        errors = Array(kept.errors[..<kept.domainErrors.lowerBound]) + sectionErrors + kept.errors[kept.domainErrors.upperBound...]
        unchanged = kept.unchanged - previouslyUnchanged + newUnchanged
        scheduled = kept.scheduled
        unmanaged = kept.unmanaged
        orphans = kept.orphans
        instanceOrder = kept.instanceOrder
        let start = kept.domainChanges.lowerBound, errorStart = kept.domainErrors.lowerBound
        regionMemo.keep(InstanceRun(context: context, hour: hour, scheduled: scheduled, instances: slice.instances, instanceOrder: instanceOrder,
                                    decided: kept.decided, changes: changes.compacted(), errors: errors, unmanaged: unmanaged, orphans: orphans,
                                    unchanged: unchanged, domainChanges: start..<(start + sectionChanges.count), changeOwners: changeOwners,
                                    domainErrors: errorStart..<(errorStart + sectionErrors.count), errorOwners: errorOwners),
                        of: region, spliced: changed.count)
        return true
    }

    /// Whether `new`, a new document of the instance `old` declared, keeps its place: a flavor (it is placed at all),
    /// its zone, pinned node, network and fixed IP, and every field networking reads.
    static func keepsPlace(_ old: Resource<InstanceSpec>, as new: Resource<InstanceSpec>, flavors: [String: Resource<FlavorSpec>]) -> Bool {
        flavors[old.spec.flavor.value] != nil && flavors[new.spec.flavor.value] != nil
            && old.spec.node?.value == new.spec.node?.value && old.spec.fixedIP?.value == new.spec.fixedIP?.value
            && NetworkingInputs.Link(old, address: old.address, place: nil) == NetworkingInputs.Link(new, address: new.address, place: nil)
    }
}

extension [Address] {
    /// Where `address` is in this array, sorted as `Address.<` sorts (nil when it is not in it).
    func position(of address: Address) -> Int? {
        var low = 0, high = count
        while low < high {
            let middle = (low + high) / 2
            if self[middle] < address { low = middle + 1 } else { high = middle }
        }
        return low < count && self[low] == address ? low : nil
    }
}
