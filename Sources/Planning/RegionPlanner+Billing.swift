import Manifests

/// Billing meters on the plan's changes: a change that makes or changes a billed resource carries how it is charged
/// from then on; a delete of something that left the manifests stops its charging when requested.
extension RegionPlanner {
    /// Attaches meters to every change; `instances`, when given, are the region's instances the changes may be of (all
    /// of them are looked up otherwise).
    mutating func attachMeters(instances given: [Address: Resource<InstanceSpec>]? = nil) {
        guard spec != nil || !changes.isEmpty else { return }
        let instances = given ?? Dictionary(slice.instances.map { ($0.address, $0) }, uniquingKeysWith: { first, _ in first })
        let volumes = Dictionary(slice.volumes.map { (DesiredDomain.volumeName(for: $0.address), $0) }, uniquingKeysWith: { first, _ in first })
        let floating = Dictionary(slice.floatingIPs.map { ($0.address, $0) }, uniquingKeysWith: { first, _ in first })
        let balancers = Dictionary(slice.loadBalancers.map { ($0.address, $0) }, uniquingKeysWith: { first, _ in first })
        for index in changes.indices {
            let change = changes[index]
            switch change.operation {
            case .node(.defineDomain(let domain, _)), .node(.replaceDomain(let domain)), .transfer(.moveDomain(let domain, _, _)):
                guard let instance = instances[change.address] else { continue }
                changes[index].meters = [instanceMeter(instance, flavor: domain.flavor)]
                    + domain.disks.compactMap { disk in volumes[disk.volume].map(volumeMeter) }
            case .node(.deleteDomain):
                if instances[change.address] == nil { changes[index].stopsMeters = [.address(change.address)] }
            case .node(.ensureVolume(_, let name, _)), .transfer(.restoreVolume(_, let name, _, _, _)):
                if let volume = volumes[name] { changes[index].meters = [volumeMeter(volume)] }
            case .node(.deleteVolume(_, let name)):
                if volumes[name] == nil { changes[index].stopsMeters = [.volume(region: region, volume: name)] }
            case .node(.loadFirewall(let ruleset)):
                // The floating IPs this node's ruleset maps are charged; those it mapped that left the manifests stop.
                let mapped = Set(ruleset.rules.compactMap(\.floatingBinding?.floatingIP))
                changes[index].meters = mapped.sorted().compactMap { floating[$0].map(floatingMeter) }
                let before = Set((change.target.node.flatMap { observed[$0]?.firewall?.rules } ?? Ruleset.Rules()).compactMap(\.floatingBinding?.floatingIP))
                changes[index].stopsMeters = before.subtracting(floating.keys).sorted().map { .address($0) }
            case .node(.loadProxy(let config)):
                // The load balancers this node's configuration serves are charged; those it served that left the
                // manifests stop (every load-balancer node carries the same meters: a meter already in force is kept).
                let served = Set(config.services.map(\.owner.address).filter { $0.kind == .loadBalancer })
                changes[index].meters = served.sorted().compactMap { balancers[$0].map(balancerMeter) }
                let before = change.target.node.flatMap { installedProxies[$0] }?.loadBalancers ?? []
                changes[index].stopsMeters = before.subtracting(balancers.keys).sorted().map { .address($0) }
            case .node(.ensureNetwork), .node(.deleteNetwork), .node(.setPower), .node(.configureDHCP), .node(.installRing), .transfer(.takeSnapshot), .region:
                continue
            }
        }
    }

    private func billing(_ tenant: String?) -> (priceList: String, prepaid: Bool) {
        catalog.billing[tenant ?? ""] ?? ("", false)
    }

    private func instanceMeter(_ instance: Resource<InstanceSpec>, flavor: String) -> Meter {
        let billing = billing(instance.tenant)
        let period: ChargePeriod = (instance.spec.billing?.value ?? (billing.prepaid ? .monthly : .hourly)) == .monthly ? .monthly : .hourly
        return Meter(resource: .address(instance.address), address: instance.address, tenant: instance.tenant ?? "", kind: .instance, item: flavor,
                     period: period, priceList: billing.priceList)
    }

    private func volumeMeter(_ volume: Resource<VolumeSpec>) -> Meter {
        let bytes = volume.spec.size.value.bytes
        return Meter(resource: .volume(region: region, volume: DesiredDomain.volumeName(for: volume.address)), address: volume.address,
                     tenant: volume.tenant ?? "", kind: .volume, item: "\(ByteSize(bytes: bytes))", quantity: Int64((bytes + (1 << 30) - 1) >> 30),
                     period: .gbMonth, priceList: billing(volume.tenant).priceList)
    }

    private func balancerMeter(_ balancer: Resource<LoadBalancerSpec>) -> Meter {
        Meter(resource: .address(balancer.address), address: balancer.address, tenant: balancer.tenant ?? "", kind: .loadBalancer, item: "",
              period: .daily, priceList: billing(balancer.tenant).priceList)
    }

    private func floatingMeter(_ floating: Resource<FloatingIPSpec>) -> Meter {
        Meter(resource: .address(floating.address), address: floating.address, tenant: floating.tenant ?? "", kind: .floatingIP, item: "",
              period: .daily, priceList: billing(floating.tenant).priceList)
    }
}
