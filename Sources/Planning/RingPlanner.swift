import Crypto
import Foundation
import Manifests
import Rings

/// A ring's builder with what maps it to the manifests: which device is which disk, and the zone numbers given
/// to zone names (kept, so a new zone never renumbers existing ones). Saved in the state store between runs.
public struct StoredRing: Sendable, Codable {
    /// The builder (devices, assignments, move times).
    public var builder: RingBuilder
    /// `node/disk` → device id.
    public var deviceIDs: [String: Int]
    /// Zone name → Swift zone number.
    public var zoneNumbers: [String: Int]
    /// Whether the last rebalance finished (nothing held back by min_part_hours): with the same devices, another
    /// rebalance would move nothing, so a plan need not run one.
    public var settled = false
    /// sha256 of the ring file of this state.
    public var checksum: String?
    /// Partitions less dispersed than the topology allows, as of the last rebalance.
    public var dispersion = 0
    /// Checksums of the ring files of the last few earlier states: a node holding one of them is behind (the ring
    /// was rebuilt, e.g. by `stacklab ring build`), not drifted.
    public var earlierChecksums: [String] = []

    /// Set on a state adopted from an installed ring file this run (the store holds no builder yet); not saved.
    public var adoptedFrom: String?
    /// The state store's stamp of the saved state this was read as (`StateStore.ringStamps`), when read from it; not
    /// saved. Equal stamps are the same saved state.
    public var stamp: String?

    /// The state as the JSON the state store keeps, with sorted keys: equal states are equal bytes.
    public func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return try encoder.encode(self)
    }

    /// The state a state store saved for the ring at `address`. A state that cannot be read is an error naming the
    /// ring, why, and what to do; never a ring built from scratch in its place.
    public init(stored data: Data, address: String) throws(Unreadable) {
        do {
            self = try JSONDecoder().decode(StoredRing.self, from: data)
        } catch let DecodingError.dataCorrupted(context) {
            throw Unreadable(address: address, reason: context.debugDescription)
        } catch {
            throw Unreadable(address: address, reason: "\(error)")
        }
    }

    /// A saved ring state that cannot be read.
    public struct Unreadable: Error, CustomStringConvertible {
        public var address: String
        public var reason: String
        public var description: String {
            "the state store's builder of \(address) cannot be read (\(reason)): restore the state store from a backup, or delete that ring's saved state so that StackLab adopts the ring file its nodes hold"
        }
    }

    /// A new ring.
    public init(builder: RingBuilder) {
        self.builder = builder
        deviceIDs = [:]
        zoneNumbers = [:]
    }

    private enum CodingKeys: String, CodingKey { case builder, deviceIDs, zoneNumbers, settled, checksum, dispersion, earlierChecksums }

    /// Decodes a saved state; fields added later default (an older state is simply not `settled`).
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        builder = try container.decode(RingBuilder.self, forKey: .builder)
        deviceIDs = try container.decode([String: Int].self, forKey: .deviceIDs)
        zoneNumbers = try container.decode([String: Int].self, forKey: .zoneNumbers)
        settled = try container.decodeIfPresent(Bool.self, forKey: .settled) ?? false
        checksum = try container.decodeIfPresent(String.self, forKey: .checksum)
        dispersion = try container.decodeIfPresent(Int.self, forKey: .dispersion) ?? 0
        earlierChecksums = try container.decodeIfPresent([String].self, forKey: .earlierChecksums) ?? []
    }
}

/// A ring's rebalance as planned: what it does (`rebalance`, which the plan reports; its fields read as the plan's
/// own, `ringPlan.replicasMoved`), the builder state after it and the ring file nodes get.
@dynamicMemberLookup
public struct RingPlan: Sendable {
    /// What the rebalance does.
    public var rebalance: RingRebalance
    /// The builder state after the rebalance (saved by apply).
    public var state: StoredRing
    /// The ring file nodes get (see `RingPlanner.file(for:)`).
    public var file: Data?

    /// A field of `rebalance`.
    public subscript<Value>(dynamicMember field: KeyPath<RingRebalance, Value>) -> Value { rebalance[keyPath: field] }

    /// The installed file name (`object.ring.gz`).
    public var fileName: String { "\(rebalance.type).ring.gz" }
}

