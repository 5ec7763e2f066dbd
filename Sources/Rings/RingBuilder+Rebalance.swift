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
        var counts = [[Int32]](topology.nodeCount.map { Array(repeating: 0, count: $0) })
        var touched: [(Int, Int32)] = []
        touched.reserveCapacity(16)
        for partition in 0..<partitionCount where !moved[partition] {
            if let row = overDispersed(partition: partition, topology: topology, caps: caps[replicaCount(of: partition)], counts: &counts, touched: &touched) {
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
        for round in 0..<32 {
            if round > 0 || !queue.isEmpty || devices.contains(where: { d in d.map { $0.parts > targets[$0.id] } ?? false }) {
                gatherExcess(targets: targets, before: before, moved: &moved, heldBack: &heldBack, canMove: canMove, queue: &queue)
            }
            guard !queue.isEmpty else { break }
            place(queue, topology: topology, caps: caps, targets: targets)
            queue.removeAll(keepingCapacity: true)
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

    /// The row of a replica to move if `partition` holds more replicas in some tier than the caps allow.
    private func overDispersed(partition: Int, topology: RingTopology, caps: [[Int32]], counts: inout [[Int32]],
                               touched: inout [(Int, Int32)]) -> Int? {
        var found: Int?
        touched.removeAll(keepingCapacity: true)
        for (index, row) in rows.enumerated() where partition < row.count && row[partition] >= 0 {
            let tiers = topology.tierOf[Int(row[partition])]
            for level in 0..<RingTopology.levels where tiers[level] >= 0 {
                counts[level][Int(tiers[level])] += 1
                touched.append((level, tiers[level]))
                if counts[level][Int(tiers[level])] > caps[level][Int(tiers[level])] { found = found ?? index }
            }
        }
        for (level, node) in touched { counts[level][Int(node)] = 0 }
        return found
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

    /// Moves single replicas straight from devices over target to devices under it, choosing for each pair a
    /// partition the receiving device may legally hold (the greedy placement can strand a few devices one partition
    /// off target when the last replicas it placed had no dispersion-legal home among the devices still wanting).
    private mutating func repairBalance(targets: [Int], before: [[Int32]], topology: RingTopology, caps: [[[Int32]]],
                                        moved: inout [Bool], canMove: (Int) -> Bool) {
        let under = devices.compactMap { $0 }.filter { $0.weight > 0 && $0.parts < targets[$0.id] }.map(\.id)
        var over = Set(devices.compactMap { $0 }.filter { $0.parts > targets[$0.id] }.map(\.id))
        guard !under.isEmpty, !over.isEmpty else { return }
        var slotsOf: [Int: [(partition: Int, row: Int)]] = [:]
        for giver in over { slotsOf[giver] = []; slotsOf[giver]?.reserveCapacity((devices[giver]?.parts ?? 0) + 1) }
        for (index, row) in rows.enumerated() {
            for partition in row.indices where over.contains(Int(row[partition])) { slotsOf[Int(row[partition])]?.append((partition, index)) }
        }
        var counts = [[Int32]](topology.nodeCount.map { Array(repeating: 0, count: $0) })
        var touched: [(Int, Int32)] = []
        touched.reserveCapacity(16)
        for receiver in under {
            var wanted = targets[receiver] - (devices[receiver]?.parts ?? 0)
            let tiers = topology.tierOf[receiver]
            search: for giver in over.sorted() where wanted > 0 {
                for (slot, entry) in (slotsOf[giver] ?? []).enumerated() {
                    let p = entry.partition
                    let original = entry.row < before.count && p < before[entry.row].count ? before[entry.row][p] : -1
                    let fresh = original != Int32(giver)
                    if !fresh && (moved[p] || !canMove(p)) { continue }
                    var legal = true
                    touched.removeAll(keepingCapacity: true)
                    for (index, row) in rows.enumerated() where p < row.count && index != entry.row && row[p] >= 0 {
                        if Int(row[p]) == receiver { legal = false }
                        let other = topology.tierOf[Int(row[p])]
                        for level in 0..<RingTopology.levels where other[level] >= 0 {
                            counts[level][Int(other[level])] += 1
                            touched.append((level, other[level]))
                        }
                    }
                    let cap = caps[replicaCount(of: p)]
                    for level in 0..<RingTopology.levels where counts[level][Int(tiers[level])] + 1 > cap[level][Int(tiers[level])] { legal = false }
                    for (level, node) in touched { counts[level][Int(node)] = 0 }
                    guard legal else { continue }
                    rows[entry.row][p] = Int32(receiver)
                    devices[giver]?.parts -= 1
                    devices[receiver]?.parts += 1
                    if !fresh { moved[p] = true }
                    slotsOf[giver]?.remove(at: slot)
                    wanted -= 1
                    if (devices[giver]?.parts ?? 0) <= targets[giver] { over.remove(giver) }
                    continue search
                }
            }
        }
    }

    /// Places queued replicas: each on the device with the most partitions wanted that keeps the partition within
    /// every tier's cap (and never on a device that already holds it).
    private mutating func place(_ queue: [(partition: Int32, row: Int32)], topology: RingTopology, caps: [[[Int32]]], targets: [Int]) {
        var heap = DeviceHeap()
        for case let device? in devices where device.weight > 0 {
            heap.push(id: Int32(device.id), wanted: targets[device.id] - device.parts)
        }
        var counts = [[Int32]](topology.nodeCount.map { Array(repeating: 0, count: $0) })
        var held: [(Int32, Int)] = []
        var holders: [Int32] = []
        var touched: [(Int, Int32)] = []
        for (partition, row) in queue {
            let p = Int(partition)
            let cap = caps[replicaCount(of: p)]
            holders.removeAll(keepingCapacity: true)
            touched.removeAll(keepingCapacity: true)
            for other in rows where p < other.count && other[p] >= 0 {
                holders.append(other[p])
                let tiers = topology.tierOf[Int(other[p])]
                for level in 0..<RingTopology.levels where tiers[level] >= 0 {
                    counts[level][Int(tiers[level])] += 1
                    touched.append((level, tiers[level]))
                }
            }
            var chosen: Int32 = -1
            var fallback: Int32 = -1
            while let (id, wanted) = heap.pop() {
                held.append((id, wanted))
                if holders.contains(id) { continue }
                let tiers = topology.tierOf[Int(id)]
                var fits = true
                for level in 0..<RingTopology.levels where counts[level][Int(tiers[level])] + 1 > cap[level][Int(tiers[level])] {
                    fits = false
                    break
                }
                if fits {
                    chosen = id
                    break
                }
                if fallback < 0 { fallback = id }
                _ = wanted
            }
            if chosen < 0 { chosen = fallback }
            for (id, wanted) in held { heap.push(id: id, wanted: id == chosen ? wanted - 1 : wanted) }
            held.removeAll(keepingCapacity: true)
            for (level, node) in touched { counts[level][Int(node)] = 0 }
            guard chosen >= 0 else { continue }
            rows[Int(row)][p] = chosen
            devices[Int(chosen)]?.parts += 1
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
        var targets = deviceExpected.map { Int($0.rounded(.down)) }
        var short = slots - targets.reduce(0, +)
        let order = deviceExpected.indices.filter { deviceExpected[$0] > 0 }
            .sorted { (deviceExpected[$0] - Double(targets[$0])) / deviceExpected[$0] > (deviceExpected[$1] - Double(targets[$1])) / deviceExpected[$1] }
        var index = 0
        while short > 0 && !order.isEmpty {
            targets[order[index % order.count]] += 1
            short -= 1
            index += 1
        }
        return targets
    }
}

/// A max-heap of devices by partitions wanted (ties: lower id first), for placement.
struct DeviceHeap {
    private var items: [(wanted: Int, id: Int32)] = []

    private func before(_ a: (wanted: Int, id: Int32), _ b: (wanted: Int, id: Int32)) -> Bool {
        a.wanted != b.wanted ? a.wanted > b.wanted : a.id < b.id
    }

    mutating func push(id: Int32, wanted: Int) {
        items.append((wanted, id))
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard before(items[child], items[parent]) else { break }
            items.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> (Int32, Int)? {
        guard let top = items.first else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var parent = 0
            while true {
                let left = 2 * parent + 1, right = left + 1
                var best = parent
                if left < items.count && before(items[left], items[best]) { best = left }
                if right < items.count && before(items[right], items[best]) { best = right }
                if best == parent { break }
                items.swapAt(parent, best)
                parent = best
            }
        }
        return (top.id, top.wanted)
    }
}
