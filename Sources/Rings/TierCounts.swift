/// How many replicas of one partition sit in each tier node (region, zone, server), and which devices hold them.
/// One scratch structure reused across partitions: `load` fills it, `clear` resets only what was touched.
struct TierCounts {
    private let tierOf: [[Int32]]
    private var counts: [[Int32]]
    private var touched: [(level: Int, node: Int32)] = []
    /// Devices holding the loaded partition (the excluded row left out).
    private(set) var holders: [Int32] = []

    init(topology: RingTopology) {
        tierOf = topology.tierOf
        counts = topology.nodeCount.map { Array(repeating: 0, count: $0) }
        touched.reserveCapacity(16)
        holders.reserveCapacity(8)
    }

    /// Counts the replicas of `partition` in `rows`, leaving out row `excluded` (a replica about to move).
    mutating func load(partition: Int, rows: [[Int32]], excluding excluded: Int = -1) {
        clear()
        for (index, row) in rows.enumerated() where index != excluded && partition < row.count && row[partition] >= 0 {
            holders.append(row[partition])
            let tiers = tierOf[Int(row[partition])]
            for level in 0..<RingTopology.levels where tiers[level] >= 0 {
                counts[level][Int(tiers[level])] += 1
                touched.append((level, tiers[level]))
            }
        }
    }

    mutating func clear() {
        for entry in touched { counts[entry.level][Int(entry.node)] = 0 }
        touched.removeAll(keepingCapacity: true)
        holders.removeAll(keepingCapacity: true)
    }

    /// Replicas loaded in tier node `node` of `level`.
    func count(level: Int, node: Int32) -> Int32 { counts[level][Int(node)] }

    /// Whether `device` may take one more replica: it holds none, and no tier of it would exceed its cap.
    func admits(device: Int, caps: [[Int32]]) -> Bool {
        guard !holders.contains(Int32(device)) else { return false }
        let tiers = tierOf[device]
        guard tiers[0] >= 0 else { return false }
        return (0..<RingTopology.levels).allSatisfy { counts[$0][Int(tiers[$0])] < caps[$0][Int(tiers[$0])] }
    }

    /// Whether some tier holds more replicas than its cap.
    func exceeds(caps: [[Int32]]) -> Bool {
        touched.contains { counts[$0.level][Int($0.node)] > caps[$0.level][Int($0.node)] }
    }

    /// Whether `device`'s tiers are over their caps (it shares an overfull region, zone or server).
    func isOverfull(device: Int32, caps: [[Int32]]) -> Bool {
        let tiers = tierOf[Int(device)]
        return (0..<RingTopology.levels).contains { tiers[$0] >= 0 && counts[$0][Int(tiers[$0])] > caps[$0][Int(tiers[$0])] }
    }
}
