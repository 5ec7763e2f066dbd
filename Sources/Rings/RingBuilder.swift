import Foundation

/// Builds and rebalances a Swift ring. Dispersion first (replicas of a partition spread over regions, zones and
/// servers as widely as the topology allows), weight second (each device ends within rounding of its share),
/// moving as little as possible: only unassigned replicas, replicas on removed devices, replicas that break
/// dispersion, and each device's excess over its target move; at most one replica of a partition moves per
/// rebalance, and none of a partition moved within `minPartHours`.
public struct RingBuilder: Sendable, Codable {
    /// log2 of the partition count.
    public let partPower: Int
    /// Replicas, fractional allowed (≥ 1).
    public private(set) var replicas: Double
    /// Hours a partition must rest after moving before it may move again.
    public var minPartHours: Int
    /// Accepted for compatibility; dispersion always takes precedence over weight in this builder.
    public var overload: Double = 0
    /// Devices by id; nil once a removed device has been drained.
    public internal(set) var devices: [BuilderDevice?] = []
    /// Devices to drain and drop at the next rebalance.
    public internal(set) var removing: Set<Int> = []
    /// Replica rows: partition → device id, -1 when unassigned.
    var rows: [[Int32]] = []
    /// Hour (since the epoch) each partition last moved; `Int32.min` when never.
    var lastMoved: [Int32]
    /// Incremented by every rebalance that changed something.
    public internal(set) var version = 0

    /// What a rebalance did.
    public struct Report: Sendable, Equatable {
        /// Partitions with at least one replica on a new device.
        public var partitionsMoved: Int
        /// Replicas placed on a new device (initial placement included).
        public var replicasMoved: Int
        /// Balance after: the largest deviation of a device's partitions from its weight share, in percent.
        public var balance: Double
        /// Partitions whose replicas are less dispersed than the topology allows.
        public var dispersion: Int
        /// Partitions that should have moved but were held back by `minPartHours`.
        public var heldBack: Int
        /// Devices drained and dropped.
        public var removedDevices: Int
        /// Where the topology is too small to give every replica of a partition its own region, zone or server.
        public var warnings: [String] = []
    }

    /// Why a rebalance cannot be done.
    public struct Failure: Error, Sendable, CustomStringConvertible, Equatable {
        public var description: String

        /// A failure saying `description`.
        public init(description: String) {
            self.description = description
        }
    }

    /// An empty builder.
    public init(partPower: Int, replicas: Double, minPartHours: Int) throws(Failure) {
        guard (1...32).contains(partPower) else { throw Failure(description: "part power must be between 1 and 32, not \(partPower)") }
        guard replicas >= 1 else { throw Failure(description: "replicas must be at least 1, not \(replicas)") }
        self.partPower = partPower
        self.replicas = replicas
        self.minPartHours = minPartHours
        lastMoved = Array(repeating: Int32.min, count: 1 << partPower)
    }

    public var partitionCount: Int { 1 << partPower }

    /// Adds a device and returns its id.
    @discardableResult
    public mutating func add(_ device: BuilderDevice) throws(Failure) -> Int {
        // Swift reserves the largest 2-byte id (65535) to mean "no device".
        guard devices.count < Int(UInt16.max) else { throw Failure(description: "a ring holds at most \(Int(UInt16.max)) devices") }
        var device = device
        device.id = devices.count
        device.parts = 0
        devices.append(device)
        return device.id
    }

    /// Marks a device for removal: its partitions move away at the next rebalance (whatever min_part_hours says).
    public mutating func remove(_ id: Int) {
        guard devices.indices.contains(id), devices[id] != nil else { return }
        removing.insert(id)
    }

    /// Changes a device's weight (0 drains it gradually, honouring min_part_hours).
    public mutating func setWeight(_ id: Int, _ weight: Double) {
        devices[id]?.weight = weight
    }

    /// Changes a device's placement facts and weight (its id and assignments stay).
    public mutating func update(_ id: Int, to device: BuilderDevice) throws(Failure) {
        guard var current = devices.indices.contains(id) ? devices[id] : nil else { throw Failure(description: "no device \(id)") }
        current.region = device.region
        current.zone = device.zone
        current.ip = device.ip
        current.port = device.port
        current.device = device.device
        current.weight = device.weight
        current.meta = device.meta
        devices[id] = current
    }

    /// Changes the replica count (takes effect at the next rebalance).
    public mutating func setReplicas(_ replicas: Double) throws(Failure) {
        guard replicas >= 1 else { throw Failure(description: "replicas must be at least 1, not \(replicas)") }
        self.replicas = replicas
    }

    /// The row lengths for the current replica count: whole rows, then a partial one for the fraction.
    var rowLengths: [Int] {
        let whole = Int(replicas)
        var lengths = Array(repeating: partitionCount, count: whole)
        let extra = Int((replicas - Double(whole)) * Double(partitionCount))
        if extra > 0 { lengths.append(extra) }
        return lengths
    }

    /// Replicas of partition `p` (rows that reach it).
    func replicaCount(of partition: Int) -> Int {
        rows.count { partition < $0.count }
    }

    private enum CodingKeys: String, CodingKey {
        case partPower, replicas, minPartHours, overload, devices, removing, rows, lastMoved, version
    }

    /// Saves the assignment tables as raw little-endian bytes (base64 in JSON): a part power 16 ring has
    /// 262,144 entries, which as JSON numbers would dominate loading the state store.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(partPower, forKey: .partPower)
        try c.encode(replicas, forKey: .replicas)
        try c.encode(minPartHours, forKey: .minPartHours)
        try c.encode(overload, forKey: .overload)
        try c.encode(devices, forKey: .devices)
        try c.encode(removing, forKey: .removing)
        try c.encode(rows.map(Self.bytes), forKey: .rows)
        try c.encode(Self.bytes(lastMoved), forKey: .lastMoved)
        try c.encode(version, forKey: .version)
    }

    /// Reads what `encode(to:)` wrote.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        partPower = try c.decode(Int.self, forKey: .partPower)
        replicas = try c.decode(Double.self, forKey: .replicas)
        minPartHours = try c.decode(Int.self, forKey: .minPartHours)
        overload = try c.decode(Double.self, forKey: .overload)
        devices = try c.decode([BuilderDevice?].self, forKey: .devices)
        removing = try c.decode(Set<Int>.self, forKey: .removing)
        rows = try c.decode([Data].self, forKey: .rows).map(Self.int32s)
        lastMoved = Self.int32s(try c.decode(Data.self, forKey: .lastMoved))
        version = try c.decode(Int.self, forKey: .version)
        guard lastMoved.count == 1 << partPower, rows.allSatisfy({ $0.count <= 1 << partPower }) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "ring builder tables do not match part power \(partPower)"))
        }
    }

    private static func bytes(_ values: [Int32]) -> Data {
        #if _endian(little)
        values.withUnsafeBytes { Data($0) }
        #else
        values.map { $0.littleEndian }.withUnsafeBytes { Data($0) }
        #endif
    }

    private static func int32s(_ data: Data) -> [Int32] {
        var values = [Int32](repeating: 0, count: data.count / 4)
        values.withUnsafeMutableBytes { _ = data.copyBytes(to: $0) }
        #if _endian(little)
        return values
        #else
        return values.map { Int32(littleEndian: $0) }
        #endif
    }

    /// The ring file data.
    public func ring() -> RingData {
        RingData(devices: devices.map { $0?.ringDevice }, partShift: 32 - partPower,
                 assignments: rows.map { $0.map { UInt16(max(0, $0)) } }, version: version)
    }
}
