extension RingBuilder {
    /// Rebalances at `hour` (hours since the epoch; min_part_hours is measured against it).
    public mutating func rebalance(hour: Int32) throws(Failure) -> Report {
        let weighted = devices.indices.filter { devices[$0].map { $0.weight > 0 } == true && !removing.contains($0) }
        guard weighted.count >= Int(replicas.rounded(.up)) else {
            throw Failure(description: "\(replicas) replicas need at least \(Int(replicas.rounded(.up))) devices with weight; the ring has \(weighted.count)")
        }
        let before = rows
        var moved = [Bool](repeating: false, count: partitionCount)
        var heldBack = Set<Int>()
        let lastMovedAtStart = lastMoved
        let restHours = minPartHours
        let canMove = { (partition: Int) -> Bool in
            let last = lastMovedAtStart[partition]
            return last == Int32.min || Int(hour) - Int(last) >= restHours
        }

        // 1. Rows for the replica count; replicas beyond it are released.
        let lengths = rowLengths
        var queue: [(partition: Int32, row: Int32)] = []
        if rows.count > lengths.count {
            for row in rows[lengths.count...] { for id in row where id >= 0 { devices[Int(id)]?.parts -= 1 } }
            rows.removeLast(rows.count - lengths.count)
        }
        for (index, length) in lengths.enumerated() {
            if index >= rows.count { rows.append([]) }
            if rows[index].count > length {
                for id in rows[index][length...] where id >= 0 { devices[Int(id)]?.parts -= 1 }
                rows[index].removeLast(rows[index].count - length)
            }
            while rows[index].count < length { rows[index].append(-1) }
        }

        // 2. Forced: unassigned slots (placements, not moves) and replicas on removed devices.
        for (index, row) in rows.enumerated() {
            for partition in row.indices where row[partition] < 0 || removing.contains(Int(row[partition])) {
                if row[partition] >= 0 { moved[partition] = true }
                release(partition: partition, row: index)
                queue.append((Int32(partition), Int32(index)))
            }
        }
        let removedCount = removing.count
        for id in removing { devices[id] = nil }
        removing = []

        let topology = RingTopology(devices: devices)
        let maxReplicas = rows.count
        let caps = (0...maxReplicas).map { topology.caps(replicas: $0) }
        let targets = Self.targets(devices: devices, topology: topology, rowLengths: lengths, caps: caps)

        // 3. Replicas on weightless devices, and replicas that break dispersion.
        for (index, row) in rows.enumerated() {
            for partition in row.indices where row[partition] >= 0 && devices[Int(row[partition])]?.weight ?? 0 <= 0 && !moved[partition] {
                if canMove(partition) {
                    release(partition: partition, row: index)
                    queue.append((Int32(partition), Int32(index)))
                    moved[partition] = true
                } else {
                    heldBack.insert(partition)
                }
            }
        }
        var tierCounts = TierCounts(topology: topology)
        for partition in 0..<partitionCount where !moved[partition] {
            if let row = overDispersed(partition: partition, caps: caps[replicaCount(of: partition)], tiers: &tierCounts) {
                if canMove(partition) {
                    release(partition: partition, row: row)
                    queue.append((Int32(partition), Int32(row)))
                    moved[partition] = true
                } else {
                    heldBack.insert(partition)
                }
            }
        }

        // 4. Balance: each device gives up its excess over its target, then everything queued is placed.
        var lastExcess = Int.max
        for _ in 0..<32 {
            gatherExcess(targets: targets, before: before, moved: &moved, heldBack: &heldBack, canMove: canMove, queue: &queue)
            guard !queue.isEmpty else { break }
            place(queue, topology: topology, caps: caps, targets: targets)
            queue.removeAll(keepingCapacity: true)
            // Stop when a round no longer reduces the excess: the rest is for the repair pass (or impossible).
            let excess = devices.reduce(0) { $0 + ($1.map { max(0, $0.parts - targets[$0.id]) } ?? 0) }
            if excess == 0 || excess >= lastExcess { break }
            lastExcess = excess
        }

        repairBalance(targets: targets, before: before, topology: topology, caps: caps, moved: &moved, canMove: canMove)

        // 5. Bookkeeping.
        var partitionsMoved = 0
        var replicasMoved = 0
        for partition in 0..<partitionCount {
            var changed = false
            for (index, row) in rows.enumerated() where partition < row.count {
                let old = index < before.count && partition < before[index].count ? before[index][partition] : -1
                if old != row[partition] {
                    replicasMoved += 1
                    changed = true
                }
            }
            if changed {
                partitionsMoved += 1
                lastMoved[partition] = hour
            }
        }
        if replicasMoved > 0 || removedCount > 0 { version += 1 }
        heldBack.subtract((0..<partitionCount).filter { moved[$0] })
        var report = Report(partitionsMoved: partitionsMoved, replicasMoved: replicasMoved, balance: balance(), dispersion: dispersion(),
                            heldBack: heldBack.count, removedDevices: removedCount)
        let wanted = Int(replicas.rounded(.up))
        for (level, name) in [(1, "zones"), (2, "servers")] where topology.nodeCount[level] < wanted {
            report.warnings.append("\(replicas) replicas over \(topology.nodeCount[level]) \(name): some \(name) hold more than one replica of a partition")
        }
        return report
    }

