import Foundation
import Processes
import TestSupport
import Testing
@testable import Rings

/// A ring with `servers` × 12 disks, every server its own zone, and a valid synthetic assignment
/// (the builder is separate; these tests are about the file format and lookups).
func sampleRing(partPower: Int = 10, replicas: Double = 3, servers: Int = 3) -> RingData {
    var devices: [RingDevice?] = []
    for server in 0..<servers {
        for disk in 0..<12 {
            devices.append(RingDevice(id: devices.count, region: 1, zone: server + 1, ip: "172.16.1.\(11 + server)", port: 6200,
                                      device: "sd" + String(UnicodeScalar(UInt8(98 + disk))), weight: 2000, meta: disk == 0 ? "ssd, café" : ""))
        }
    }
    devices[5] = nil  // a removed device leaves a hole
    let partitions = 1 << partPower
    let whole = Int(replicas)
    var rows: [[UInt16]] = []
    for replica in 0..<Int(replicas.rounded(.up)) {
        let count = replica < whole ? partitions : Int(Double(partitions) * (replicas - Double(whole)))
        rows.append((0..<count).map { partition in
            var id = (partition * 7 + replica * 12) % devices.count
            if devices[id] == nil { id = (id + 12) % devices.count }
            return UInt16(id)
        })
    }
    return RingData(devices: devices, partShift: 32 - partPower, assignments: rows, version: 7)
}

@Suite struct RingFileTests {
    @Test(arguments: [1, 2]) func roundTrips(version: Int) throws {
        let ring = sampleRing()
        let bytes = try RingFile.encode(ring, version: version, fileName: "object.ring.gz")
        #expect(try RingFile.decode(bytes) == ring)
        #expect(try RingFile.encode(ring, version: version, fileName: "object.ring.gz") == bytes, "the same ring gives the same bytes")
    }

    @Test func fractionalReplicasRoundTripInVersion2() throws {
        let ring = sampleRing(replicas: 2.5)
        #expect(ring.replicaCount == 2.5)
        #expect(ring.assignments.last?.count == 512)
        #expect(try RingFile.decode(RingFile.encode(ring, version: 2, fileName: "object.ring.gz")) == ring)
    }

    @Test func version2EndsWithTheTrailerSwiftSeeksTo() throws {
        let bytes = try RingFile.encode(sampleRing(), version: 2, fileName: "object.ring.gz")
        // 31 bytes from the end: a stored deflate block of 8 bytes (the index offset), a sync marker, the final
        // empty block and the gzip trailer.
        let tail = Array(bytes.suffix(31))
        #expect(Array(tail[0..<5]) == [0x00, 0x08, 0x00, 0xF7, 0xFF])
        #expect(Array(tail[13..<18]) == [0x00, 0x00, 0x00, 0xFF, 0xFF])
        #expect(Array(tail[18..<23]) == [0x01, 0x00, 0x00, 0xFF, 0xFF])
    }

    @Test func lookupsDeduplicateDevicesAndSkipShortRows() {
        var ring = sampleRing(partPower: 2, replicas: 2.5)
        ring.assignments = [[0, 1, 2, 3], [0, 4, 6, 7], [8, 9]]
        #expect(ring.nodes(partition: 0).map(\.id) == [0, 8])
        #expect(ring.nodes(partition: 3).map(\.id) == [3, 7])
        #expect(RingData.path(account: "AUTH_test", container: "c", object: "o") == "/AUTH_test/c/o")
    }

    @Test func pythonJSONMatchesPythonsSpelling() {
        #expect(PythonJSON.repr(2000) == "2000.0")
        #expect(PythonJSON.repr(0.1) == "0.1")
        #expect(PythonJSON.repr(1e16) == "1e+16")
        #expect(PythonJSON.repr(1e-5) == "1e-05")
        #expect(PythonJSON.object([("a", .string("caf\u{e9} \"x\"")), ("b", .array([.int(1), .null]))]).text == #"{"a": "caf\u00e9 \"x\"", "b": [1, null]}"#)
    }
}

