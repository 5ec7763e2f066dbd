extension Validator {
    /// What a region's instances and volumes demand fits what its nodes offer (with the region's allocation ratios).
    /// `instances` holds each region's instance findings.
    mutating func checkCapacity(_ instances: [String: InstanceFindings]) {
        struct Demand {
            var vcpus = 0
            var ram: UInt64 = 0
            var disk: UInt64 = 0
            var volumes: UInt64 = 0
            var instances = 0
        }
        var demand: [String: Demand] = [:]
        for (region, findings) in instances where findings.instances > 0 {
            demand[region] = Demand(vcpus: findings.vcpus, ram: findings.ram, disk: findings.disk, instances: findings.instances)
        }
        for volume in model.volumes {
            demand[volume.region!, default: Demand()].volumes = demand[volume.region!, default: Demand()].volumes.saturatingAdd(volume.spec.size.value.bytes)
        }
        for region in model.regions {
            guard let need = demand[region.name] else { continue }
            let offered = index.offered[region.name] ?? ModelIndex.Offered()
            let cpuRatio = region.spec.effectiveCPURatio
            let ramRatio = region.spec.effectiveRAMRatio
            let vcpus = Int(saturating: Double(offered.cpus) * cpuRatio)
            let ram = UInt64(saturating: Double(offered.memory) * ramRatio)
            let location = region.meta.name.location
            if need.vcpus > vcpus {
                error("region '\(region.name)' needs \(need.vcpus) vCPUs for its \(need.instances) instances but its \(offered.computeNodes) compute nodes offer \(vcpus) (×\(cpuRatio) allocation ratio)",
                      at: location, hint: "add compute nodes, raise 'cpuAllocationRatio', or move instances to another region")
            }
            if need.ram > ram {
                error("region '\(region.name)' needs \(ByteSize(bytes: need.ram)) of RAM for its \(need.instances) instances but its compute nodes offer \(ByteSize(bytes: ram)) (×\(ramRatio) allocation ratio)",
                      at: location, hint: "add compute nodes or memory, raise 'ramAllocationRatio', or move instances to another region")
            }
            let disk = offered.instanceStorage
            if need.disk > disk {
                error("region '\(region.name)' needs \(ByteSize(bytes: need.disk)) of instance disks for its \(need.instances) instances but its compute nodes' instance storage holds \(ByteSize(bytes: disk))",
                      at: location, hint: "add compute nodes, declare their 'instanceStorage' (default \(NodeSpec.defaultInstanceStorage) each), or use flavors with smaller disks")
            }
            if need.volumes > 0 {
                let capacity = offered.volumeStorage
                if need.volumes > capacity {
                    error("region '\(region.name)' needs \(ByteSize(bytes: need.volumes)) for its volumes but its volume nodes hold \(ByteSize(bytes: capacity))",
                          at: location, hint: "add nodes with the 'volume' role and disks, or shrink volumes")
                }
            }
        }
    }

    /// Each tenant's resources across the cloud stay within its quotas.
    /// `instances` holds each region's instance findings.
    mutating func checkQuotas(_ instances: [String: InstanceFindings]) {
        struct Usage {
            var instances = 0
            var vcpus = 0
            var ram: UInt64 = 0
            var volumes: UInt64 = 0
            var floatingIPs = 0
            var loadBalancers = 0
        }
        var usage: [String: Usage] = [:]
        for findings in instances.values {
            for (tenant, used) in findings.usage {
                usage[tenant, default: Usage()].instances += used.instances
                usage[tenant, default: Usage()].vcpus = usage[tenant, default: Usage()].vcpus.saturatingAdd(used.vcpus)
                usage[tenant, default: Usage()].ram = usage[tenant, default: Usage()].ram.saturatingAdd(used.ram)
            }
        }
        for volume in model.volumes { usage[volume.tenant!, default: Usage()].volumes = usage[volume.tenant!, default: Usage()].volumes.saturatingAdd(volume.spec.size.value.bytes) }
        for floating in model.floatingIPs { usage[floating.tenant!, default: Usage()].floatingIPs += 1 }
        for balancer in model.loadBalancers { usage[balancer.tenant!, default: Usage()].loadBalancers += 1 }
        for tenant in model.tenants {
            guard let quotas = tenant.spec.quotas, let used = usage[tenant.name] else { continue }
            let name = tenant.name
            if let limit = quotas.instances, used.instances > limit.value {
                error("tenant '\(name)' declares \(used.instances) instances, over its quota of \(limit.value)", at: limit.location, hint: "raise the quota or remove instances")
            }
            if let limit = quotas.vcpus, used.vcpus > limit.value {
                error("tenant '\(name)' uses \(used.vcpus) vCPUs, over its quota of \(limit.value)", at: limit.location, hint: "raise the quota or use smaller flavors")
            }
            if let limit = quotas.ram, used.ram > limit.value.bytes {
                error("tenant '\(name)' uses \(ByteSize(bytes: used.ram)) of RAM, over its quota of \(limit.value)", at: limit.location)
            }
            if let limit = quotas.volumes, used.volumes > limit.value.bytes {
                error("tenant '\(name)' uses \(ByteSize(bytes: used.volumes)) of volumes, over its quota of \(limit.value)", at: limit.location)
            }
            if let limit = quotas.floatingIPs, used.floatingIPs > limit.value {
                error("tenant '\(name)' declares \(used.floatingIPs) floating IPs, over its quota of \(limit.value)", at: limit.location)
            }
            if let limit = quotas.loadBalancers, used.loadBalancers > limit.value {
                error("tenant '\(name)' declares \(used.loadBalancers) load balancers, over its quota of \(limit.value)", at: limit.location,
                      hint: "raise the quota or remove load balancers")
            }
        }
    }
}