    private mutating func release(partition: Int, row: Int) {
        let id = rows[row][partition]
        if id >= 0 { devices[Int(id)]?.parts -= 1 }
        rows[row][partition] = -1
    }

    /// The row of a replica to move if `partition` holds more replicas in some tier than the caps allow (the last
    /// replica in an overfull tier).
    private func overDispersed(partition: Int, caps: [[Int32]], tiers: inout TierCounts) -> Int? {
        tiers.load(partition: partition, rows: rows)
        guard tiers.exceeds(caps: caps) else { return nil }
        return rows.indices.reversed().first { index in
            partition < rows[index].count && rows[index][partition] >= 0 && tiers.isOverfull(device: rows[index][partition], caps: caps)
        }
    }

    /// Queues each device's excess over its target. A replica placed in this rebalance may be placed again freely;
    /// one that was on a device before moves only if its partition may move and has not moved yet.
    private mutating func gatherExcess(targets: [Int], before: [[Int32]], moved: inout [Bool], heldBack: inout Set<Int>, canMove: (Int) -> Bool,
                                       queue: inout [(partition: Int32, row: Int32)]) {
        var excess = devices.map { device in device.map { max(0, $0.parts - targets[$0.id]) } ?? 0 }
        guard excess.contains(where: { $0 > 0 }) else { return }
        for (index, row) in rows.enumerated() {
            for partition in row.indices {
                let id = Int(row[partition])
                guard id >= 0, excess[id] > 0 else { continue }
                let original = index < before.count && partition < before[index].count ? before[index][partition] : -1
                if original == row[partition] {  // it was there before this rebalance: this would be a move
                    guard !moved[partition] else { continue }
                    guard canMove(partition) else {
                        heldBack.insert(partition)
                        continue
                    }
                    moved[partition] = true
                }
                release(partition: partition, row: index)
                queue.append((Int32(partition), Int32(index)))
                excess[id] -= 1
            }
        }
    }

