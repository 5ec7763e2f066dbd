import Crypto

/// A Swift ring: devices and the replica → partition → device table. What `*.ring.gz` files hold.
public struct RingData: Sendable, Equatable {
    /// Devices by id; nil where a device was removed (ids are never reused).
    public var devices: [RingDevice?]
    /// 32 − part power: a path hash's top 32 bits shifted right by this give its partition.
    public var partShift: Int
    /// One row per replica, each mapping partition → device id. The last row is shorter for fractional replicas.
    public var assignments: [[UInt16]]
    /// The builder's version counter, if known.
    public var version: Int?

    /// Creates a ring.
    public init(devices: [RingDevice?], partShift: Int, assignments: [[UInt16]], version: Int? = nil) {
        self.devices = devices
        self.partShift = partShift
        self.assignments = assignments
        self.version = version
    }

    /// log2 of the partition count.
    public var partPower: Int { 32 - partShift }
    /// The number of partitions.
    public var partitionCount: Int { 1 << partPower }

    /// Replicas, fractional when the last row covers only part of the partitions (Swift's `replica_count`).
    public var replicaCount: Double {
        guard let first = assignments.first, !first.isEmpty else { return 0 }
        return Double(assignments.count - 1) + Double(assignments[assignments.count - 1].count) / Double(first.count)
    }

    /// `/account[/container[/object]]`, the path Swift hashes.
    public static func path(account: String, container: String? = nil, object: String? = nil) -> String {
        var path = "/" + account
        if let container { path += "/" + container }
        if let object { path += "/" + object }
        return path
    }

    /// The partition of a path: the top 32 bits of MD5(prefix + path + suffix), shifted right by `partShift`.
    /// `prefix` and `suffix` are the cluster's `swift_hash_path_prefix` and `swift_hash_path_suffix`.
    public func partition(path: String, hashPrefix: String = "", hashSuffix: String) -> Int {
        let digest = Insecure.MD5.hash(data: Array((hashPrefix + path + hashSuffix).utf8))
        var top: UInt32 = 0
        for byte in digest.prefix(4) { top = top << 8 | UInt32(byte) }
        return Int(top >> UInt32(partShift))
    }

    /// The devices holding `partition`, one per replica, each device at most once (as Swift's `get_part_nodes`).
    public func nodes(partition: Int) -> [RingDevice] {
        var seen: Set<UInt16> = []
        var nodes: [RingDevice] = []
        for row in assignments where partition < row.count {
            let id = row[partition]
            if seen.insert(id).inserted, let device = devices[Int(id)] { nodes.append(device) }
        }
        return nodes
    }
}
