/// How many replicas of one partition sit in each tier node (region, zone, server), and which devices hold them.
/// One scratch structure reused across partitions: `load` fills it, `clear` resets only what was touched.
///
/// Counts and tier indexes are kept in flat arrays (tier node `n` of level `l` at `offset[l] + n`): this runs once
/// per partition replica in every rebalance, and nested arrays cost a retain and a uniqueness check per access.
struct TierCounts {
    /// For device `d`, its flat tier slot at level `l` is `tierSlot[d * levels + l]`, or -1.
    private let tierSlot: [Int32]
    /// Where each level's tier nodes start in `counts`.
    private let offset: [Int32]
    private var counts: [Int32]
    private var touched: [Int32] = []
    /// Devices holding the loaded partition (the excluded row left out).
    private(set) var holders: [Int32] = []

    init(topology: RingTopology) {
        var offset: [Int32] = []
        var total: Int32 = 0
        for count in topology.nodeCount {
            offset.append(total)
            total += Int32(count)
        }
        var slots = [Int32](repeating: -1, count: topology.tierOf.count * RingTopology.levels)
        for (device, tiers) in topology.tierOf.enumerated() {
            for level in 0..<RingTopology.levels where tiers[level] >= 0 {
                slots[device * RingTopology.levels + level] = offset[level] + tiers[level]
            }
        }
        self.offset = offset
        tierSlot = slots
        counts = Array(repeating: 0, count: Int(total))
        touched.reserveCapacity(16)
        holders.reserveCapacity(8)
    }

    /// Counts the replicas of `partition` in `rows`, leaving out row `excluded` (a replica about to move).
    mutating func load(partition: Int, rows: [[Int32]], excluding excluded: Int = -1) {
        clear()
        for index in rows.indices where index != excluded {
            let device = rows[index].withUnsafeBufferPointer { partition < $0.count ? $0[partition] : -1 }
            guard device >= 0 else { continue }
            holders.append(device)
            let base = Int(device) * RingTopology.levels
            for level in 0..<RingTopology.levels {
                let slot = tierSlot[base + level]
                guard slot >= 0 else { continue }
                counts[Int(slot)] += 1
                touched.append(slot)
            }
        }
    }

    mutating func clear() {
        for slot in touched { counts[Int(slot)] = 0 }
        touched.removeAll(keepingCapacity: true)
        holders.removeAll(keepingCapacity: true)
    }

    /// Replicas loaded in the tier node at flat slot `slot` (levels one after the other, in node order).
    func count(slot: Int) -> Int32 { counts[slot] }

    /// Whether `device` may take one more replica: it holds none, and no tier of it would exceed its cap.
    func admits(device: Int, caps: [[Int32]]) -> Bool {
        guard !holders.contains(Int32(device)) else { return false }
        let base = device * RingTopology.levels
        guard tierSlot[base] >= 0 else { return false }
        for level in 0..<RingTopology.levels {
            let slot = tierSlot[base + level]
            if counts[Int(slot)] >= caps[level][Int(slot - offset[level])] { return false }
        }
        return true
    }

    /// Whether some tier holds more replicas than its cap.
    func exceeds(caps: [[Int32]]) -> Bool {
        for slot in touched {
            let level = slot >= offset[2] ? 2 : slot >= offset[1] ? 1 : 0
            if counts[Int(slot)] > caps[level][Int(slot - offset[level])] { return true }
        }
        return false
    }

    /// Whether `device`'s tiers are over their caps (it shares an overfull region, zone or server).
    func isOverfull(device: Int32, caps: [[Int32]]) -> Bool {
        let base = Int(device) * RingTopology.levels
        for level in 0..<RingTopology.levels {
            let slot = tierSlot[base + level]
            if slot >= 0, counts[Int(slot)] > caps[level][Int(slot - offset[level])] { return true }
        }
        return false
    }
}