    /// Moves single replicas from devices over target to devices under it. Direct moves first; when a receiver can
    /// take nothing the over-target device holds (e.g. all its partitions already have a replica in the receiver's
    /// region), a two-step chain through a device at target: giver → middle, middle → receiver.
    private mutating func repairBalance(targets: [Int], before: [[Int32]], topology: RingTopology, caps: [[[Int32]]],
                                        moved: inout [Bool], canMove: (Int) -> Bool) {
        let under = devices.compactMap { $0 }.filter { $0.weight > 0 && $0.parts < targets[$0.id] }.map(\.id)
        var over = Set(devices.compactMap { $0 }.filter { $0.parts > targets[$0.id] }.map(\.id))
        guard !under.isEmpty, !over.isEmpty else { return }
        var slotsOf: [Int: [(partition: Int, row: Int)]] = [:]
        for (index, row) in rows.enumerated() {
            for partition in row.indices where row[partition] >= 0 { slotsOf[Int(row[partition]), default: []].append((partition, index)) }
        }
        var mover = ReplicaMover(topology: topology, caps: caps)
        for receiver in under {
            while (devices[receiver]?.parts ?? 0) < targets[receiver], !over.isEmpty {
                var done = false
                for giver in over.sorted() {
                    if let slot = mover.find(from: giver, to: receiver, slots: slotsOf[giver] ?? [], builder: self, before: before, moved: moved, canMove: canMove) {
                        move(slot, from: giver, to: receiver, slotsOf: &slotsOf, before: before, moved: &moved)
                        done = true
                    } else {
                        // Two steps through a device at its target (a bounded search: this is a last resort).
                        var tried = 0
                        for middle in devices.indices where devices[middle] != nil && middle != giver && middle != receiver
                            && devices[middle]!.weight > 0 && devices[middle]!.parts == targets[middle] {
                            tried += 1
                            if tried > 64 { break }
                            guard let second = mover.find(from: middle, to: receiver, slots: slotsOf[middle] ?? [], builder: self, before: before,
                                                          moved: moved, canMove: canMove) else { continue }
                            move(second, from: middle, to: receiver, slotsOf: &slotsOf, before: before, moved: &moved)
                            if let first = mover.find(from: giver, to: middle, slots: slotsOf[giver] ?? [], builder: self, before: before,
                                                      moved: moved, canMove: canMove) {
                                move(first, from: giver, to: middle, slotsOf: &slotsOf, before: before, moved: &moved)
                                done = true
                                break
                            }
                            // No way to refill the middle device: undo its move.
                            let undo = slotsOf[receiver]!.last!
                            move(undo, from: receiver, to: middle, slotsOf: &slotsOf, before: before, moved: &moved)
                        }
                    }
                    if (devices[giver]?.parts ?? 0) <= targets[giver] { over.remove(giver) }
                    if done { break }
                }
                if !done { break }
            }
        }
    }

    private mutating func move(_ slot: (partition: Int, row: Int), from giver: Int, to receiver: Int,
                               slotsOf: inout [Int: [(partition: Int, row: Int)]], before: [[Int32]], moved: inout [Bool]) {
        let original = slot.row < before.count && slot.partition < before[slot.row].count ? before[slot.row][slot.partition] : -1
        if original == Int32(giver) { moved[slot.partition] = true }
        rows[slot.row][slot.partition] = Int32(receiver)
        devices[giver]?.parts -= 1
        devices[receiver]?.parts += 1
        slotsOf[giver]?.removeAll { $0.partition == slot.partition && $0.row == slot.row }
        slotsOf[receiver, default: []].append(slot)
    }

