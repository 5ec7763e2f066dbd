import Foundation
import Zlib

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
        case partPower, replicas, minPartHours, overload, devices, removing, rows, lastMoved, rowLengths, tables, version
    }

    /// Saves the assignment tables (every row, then `lastMoved`) as one zlib stream of little-endian Int32s (base64 in
    /// JSON), with the rows' lengths beside it. A part power 16 ring has 262,144 entries: as raw base64 they were 1.4 MB
    /// of JSON per ring, held in every plan that rebuilds it and read by every plan of its region; compressed, about
    /// 20 KB (the rows repeat device ids in runs).
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(partPower, forKey: .partPower)
        try c.encode(replicas, forKey: .replicas)
        try c.encode(minPartHours, forKey: .minPartHours)
        try c.encode(overload, forKey: .overload)
        try c.encode(devices, forKey: .devices)
        try c.encode(removing, forKey: .removing)
        try c.encode(rows.map(\.count), forKey: .rowLengths)
        let tables = tableBytes()
        try c.encode(Data(try tables.withUnsafeBytes { (raw) throws(ZlibError) in try Zlib.deflate(raw, level: Self.tableCompression) }),
                     forKey: .tables)
        try c.encode(version, forKey: .version)
    }

    /// zlib level of the saved tables: 3 compresses a part power 16 ring's 1 MB to about 16 KB in under 2 ms.
    static let tableCompression: Int32 = 3

    /// Reads what `encode(to:)` wrote, and the uncompressed tables (`rows`, `lastMoved`) saved before.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        partPower = try c.decode(Int.self, forKey: .partPower)
        replicas = try c.decode(Double.self, forKey: .replicas)
        minPartHours = try c.decode(Int.self, forKey: .minPartHours)
        overload = try c.decode(Double.self, forKey: .overload)
        devices = try c.decode([BuilderDevice?].self, forKey: .devices)
        removing = try c.decode(Set<Int>.self, forKey: .removing)
        version = try c.decode(Int.self, forKey: .version)
        let corrupt = { (why: String) in DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "ring builder tables \(why)")) }
        guard (1...32).contains(partPower) else { throw corrupt("have part power \(partPower)") }
        let partitions = 1 << partPower
        if let tables = try c.decodeIfPresent(Data.self, forKey: .tables) {
            let lengths = try c.decode([Int].self, forKey: .rowLengths)
            guard lengths.allSatisfy({ (0...partitions).contains($0) }), lengths.count <= 64 else { throw corrupt("do not match part power \(partPower)") }
            let entries = lengths.reduce(partitions, +)
            let bytes: [UInt8]
            do {
                bytes = try tables.withUnsafeBytes { (raw) throws(ZlibError) in try Zlib.inflate(raw, format: .zlib, expected: entries * 4) }
            } catch {
                throw corrupt("cannot be read: \(error)")
            }
            let values = Self.int32s(bytes)
            var start = 0
            rows = lengths.map { length in
                defer { start += length }
                return Array(values[start..<(start + length)])
            }
            lastMoved = Array(values[start...])
        } else {
            rows = try c.decode([Data].self, forKey: .rows).map { Self.int32s(Array($0)) }
            lastMoved = Self.int32s(Array(try c.decode(Data.self, forKey: .lastMoved)))
        }
        guard lastMoved.count == partitions, rows.allSatisfy({ $0.count <= partitions }) else { throw corrupt("do not match part power \(partPower)") }
    }

    /// The tables as little-endian bytes: each row, then `lastMoved`.
    private func tableBytes() -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity((rows.reduce(0) { $0 + $1.count } + lastMoved.count) * 4)
        for table in rows + [lastMoved] {
            #if _endian(little)
            table.withUnsafeBytes { bytes += $0 }
            #else
            table.map(\.littleEndian).withUnsafeBytes { bytes += $0 }
            #endif
        }
        return bytes
    }

    private static func int32s(_ bytes: [UInt8]) -> [Int32] {
        var values = [Int32](repeating: 0, count: bytes.count / 4)
        values.withUnsafeMutableBytes { target in bytes.withUnsafeBytes { target.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[..<target.count])) } }
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
