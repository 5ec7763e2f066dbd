import Foundation
import Processes
import TestSupport
import Testing
@testable import Rings

/// A builder over `servers` servers of `disks` disks, server s in zone s % zones, every disk of weight `weight`.
func makeBuilder(partPower: Int = 8, replicas: Double = 3, minPartHours: Int = 1, servers: Int = 3, zones: Int = 3,
                 disks: Int = 4, weight: Double = 100) throws -> RingBuilder {
    var builder = try RingBuilder(partPower: partPower, replicas: replicas, minPartHours: minPartHours)
    for server in 0..<servers {
        for disk in 0..<disks {
            try builder.add(BuilderDevice(region: 1, zone: server % zones + 1, ip: "10.0.0.\(server + 1)", port: 6200, device: "d\(disk)", weight: weight))
        }
    }
    return builder
}

@Suite struct RingBuilderTests {
    @Test func anInitialBuildIsBalancedAndFullyDispersed() throws {
        var builder = try makeBuilder()
        let report = try builder.rebalance(hour: 0)
        #expect(report.dispersion == 0)
        #expect(report.warnings.isEmpty)
        #expect(report.balance < 1.6)
        #expect(report.replicasMoved == 3 * 256)
        // Every partition has its three replicas in three different zones.
        for partition in 0..<256 {
            let zones = Set(builder.ring().nodes(partition: partition).map(\.zone))
            #expect(zones.count == 3)
        }
    }

    @Test func aSecondRebalanceWithNothingChangedMovesNothing() throws {
        var builder = try makeBuilder()
        _ = try builder.rebalance(hour: 0)
        let ring = builder.ring()
        let report = try builder.rebalance(hour: 100)
        #expect(report.replicasMoved == 0)
        #expect(builder.ring().assignments == ring.assignments)
    }

    @Test func removingADeviceDrainsIt() throws {
        var builder = try makeBuilder()
        _ = try builder.rebalance(hour: 0)
        builder.remove(0)
        let report = try builder.rebalance(hour: 0)  // removal ignores min_part_hours
        #expect(report.removedDevices == 1)
        #expect(builder.devices[0] == nil)
        #expect(builder.ring().assignments.allSatisfy { !$0.contains(0) })
        #expect(report.dispersion == 0)
        #expect(report.replicasMoved <= 256 / 4 + 8, "only the removed device's partitions (and a little rebalancing) move")
    }

    @Test func minPartHoursHoldsMovesBack() throws {
        var builder = try makeBuilder(minPartHours: 24)
        _ = try builder.rebalance(hour: 0)
        for disk in 0..<4 {  // a fourth server in its own zone
            try builder.add(BuilderDevice(region: 1, zone: 4, ip: "10.0.0.4", port: 6200, device: "d\(disk)", weight: 100))
        }
        let early = try builder.rebalance(hour: 1)
        #expect(early.replicasMoved == 0, "every partition moved at hour 0 and must rest 24 hours")
        #expect(early.heldBack > 0)
        let later = try builder.rebalance(hour: 30)
        #expect(later.replicasMoved > 0)
        #expect(later.partitionsMoved == later.replicasMoved, "at most one replica of a partition moves per rebalance")
        #expect(later.dispersion == 0)
    }

    @Test func weightZeroDrainsGraduallyAndRespectsMinPartHours() throws {
        var builder = try makeBuilder(minPartHours: 1)
        _ = try builder.rebalance(hour: 0)
        builder.setWeight(5, 0)
        let report = try builder.rebalance(hour: 10)
        #expect(builder.devices[5]?.parts == 0)
        #expect(report.balance < 999)
        #expect(builder.devices[5] != nil, "a zero-weight device stays in the ring until it is removed")
    }

    @Test func fractionalReplicas() throws {
        var builder = try makeBuilder(replicas: 2.5)
        let report = try builder.rebalance(hour: 0)
        let ring = builder.ring()
        #expect(ring.replicaCount == 2.5)
        #expect(ring.assignments.map(\.count) == [256, 256, 128])
        #expect(report.dispersion == 0)
        #expect(ring.nodes(partition: 0).count == 3)
        #expect(ring.nodes(partition: 200).count == 2)
        // And back to 3: the missing replicas are placed, nothing else moves.
        try builder.setReplicas(3)
        let grown = try builder.rebalance(hour: 100)
        #expect(builder.ring().assignments.map(\.count) == [256, 256, 256])
        #expect(grown.dispersion == 0)
    }

