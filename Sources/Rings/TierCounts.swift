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
    /// The counts, the slots touched since the last clear and the holders, in buffers of their own: they are written
    /// once per replica of every partition, and an array's uniqueness check on each write was a tenth of a rebalance.
    /// One `TierCounts` is scratch for one walk: a copy shares the buffers.
    private let scratch: Scratch

    /// Its variables are read and written only by the one walk that owns it, never during another access to them: the
    /// runtime's exclusivity bookkeeping on each access (a third of what `load` cost) is left out.
    private final class Scratch {
        let counts: UnsafeMutableBufferPointer<Int32>
        @exclusivity(unchecked) var touched: UnsafeMutableBufferPointer<Int32>
        @exclusivity(unchecked) var touchedCount = 0
        @exclusivity(unchecked) var holders: UnsafeMutableBufferPointer<Int32>
        @exclusivity(unchecked) var holderCount = 0

        init(slots: Int) {
            counts = .allocate(capacity: max(1, slots))
            counts.initialize(repeating: 0)
            touched = .allocate(capacity: 16)
            holders = .allocate(capacity: 8)
        }

        deinit {
            counts.deallocate()
            touched.deallocate()
            holders.deallocate()
        }

        /// Doubles `buffer` (keeping its first `used` values).
        static func grow(_ buffer: inout UnsafeMutableBufferPointer<Int32>, used: Int) {
            let bigger = UnsafeMutableBufferPointer<Int32>.allocate(capacity: buffer.count * 2)
            _ = bigger.initialize(from: buffer[0..<used])
            buffer.deallocate()
            buffer = bigger
        }
    }

    /// Devices holding the loaded partition (the excluded row left out).
    var holders: UnsafeBufferPointer<Int32> { UnsafeBufferPointer(rebasing: scratch.holders[0..<scratch.holderCount]) }

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
        scratch = Scratch(slots: Int(total))
    }

    /// Counts the replicas of `partition` in `rows`, leaving out row `excluded` (a replica about to move).
    mutating func load(partition: Int, rows: [[Int32]], excluding excluded: Int = -1) {
        clear()
        let scratch = scratch
        tierSlot.withUnsafeBufferPointer { tierSlot in
            for index in rows.indices where index != excluded {
                let device = rows[index].withUnsafeBufferPointer { partition < $0.count ? $0[partition] : -1 }
                guard device >= 0 else { continue }
                if scratch.holderCount == scratch.holders.count { Scratch.grow(&scratch.holders, used: scratch.holderCount) }
                scratch.holders[scratch.holderCount] = device
                scratch.holderCount += 1
                let base = Int(device) * RingTopology.levels
                for level in 0..<RingTopology.levels {
                    let slot = tierSlot[base + level]
                    guard slot >= 0 else { continue }
                    scratch.counts[Int(slot)] += 1
                    if scratch.touchedCount == scratch.touched.count { Scratch.grow(&scratch.touched, used: scratch.touchedCount) }
                    scratch.touched[scratch.touchedCount] = slot
                    scratch.touchedCount += 1
                }
            }
        }
    }

    mutating func clear() {
        let scratch = scratch
        for index in 0..<scratch.touchedCount { scratch.counts[Int(scratch.touched[index])] = 0 }
        scratch.touchedCount = 0
        scratch.holderCount = 0
    }

    /// Replicas loaded in the tier node at flat slot `slot` (levels one after the other, in node order).
    func count(slot: Int) -> Int32 { scratch.counts[slot] }

    /// Whether `device` may take one more replica: it holds none, and no tier of it would exceed its cap.
    func admits(device: Int, caps: [[Int32]]) -> Bool {
        guard !holders.contains(Int32(device)) else { return false }
        let base = device * RingTopology.levels
        guard tierSlot[base] >= 0 else { return false }
        for level in 0..<RingTopology.levels {
            let slot = tierSlot[base + level]
            if scratch.counts[Int(slot)] >= caps[level][Int(slot - offset[level])] { return false }
        }
        return true
    }

    /// Whether some tier holds more replicas than its cap.
    func exceeds(caps: [[Int32]]) -> Bool {
        for index in 0..<scratch.touchedCount {
            let slot = scratch.touched[index]
            let level = slot >= offset[2] ? 2 : slot >= offset[1] ? 1 : 0
            if scratch.counts[Int(slot)] > caps[level][Int(slot - offset[level])] { return true }
        }
        return false
    }

    /// Whether `device`'s tiers are over their caps (it shares an overfull region, zone or server).
    func isOverfull(device: Int32, caps: [[Int32]]) -> Bool {
        let base = Int(device) * RingTopology.levels
        for level in 0..<RingTopology.levels {
            let slot = tierSlot[base + level]
            if slot >= 0, scratch.counts[Int(slot)] > caps[level][Int(slot - offset[level])] { return true }
        }
        return false
    }
}