/// OpenStack Swift 2.38.3 itself (in the venv `.ci/run` creates; STACKLAB_SWIFT_PYTHON names its python)
/// reads StackLab's ring files and must give the same answers, and writes the same bytes.
@Suite(.enabled(if: ProcessInfo.processInfo.environment["STACKLAB_SWIFT_PYTHON"] != nil, "set STACKLAB_SWIFT_PYTHON to a python with swift==2.38.3"))
struct SwiftInteropTests {
    let python = ProcessInfo.processInfo.environment["STACKLAB_SWIFT_PYTHON"] ?? "python3"
    let helper = Fixtures.path("swift_interop.py")

    @Test(arguments: [(1, 3.0), (2, 3.0), (2, 2.5)])
    func swiftGivesTheSameNodesForAHundredThousandPaths(version: Int, replicas: Double) throws {
        let scratch = try Scratch("ring-interop")
        let ring = sampleRing(partPower: 14, replicas: replicas, servers: 4)
        try scratch.write("object.ring.gz", bytes: try RingFile.encode(ring, version: version, fileName: "object.ring.gz"))
        let paths = (0..<100_000).map { RingData.path(account: "AUTH_\($0 % 1000)", container: "c\($0 % 37)", object: "o\($0)") }
        try scratch.write("paths.txt", paths.joined(separator: "\n") + "\n")
        let output = try Command.check([python, helper, "nodes", scratch.path, "object", scratch.file("paths.txt"), "stacklab"], stderr: .apart)
        let theirs = output.split(separator: "\n").map(String.init)
        let ours = paths.map { path in
            let partition = ring.partition(path: path, hashSuffix: "stacklab")
            return "\(partition) " + ring.nodes(partition: partition).map { String($0.id) }.joined(separator: ",")
        }
        #expect(theirs.count == 100_000)
        #expect(theirs == ours)
    }

    @Test(arguments: [3.0, 2.5])
    func swiftWritesTheSameBytes(replicas: Double) throws {
        let scratch = try Scratch("ring-bytes")
        let ring = sampleRing(partPower: 10, replicas: replicas)
        let spec: [String: Any] = [
            "part_shift": ring.partShift, "version": ring.version as Any,
            "assignments": ring.assignments.map { $0.map(Int.init) },
            "devs": ring.devices.map { device -> Any in
                guard let d = device else { return NSNull() }
                return ["id": d.id, "region": d.region, "zone": d.zone, "ip": d.ip, "port": d.port, "replication_ip": d.replicationIP,
                        "replication_port": d.replicationPort, "device": d.device, "weight": d.weight, "meta": d.meta]
            },
        ]
        try scratch.write("spec.json", bytes: Array(try JSONSerialization.data(withJSONObject: spec)))
        let whole = replicas == replicas.rounded()
        try Command.check([python, helper, "save", scratch.file("spec.json"), whole ? scratch.file("v1/object.ring.gz") : "-", scratch.file("v2/object.ring.gz")]
                          .map { $0 }, creating: [scratch.file("v1"), scratch.file("v2")])
        let theirsV2 = try [UInt8](Data(contentsOf: URL(fileURLWithPath: scratch.file("v2/object.ring.gz"))))
        #expect(try RingFile.encode(ring, version: 2, fileName: "object.ring.gz") == theirsV2)
        if whole {
            let theirsV1 = try [UInt8](Data(contentsOf: URL(fileURLWithPath: scratch.file("v1/object.ring.gz"))))
            #expect(try RingFile.encode(ring, version: 1, fileName: "object.ring.gz") == theirsV1)
        }
    }
}

extension Command {
    /// Creates `directories` first, then checks the command.
    @discardableResult
    static func check(_ arguments: [String], creating directories: [String]) throws -> String {
        for directory in directories { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
        return try check(arguments)
    }
}

/// The interop tests parse the helper's stdout; its stderr (a library's deprecation warnings) stays apart.
@Suite struct CommandStreamsTests {
    @Test func stderrKeptApartNeverReachesTheParsedOutput() throws {
        let script = "echo out; echo 'warning: deprecated' >&2"
        let apart = try Command.run(["sh", "-c", script], stderr: .apart)
        #expect(apart.output == "out\n" && apart.errors == "warning: deprecated\n")
        let together = try Command.run(["sh", "-c", script])
        #expect(together.output == "out\nwarning: deprecated\n" && together.errors.isEmpty)
        let failure = #expect(throws: Command.Failure.self) { try Command.check(["sh", "-c", "echo 'the reason' >&2; exit 3"], stderr: .apart) }
        #expect(failure?.description.hasSuffix("exited 3: the reason\n") == true)
    }
}
