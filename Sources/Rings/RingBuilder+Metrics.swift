extension RingBuilder {
    /// Swift's balance: the largest percentage by which a device's partitions differ from its weight share
    /// (999.99 for a weightless device that still holds partitions).
    public func balance() -> Double {
        let slots = Double(rows.reduce(0) { $0 + $1.count })
        let totalWeight = devices.reduce(0.0) { $0 + ($1.map { $0.weight > 0 ? $0.weight : 0 } ?? 0) }
        guard totalWeight > 0 else { return 0 }
        var worst = 0.0
        for case let device? in devices {
            if device.weight <= 0 {
                if device.parts > 0 { return 999.99 }
                continue
            }
            let wanted = slots * device.weight / totalWeight
            worst = max(worst, abs(100 * Double(device.parts) / wanted - 100))
        }
        return worst
    }

    /// Partitions with more replicas in some region, zone or server than the topology requires.
    public func dispersion() -> Int {
        let topology = RingTopology(devices: devices)
        let caps = (0...rows.count).map { topology.caps(replicas: $0) }
        var tiers = TierCounts(topology: topology)
        var bad = 0
        for partition in 0..<partitionCount {
            tiers.load(partition: partition, rows: rows)
            if tiers.exceeds(caps: caps[replicaCount(of: partition)]) { bad += 1 }
        }
        return bad
    }

    /// Partition-replicas per device id.
    public func partsPerDevice() -> [Int: Int] {
        Dictionary(uniqueKeysWithValues: devices.compactMap { $0.map { ($0.id, $0.parts) } })
    }
}