/// What a plan says of one ring's rebalance: `RingPlan` without the builder and ring file, which the plan's changes
/// already carry (a part power 16 builder decoded is about 0.8 MB: a plan that kept 300 rebuilt rings' builders held
/// 130 MB of them until the end of the run).
public struct RingRebalance: Sendable, Codable {
    /// `ring/<region>/<name>`.
    public var address: Address
    /// account, container or object.
    public var type: String
    /// Devices added, removed, or whose weight/address changed.
    public var added: [String]
    public var removed: [String]
    public var changed: [String]
    /// Replicas (partition copies) that move, and the balance before and after.
    public var replicasMoved: Int
    public var balanceBefore: Double?
    public var balanceAfter: Double
    public var dispersion: Int
    /// Partitions that wanted to move but min_part_hours held back.
    public var heldBack: Int
    /// Where the topology cannot give every replica its own zone or server.
    public var warnings: [String] = []
    /// sha256 of the ring file.
    public var checksum: String
    /// Whether the builder changes (apply saves the new state).
    public var rebuilt: Bool
    /// Whether the rebalance finished (nothing held back by min_part_hours): with the same devices, another would
    /// move nothing.
    public var settled: Bool
}

extension Resource where Spec == RingSpec {
    /// The file nodes install the ring as (`object.ring.gz`).
    public var fileName: String { "\((spec.type?.value ?? RingType(rawValue: name) ?? .object).rawValue).ring.gz" }
}

/// Derives rings from Ring manifests and the region's storage nodes.
public enum RingPlanner {
    /// Plans `ring` of `region` from its stored state (nil: a new ring), at `hour` (hours since the epoch).
    public static func plan(ring: Resource<RingSpec>, nodes: [Resource<NodeSpec>], stored: StoredRing?, hour: Int32) throws -> RingPlan {
        let spec = ring.spec
        let type = spec.type?.value ?? RingType(rawValue: ring.name) ?? .object
        var state = try stored ?? StoredRing(builder: RingBuilder(partPower: spec.partPower.value, replicas: spec.replicaCount,
                                                                   minPartHours: spec.minPartHours?.value ?? 1))
        if let stored, stored.builder.partPower != spec.partPower.value {
            throw RingBuilder.Failure(description: "its part power is \(stored.builder.partPower) and cannot change to \(spec.partPower.value): Swift cannot re-partition a ring in place (every object would move); keep partPower: \(stored.builder.partPower), or build a new ring under another name and migrate")
        }
        let before = stored.map { $0.builder.balance() }
        if state.builder.replicas != spec.replicaCount { try state.builder.setReplicas(spec.replicaCount) }
        state.builder.minPartHours = spec.minPartHours?.value ?? 1

        // The devices the manifests want, by key.
        let selectedNodes = spec.devices?.nodes.map { names in Set(names.value.map(\.value)) }
        let selectedDisks = spec.devices?.disks.map { names in Set(names.value.map(\.value)) }
        let port = spec.devices?.port?.value ?? type.defaultPort
        var wanted: [String: BuilderDevice] = [:]
        for node in nodes.sorted(by: { $0.name < $1.name }) where node.spec.has(.storage) && (selectedNodes?.contains(node.name) ?? true) {
            let zoneName = node.spec.zone?.value ?? node.name
            if state.zoneNumbers[zoneName] == nil { state.zoneNumbers[zoneName] = (state.zoneNumbers.values.max() ?? 0) + 1 }
            for disk in node.spec.disks?.value ?? [] where selectedDisks?.contains(disk.name.value) ?? true {
                wanted["\(node.name)/\(disk.name.value)"] = BuilderDevice(
                    region: 1, zone: state.zoneNumbers[zoneName]!, ip: node.spec.address.value.description, port: port,
                    device: disk.name.value, weight: disk.effectiveWeight, meta: node.name)
            }
        }
        var added: [String] = [], removed: [String] = [], changed: [String] = []
        // Removals, then adds and updates, each in key order; only the keys that need one are sorted (a ring whose
        // devices are as wanted sorts nothing).
        for key in state.deviceIDs.keys.filter({ wanted[$0] == nil }).sorted() {
            state.builder.remove(state.deviceIDs[key]!)
            state.deviceIDs[key] = nil
            removed.append(key)
        }
        let toChange = wanted.compactMap { key, device -> String? in
            guard let id = state.deviceIDs[key], let current = state.builder.devices[id] else { return key }
            let same = current.weight == device.weight && current.ip == device.ip && current.port == device.port && current.zone == device.zone
            return same ? nil : key
        }
        for key in toChange.sorted() {
            let device = wanted[key]!
            if let id = state.deviceIDs[key], state.builder.devices[id] != nil {
                try state.builder.update(id, to: device)
                changed.append(key)
            } else {
                state.deviceIDs[key] = try state.builder.add(device)
                added.append(key)
            }
        }
        let devicesChanged = !added.isEmpty || !removed.isEmpty || !changed.isEmpty || stored?.builder.replicas != spec.replicaCount
        if let stored, stored.settled, !devicesChanged, let checksum = stored.checksum {
            // Nothing to rebalance and the file is known: skip both (a no-op plan over hundreds of rings stays cheap).
            let rebalance = RingRebalance(address: ring.address, type: type.rawValue, added: [], removed: [], changed: [], replicasMoved: 0,
                                          balanceBefore: before, balanceAfter: before ?? 0, dispersion: stored.dispersion, heldBack: 0,
                                          checksum: checksum, rebuilt: false, settled: stored.settled)
            return RingPlan(rebalance: rebalance, state: stored, file: nil)
        }
        let report = try state.builder.rebalance(hour: hour)
        let rebuilt = stored == nil || stored?.adoptedFrom != nil || report.replicasMoved > 0 || devicesChanged
        if !rebuilt, let stored { state = stored }
        state.settled = report.heldBack == 0
        state.dispersion = report.dispersion  // when nothing moved, the stored assignment is the one the report measured
        let file = try encode(state, type: type.rawValue)
        state.checksum = sha256(file)
        if let old = stored?.checksum, old != state.checksum {
            state.earlierChecksums = Array(([old] + (stored?.earlierChecksums ?? []).filter { $0 != state.checksum }).prefix(8))
        }
        let rebalance = RingRebalance(address: ring.address, type: type.rawValue, added: added, removed: removed, changed: changed,
                                      replicasMoved: rebuilt ? report.replicasMoved : 0, balanceBefore: before, balanceAfter: state.builder.balance(),
                                      dispersion: state.dispersion, heldBack: report.heldBack, warnings: report.warnings,
                                      checksum: state.checksum!, rebuilt: rebuilt || stored?.settled != state.settled, settled: state.settled)
        return RingPlan(rebalance: rebalance, state: state, file: file)
    }