    @Test func aTopologyTooSmallForFullDispersionGetsTheBestSpreadAndSaysSo() throws {
        // Two zones for three replicas: one zone must hold two replicas of each partition, on different servers.
        var builder = try makeBuilder(servers: 4, zones: 2)
        let report = try builder.rebalance(hour: 0)
        #expect(report.dispersion == 0, "the caps are what the topology allows, and they are met")
        #expect(report.warnings == ["3.0 replicas over 2 zones: some zones hold more than one replica of a partition"])
        for partition in 0..<256 {
            let nodes = builder.ring().nodes(partition: partition)
            #expect(Set(nodes.map(\.zone)).count == 2)
            #expect(Set(nodes.map(\.ip)).count == 3)
        }
        // Fewer devices with weight than replicas cannot be built at all.
        var tiny = try RingBuilder(partPower: 4, replicas: 3, minPartHours: 1)
        try tiny.add(BuilderDevice(region: 1, zone: 1, ip: "10.0.0.1", port: 6200, device: "d0", weight: 1))
        #expect(throws: RingBuilder.Failure(description: "3.0 replicas need at least 3 devices with weight; the ring has 1")) {
            _ = try tiny.rebalance(hour: 0)
        }
    }

    @Test func deviceIDsCannotOverflowTheRingFormat() throws {
        var builder = try RingBuilder(partPower: 4, replicas: 1, minPartHours: 1)
        for index in 0..<65_535 {
            try builder.add(BuilderDevice(region: 1, zone: 1, ip: "10.0.0.1", port: 6200, device: "d\(index)", weight: 1))
        }
        #expect(throws: RingBuilder.Failure(description: "a ring holds at most 65535 devices")) {
            try builder.add(BuilderDevice(region: 1, zone: 1, ip: "10.0.0.1", port: 6200, device: "one-too-many", weight: 1))
        }
    }

    @Test func badParametersAreRefused() {
        #expect(throws: RingBuilder.Failure.self) { try RingBuilder(partPower: 33, replicas: 3, minPartHours: 1) }
        #expect(throws: RingBuilder.Failure.self) { try RingBuilder(partPower: 10, replicas: 0.5, minPartHours: 1) }
    }

    @Test(arguments: [1, 4]) func addingCapacityMovesCloseToTheMinimum(zone: Int) throws {
        var builder = try makeBuilder(partPower: 10, servers: 6, zones: 3)
        _ = try builder.rebalance(hour: 0)
        for disk in 0..<4 { try builder.add(BuilderDevice(region: 1, zone: zone, ip: "10.0.0.7", port: 6200, device: "d\(disk)", weight: 100)) }
        // The least that must move: what the new devices are entitled to (weight share, capped by dispersion:
        // a server added to a zone that already holds one replica of every partition only shares that zone's part).
        let topology = RingTopology(devices: builder.devices)
        let targets = RingBuilder.targets(devices: builder.devices, topology: topology, rowLengths: builder.rowLengths,
                                          caps: (0...3).map { topology.caps(replicas: $0) })
        let minimum = (24..<28).map { targets[$0] }.reduce(0, +)
        let report = try builder.rebalance(hour: 10)
        #expect(report.replicasMoved >= minimum)
        #expect(Double(report.replicasMoved) <= Double(minimum) * 1.01 + 2)
        #expect(report.dispersion == 0)
    }
}

@Suite(.enabled(if: ProcessInfo.processInfo.environment["STACKLAB_SWIFT_PYTHON"] != nil, "set STACKLAB_SWIFT_PYTHON to a python with swift==2.38.3"))
struct BuiltRingInteropTests {
    @Test func aBuiltRingLoadsInSwiftWithTheSameNodes() throws {
        var builder = try makeBuilder(partPower: 12, replicas: 2.5, servers: 5, zones: 5)
        _ = try builder.rebalance(hour: 0)
        let ring = builder.ring()
        let scratch = try Scratch("built-ring")
        try scratch.write("container.ring.gz", bytes: try RingFile.encode(ring, version: 2, fileName: "container.ring.gz"))
        let paths = (0..<20_000).map { RingData.path(account: "AUTH_\($0 % 100)", container: "c\($0)", object: "o") }
        try scratch.write("paths.txt", paths.joined(separator: "\n") + "\n")
        let python = ProcessInfo.processInfo.environment["STACKLAB_SWIFT_PYTHON"]!
        let output = try Command.check([python, Fixtures.path("swift_interop.py"), "nodes", scratch.path, "container", scratch.file("paths.txt"), "s3cr3t"], stderr: .apart)
        let ours = paths.map { path in
            let partition = ring.partition(path: path, hashSuffix: "s3cr3t")
            return "\(partition) " + ring.nodes(partition: partition).map { String($0.id) }.joined(separator: ",")
        }
        #expect(output.split(separator: "\n").map(String.init) == ours)
    }
}