    /// Places queued replicas top-down: region, zone, server, then device, each time taking the child with the
    /// most partitions still wanted among those the partition's dispersion caps allow (dispersion first, weight
    /// second, at every tier). Falls back to the legal device wanting most if the descent dead-ends.
    ///
    /// Runs once per queued replica (786,432 of them for a fresh part-power-18 ring): tier nodes are kept flat (node
    /// `n` of level `l` at `offset[l] + n`, children as ranges of one list) and read through buffer pointers, so the
    /// descent costs no retain or uniqueness check. Ties go to the first child in order, as with nested arrays.
    private mutating func place(_ queue: [(partition: Int32, row: Int32)], topology: RingTopology, caps: [[[Int32]]], targets: [Int]) {
        let levels = RingTopology.levels
        var offset = [Int](repeating: 0, count: levels + 1)
        for level in 0..<levels { offset[level + 1] = offset[level] + topology.nodeCount[level] }
        let tierNodes = offset[levels]
        // Children of every flat tier node (tier nodes of the next level; devices under servers), as ranges of `childList`.
        var childrenOf = [[Int32]](repeating: [], count: tierNodes)
        var roots: [Int32] = []
        for level in 0..<levels {
            for node in 0..<topology.nodeCount[level] {
                if level == 0 { roots.append(Int32(node)) } else { childrenOf[offset[level - 1] + Int(topology.parent[level][node])].append(Int32(node)) }
            }
        }
        var deviceWanted = [Int](repeating: Int.min, count: devices.count)
        for case let device? in devices where device.weight > 0 && topology.tierOf[device.id][0] >= 0 {
            deviceWanted[device.id] = targets[device.id] - device.parts
            childrenOf[offset[levels - 1] + Int(topology.tierOf[device.id][levels - 1])].append(Int32(device.id))
        }
        var childStart = [Int](repeating: 0, count: tierNodes + 1)
        var childList: [Int32] = []
        for (node, children) in childrenOf.enumerated() {
            childList += children
            childStart[node + 1] = childList.count
        }
        // Flat tier slot of each device at each level, and what each tier node still wants.
        var deviceSlot = [Int](repeating: -1, count: devices.count * levels)
        var wanted = [Int](repeating: 0, count: tierNodes)
        for (id, value) in deviceWanted.enumerated() where value != Int.min {
            for level in 0..<levels {
                let slot = offset[level] + Int(topology.tierOf[id][level])
                deviceSlot[id * levels + level] = slot
                wanted[slot] += value
            }
        }
        let flatCaps: [[Int32]] = caps.map { perLevel in perLevel.flatMap { $0 } }
        var tiers = TierCounts(topology: topology)
        wanted.withUnsafeMutableBufferPointer { wanted in
        deviceWanted.withUnsafeMutableBufferPointer { deviceWanted in
        childList.withUnsafeBufferPointer { childList in
        childStart.withUnsafeBufferPointer { childStart in
        deviceSlot.withUnsafeBufferPointer { deviceSlot in
            for (partition, row) in queue {
                let p = Int(partition)
                tiers.load(partition: p, rows: rows)
                let chosen: Int32 = flatCaps[replicaCount(of: p)].withUnsafeBufferPointer { cap in
                    // Descend: level 0's candidates are the roots, then the children of the node taken.
                    var chosen: Int32 = -1
                    var range = 0..<roots.count
                    var best = -1
                    for level in 0..<levels {
                        let base = offset[level]
                        best = -1
                        for index in range {
                            let slot = base + Int(level == 0 ? roots[index] : childList[index])
                            guard tiers.count(slot: slot) < cap[slot] else { continue }
                            if best < 0 || wanted[slot] > wanted[best] { best = slot }
                        }
                        guard best >= 0 else { break }
                        range = childStart[best]..<childStart[best + 1]
                    }
                    if best >= 0 && best >= offset[levels - 1] {
                        for index in range where !tiers.holders.contains(childList[index]) {
                            let id = childList[index]
                            if chosen < 0 || deviceWanted[Int(id)] > deviceWanted[Int(chosen)] { chosen = id }
                        }
                    }
                    return chosen
                }
                var pick = chosen
                if pick < 0 {
                    // Dead end (a cap full below a node that looked free): the legal device wanting most, else any.
                    var fallback: Int32 = -1
                    let cap = caps[replicaCount(of: p)]
                    for (id, value) in deviceWanted.enumerated() where value != Int.min && !tiers.holders.contains(Int32(id)) {
                        if tiers.admits(device: id, caps: cap) && (pick < 0 || value > deviceWanted[Int(pick)]) { pick = Int32(id) }
                        if fallback < 0 || value > deviceWanted[Int(fallback)] { fallback = Int32(id) }
                    }
                    if pick < 0 { pick = fallback }
                }
                guard pick >= 0 else { continue }
                rows[Int(row)][p] = pick
                devices[Int(pick)]?.parts += 1
                deviceWanted[Int(pick)] -= 1
                for level in 0..<levels { wanted[deviceSlot[Int(pick) * levels + level]] -= 1 }
            }
        }
        }
        }
        }
        }
    }

