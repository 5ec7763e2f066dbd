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
        var counts = [[Int32]](topology.nodeCount.map { Array(repeating: 0, count: $0) })
        var bad = 0
        var touched: [(Int, Int32)] = []
        for partition in 0..<partitionCount {
            var over = false
            touched.removeAll(keepingCapacity: true)
            let cap = caps[replicaCount(of: partition)]
            for row in rows where partition < row.count && row[partition] >= 0 {
                let tiers = topology.tierOf[Int(row[partition])]
                for level in 0..<RingTopology.levels where tiers[level] >= 0 {
                    counts[level][Int(tiers[level])] += 1
                    touched.append((level, tiers[level]))
                    if counts[level][Int(tiers[level])] > cap[level][Int(tiers[level])] { over = true }
                }
            }
            for (level, node) in touched { counts[level][Int(node)] = 0 }
            if over { bad += 1 }
        }
        return bad
    }

    /// Partition-replicas per device id.
    public func partsPerDevice() -> [Int: Int] {
        Dictionary(uniqueKeysWithValues: devices.compactMap { $0.map { ($0.id, $0.parts) } })
    }
}
