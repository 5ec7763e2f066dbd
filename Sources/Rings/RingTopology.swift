/// The tier tree of a ring's devices — region → zone → server (ip) → device — flattened into arrays, with
/// per-partition dispersion caps: a tier node holding k replicas of a partition may give each of its children
/// at most ⌈k / children⌉, so replicas spread as widely as the topology allows.
struct RingTopology {
    /// Tier levels below the root.
    static let levels = 3  // region, zone, server; devices are the leaves

    /// For each device (by id): its tier node index at each level, or -1 for absent/weightless devices.
    var tierOf: [[Int32]]  // [device][level]
    /// Number of tier nodes at each level.
    var nodeCount: [Int]
    /// Parent of each tier node (level 0's parent is the root, -1).
    var parent: [[Int32]]
    /// Children count of each tier node (for level 2, the number of its devices with weight).
    var children: [[Int32]]
    /// Children of the root (regions with weight).
    var rootChildren: Int32

    init(devices: [BuilderDevice?]) {
        var keys: [[String: Int32]] = Array(repeating: [:], count: Self.levels)
        var parent: [[Int32]] = Array(repeating: [], count: Self.levels)
        var children: [[Int32]] = Array(repeating: [], count: Self.levels)
        tierOf = Array(repeating: [-1, -1, -1], count: devices.count)
        rootChildren = 0
        for (id, device) in devices.enumerated() {
            guard let device, device.weight > 0 else { continue }
            let path = ["\(device.region)", "\(device.region)/\(device.zone)", "\(device.region)/\(device.zone)/\(device.ip)"]
            var above: Int32 = -1
            for level in 0..<Self.levels {
                let index: Int32
                if let existing = keys[level][path[level]] {
                    index = existing
                } else {
                    index = Int32(parent[level].count)
                    keys[level][path[level]] = index
                    parent[level].append(above)
                    children[level].append(0)
                    if level == 0 { rootChildren += 1 } else { children[level - 1][Int(above)] += 1 }
                }
                tierOf[id][level] = index
                above = index
            }
            children[Self.levels - 1][Int(above)] += 1
        }
        self.parent = parent
        self.children = children
        nodeCount = parent.map(\.count)
    }

    /// Per-partition caps for a partition with `replicas` replicas: [level][node] → most replicas allowed there.
    func caps(replicas: Int) -> [[Int32]] {
        var caps: [[Int32]] = nodeCount.map { Array(repeating: 0, count: $0) }
        for level in 0..<Self.levels {
            for node in 0..<nodeCount[level] {
                let (above, siblings): (Int32, Int32) = level == 0
                    ? (Int32(replicas), rootChildren)
                    : (caps[level - 1][Int(parent[level][node])], children[level - 1][Int(parent[level][node])])
                caps[level][node] = siblings > 0 ? (above + siblings - 1) / siblings : 0
            }
        }
        return caps
    }
}