/// The builder state the state store keeps: the assignment tables compressed, and states saved before (raw tables)
/// still read.
@Suite struct RingBuilderStateTests {
    /// A rebalanced builder with a short row (fractional replicas) and partitions that moved at different hours.
    static func settledBuilder() throws -> RingBuilder {
        var builder = try makeBuilder(partPower: 12, replicas: 2.5, minPartHours: 24, servers: 4, zones: 4)
        _ = try builder.rebalance(hour: 10)
        try builder.add(BuilderDevice(region: 1, zone: 5, ip: "10.0.0.5", port: 6200, device: "d0", weight: 100))
        _ = try builder.rebalance(hour: 40)
        return builder
    }

    static func json(_ data: Data) throws -> [String: Any] { try #require(JSONSerialization.jsonObject(with: data) as? [String: Any]) }

    @Test func theTablesAreSavedCompressedAndReadBackExactly() throws {
        let builder = try Self.settledBuilder()
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys  // as the state store writes it
        let encoded = try encoder.encode(builder)
        let object = try Self.json(encoded)
        #expect(object["rows"] == nil && object["lastMoved"] == nil)
        #expect(object["rowLengths"] as? [Int] == [4096, 4096, 2048])
        let raw = (4096 + 4096 + 2048 + 4096) * 4
        #expect(encoded.count < raw / 4, "\(encoded.count) bytes of JSON for \(raw) bytes of tables")
        let decoded = try JSONDecoder().decode(RingBuilder.self, from: encoded)
        #expect(decoded.rows == builder.rows)
        #expect(decoded.lastMoved == builder.lastMoved)
        #expect(decoded.devices == builder.devices)
        #expect(decoded.version == builder.version && decoded.replicas == 2.5)
        #expect(try encoder.encode(decoded) == encoded, "equal states are equal bytes")
    }

    @Test func aStateSavedWithRawTablesIsStillRead() throws {
        let builder = try Self.settledBuilder()
        var object = try Self.json(try JSONEncoder().encode(builder))
        let bytes = { (values: [Int32]) in values.withUnsafeBytes { Data($0) }.base64EncodedString() }
        object["rowLengths"] = nil
        object["tables"] = nil
        object["rows"] = builder.rows.map(bytes)
        object["lastMoved"] = bytes(builder.lastMoved)
        let decoded = try JSONDecoder().decode(RingBuilder.self, from: try JSONSerialization.data(withJSONObject: object))
        #expect(decoded.rows == builder.rows)
        #expect(decoded.lastMoved == builder.lastMoved)
    }

    @Test func damagedTablesAreRefusedWithWhy() throws {
        let object = try Self.json(try JSONEncoder().encode(try Self.settledBuilder()))
        func refusal(_ change: (inout [String: Any]) -> Void) throws -> String {
            var damaged = object
            change(&damaged)
            do {
                _ = try JSONDecoder().decode(RingBuilder.self, from: try JSONSerialization.data(withJSONObject: damaged))
                return "read"
            } catch let DecodingError.dataCorrupted(context) {
                return context.debugDescription
            }
        }
        let encodedTables = try #require(object["tables"] as? String)
        let tables = try #require(Data(base64Encoded: encodedTables))
        #expect(try refusal { $0["tables"] = tables.prefix(tables.count / 2).base64EncodedString() }.contains("cannot be read"))
        #expect(try refusal { $0["tables"] = Data("not zlib".utf8).base64EncodedString() }.contains("cannot be read"))
        // Fewer entries declared than the stream holds: refused before it is inflated past what was declared.
        #expect(try refusal { $0["rowLengths"] = [4096, 4096] }.contains("more than"))
        #expect(try refusal { $0["rowLengths"] = [4096, 4096, 8192] }.contains("do not match part power"))
        #expect(try refusal { $0["partPower"] = 40 }.contains("part power 40"))
    }
}