    /// Integer partition-replica targets per device: weight shares water-filled down the tier tree under the
    /// dispersion caps, then rounded (largest remainders first) so the targets sum to the slots.
    static func targets(devices: [BuilderDevice?], topology: RingTopology, rowLengths: [Int], caps: [[[Int32]]]) -> [Int] {
        let slots = rowLengths.reduce(0, +)
        let partitions = rowLengths.first ?? 0
        // How many partitions have k replicas.
        var withReplicas = [Int](repeating: 0, count: rowLengths.count + 1)
        for k in 1...max(1, rowLengths.count) where k <= rowLengths.count {
            let reach = rowLengths[k - 1]
            let next = k < rowLengths.count ? rowLengths[k] : 0
            withReplicas[k] = reach - next
        }
        _ = partitions
        func capacity(level: Int, node: Int) -> Double {
            var total = 0.0
            for k in 1..<withReplicas.count { total += Double(withReplicas[k]) * Double(caps[k][level][node]) }
            return total
        }
        // Weights per tier node.
        var weight: [[Double]] = topology.nodeCount.map { Array(repeating: 0, count: $0) }
        for case let device? in devices where device.weight > 0 {
            for level in 0..<RingTopology.levels { weight[level][Int(topology.tierOf[device.id][level])] += device.weight }
        }
        // Children lists.
        var kids: [[[Int]]] = topology.nodeCount.map { Array(repeating: [], count: $0) }
        var rootKids: [Int] = []
        for level in 0..<RingTopology.levels {
            for node in 0..<topology.nodeCount[level] {
                let parent = topology.parent[level][node]
                if level == 0 { rootKids.append(node) } else { kids[level - 1][Int(parent)].append(node) }
            }
        }
        var deviceKids: [[Int]] = Array(repeating: [], count: topology.nodeCount[RingTopology.levels - 1])
        for case let device? in devices where device.weight > 0 { deviceKids[Int(topology.tierOf[device.id][RingTopology.levels - 1])].append(device.id) }

        func fill(_ budget: Double, _ items: [Int], weightOf: (Int) -> Double, capOf: (Int) -> Double) -> [Int: Double] {
            var result: [Int: Double] = [:]
            var open = items
            var remaining = budget
            while !open.isEmpty {
                let total = open.reduce(0.0) { $0 + weightOf($1) }
                guard total > 0 else { break }
                let over = open.filter { remaining * weightOf($0) / total > capOf($0) }
                if over.isEmpty {
                    for item in open { result[item] = remaining * weightOf(item) / total }
                    break
                }
                for item in over {
                    result[item] = capOf(item)
                    remaining -= capOf(item)
                }
                open.removeAll { over.contains($0) }
            }
            return result
        }

        var expected: [[Double]] = topology.nodeCount.map { Array(repeating: 0, count: $0) }
        for (node, value) in fill(Double(slots), rootKids, weightOf: { weight[0][$0] }, capOf: { capacity(level: 0, node: $0) }) {
            expected[0][node] = value
        }
        for level in 1..<RingTopology.levels {
            for parent in 0..<topology.nodeCount[level - 1] {
                for (node, value) in fill(expected[level - 1][parent], kids[level - 1][parent], weightOf: { weight[level][$0] },
                                          capOf: { capacity(level: level, node: $0) }) {
                    expected[level][node] = value
                }
            }
        }
        var deviceExpected = [Double](repeating: 0, count: devices.count)
        let perDeviceCap = Double(rowLengths.first ?? 0)
        for server in 0..<topology.nodeCount[RingTopology.levels - 1] {
            for (id, value) in fill(expected[RingTopology.levels - 1][server], deviceKids[server],
                                    weightOf: { devices[$0]!.weight }, capOf: { _ in perDeviceCap }) {
                deviceExpected[id] = value
            }
        }
        // Integers tier by tier, so every tier's sum is achievable: regions from the total, zones from their region,
        // servers from their zone, devices from their server (largest relative remainders round up).
        func apportion(_ total: Int, _ items: [Int], expected: (Int) -> Double, capacity: (Int) -> Double) -> [Int: Int] {
            let sum = items.reduce(0.0) { $0 + expected($1) }
            guard sum > 0, total > 0 else { return Dictionary(uniqueKeysWithValues: items.map { ($0, 0) }) }
            let scale = Double(total) / sum
            var result: [Int: Int] = [:]
            for item in items { result[item] = min(Int((expected(item) * scale).rounded(.down)), Int(capacity(item).rounded(.down))) }
            var short = total - result.values.reduce(0, +)
            let order = items.sorted { a, b in
                let ra = expected(a) > 0 ? (expected(a) * scale - Double(result[a]!)) / expected(a) : -1
                let rb = expected(b) > 0 ? (expected(b) * scale - Double(result[b]!)) / expected(b) : -1
                return ra != rb ? ra > rb : a < b
            }
            var index = 0
            var stalled = 0
            while short > 0 && !order.isEmpty && stalled < order.count {
                let item = order[index % order.count]
                if Double(result[item]! + 1) <= capacity(item) + 1e-9 {
                    result[item]! += 1
                    short -= 1
                    stalled = 0
                } else {
                    stalled += 1
                }
                index += 1
            }
            return result
        }
        var integer: [[Int]] = topology.nodeCount.map { Array(repeating: 0, count: $0) }
        for (node, value) in apportion(slots, rootKids, expected: { expected[0][$0] }, capacity: { capacity(level: 0, node: $0) }) {
            integer[0][node] = value
        }
        for level in 1..<RingTopology.levels {
            for parent in 0..<topology.nodeCount[level - 1] {
                for (node, value) in apportion(integer[level - 1][parent], kids[level - 1][parent], expected: { expected[level][$0] },
                                               capacity: { capacity(level: level, node: $0) }) {
                    integer[level][node] = value
                }
            }
        }
        var targets = [Int](repeating: 0, count: devices.count)
        for server in 0..<topology.nodeCount[RingTopology.levels - 1] {
            for (id, value) in apportion(integer[RingTopology.levels - 1][server], deviceKids[server], expected: { deviceExpected[$0] },
                                         capacity: { _ in perDeviceCap }) {
                targets[id] = value
            }
        }
        return targets
    }
}

/// Finds a replica one device may legally hand to another (scratch counts reused across searches).
struct ReplicaMover {
    let caps: [[[Int32]]]
    private var tiers: TierCounts

    init(topology: RingTopology, caps: [[[Int32]]]) {
        self.caps = caps
        tiers = TierCounts(topology: topology)
    }

    /// A slot of `giver` whose partition `receiver` may hold: not already there, within every tier cap once the
    /// giver's replica leaves, and allowed to move (placed in this rebalance, or not moved yet and rested).
    mutating func find(from giver: Int, to receiver: Int, slots: [(partition: Int, row: Int)], builder: RingBuilder,
                       before: [[Int32]], moved: [Bool], canMove: (Int) -> Bool) -> (partition: Int, row: Int)? {
        for entry in slots {
            let p = entry.partition
            let original = entry.row < before.count && p < before[entry.row].count ? before[entry.row][p] : -1
            if original == Int32(giver) && (moved[p] || !canMove(p)) { continue }
            tiers.load(partition: p, rows: builder.rows, excluding: entry.row)
            if tiers.admits(device: receiver, caps: caps[builder.replicaCount(of: p)]) { return entry }
        }
        return nil
    }
}