    /// The builder state recovered from an installed ring `file` (read from `node`) when the state store has none:
    /// devices map back to the manifests' `node/disk` keys through their meta (the node's name) and device name, and
    /// zone names to the zone numbers the file uses.
    public static func adopt(file: Data, from node: String, ring: Resource<RingSpec>, nodes: [Resource<NodeSpec>], hour: Int32) throws -> StoredRing {
        let data = try RingFile.decode([UInt8](file))
        var state = StoredRing(builder: try RingBuilder(adopting: data, minPartHours: ring.spec.minPartHours?.value ?? 1, hour: hour))
        let zones = Dictionary(nodes.map { ($0.name, $0.spec.zone?.value ?? $0.name) }, uniquingKeysWith: { first, _ in first })
        for case let device? in state.builder.devices {
            state.deviceIDs["\(device.meta)/\(device.device)"] = device.id
            if let zone = zones[device.meta] { state.zoneNumbers[zone] = device.zone }
        }
        state.checksum = sha256(file)
        state.adoptedFrom = node
        return state
    }

    /// The ring file of a plan (encoded now if the plan skipped it).
    public static func file(for plan: RingPlan) throws -> Data {
        try plan.file ?? encode(plan.state, type: plan.type)
    }

    /// The ring file of a saved builder state (`type`: account, container or object), as nodes install it.
    public static func file(of state: StoredRing, type: String) throws -> Data {
        try encode(state, type: type)
    }

    private static func encode(_ state: StoredRing, type: String) throws -> Data {
        let version = state.builder.replicas == state.builder.replicas.rounded() ? 1 : 2  // v1 cannot hold fractional replicas
        return Data(try RingFile.encode(state.builder.ring(), version: version, fileName: "\(type).ring.gz"))
    }

    /// Hex sha256.
    public static func sha256(_ data: Data) -> String {
        SHA256.hash(data: data).map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }
}
