import Foundation
import Zlib

/// Swift's ring file formats: version 1 (JSON header and native-order uint16 tables) and version 2 (sectioned,
/// indexed, network-order tables). Both are read by Swift 2.38's `RingData.load` and `Ring`.
public enum RingFile {
    /// Swift's default gzip mtime, so the same ring always gives the same bytes (checksums compare rings).
    public static let defaultMTime: UInt32 = 1_300_507_380

    /// Encodes `ring` as a ring file named `fileName` (e.g. `object.ring.gz`).
    public static func encode(_ ring: RingData, version: Int = 2, fileName: String, mtime: UInt32 = defaultMTime) throws(RingFileError) -> [UInt8] {
        guard ring.devices.count <= Int(UInt16.max) else {
            throw RingFileError("a ring with \(ring.devices.count) devices needs 4-byte device ids, which StackLab does not write yet")
        }
        let writer = try RingStreamWriter(fileName: fileName, mtime: mtime)
        let devices = PythonJSON.array(ring.devices.map { $0?.json ?? .null })
        switch version {
        case 1:
            try writer.writeMagic(version: 1)
            var header: [(String, PythonJSON)] = [("byteorder", .string("little")), ("devs", devices), ("part_shift", .int(ring.partShift)),
                                                  ("replica_count", .int(ring.assignments.count))]
            if let version = ring.version { header.append(("version", .int(version))) }
            let json = Array(PythonJSON.object(header).text.utf8)
            try writer.write(withUnsafeBytes(of: UInt32(json.count).bigEndian, Array.init))
            try writer.write(json)
            for row in ring.assignments {
                try writer.write(row.withUnsafeBytes { raw in Array(raw) })  // native (little-endian) order, as v1 records
            }
        case 2:
            try writer.writeMagic(version: 2)
            let metadata = PythonJSON.object([("dev_id_bytes", .int(2)), ("part_shift", .int(ring.partShift)),
                                              ("replica_count", .double(ring.replicaCount)),
                                              ("version", ring.version.map { .int($0) } ?? .null)])
            try writer.beginSection("swift/ring/metadata")
            try writer.writeBlob(Array(metadata.text.utf8))
            try writer.endSection()
            try writer.beginSection("swift/ring/devices")
            try writer.writeBlob(Array(devices.text.utf8))
            try writer.endSection()
            try writer.beginSection("swift/ring/assignments")
            try writer.writeSize(ring.assignments.reduce(0) { $0 + $1.count } * 2)
            for row in ring.assignments {
                try writer.write(row.map { $0.bigEndian }.withUnsafeBytes { raw in Array(raw) })
            }
            try writer.endSection()
            try writer.writeIndex()
        default:
            throw RingFileError("ring format version \(version) is not 1 or 2")
        }
        return try writer.finish()
    }

    /// Decodes a v1 or v2 ring file.
    public static func decode(_ bytes: [UInt8]) throws(RingFileError) -> RingData {
        var reader = ByteReader(try gunzip(bytes))
        guard try reader.take(4) == Array("R1NG".utf8) else { throw RingFileError("not a ring file (bad magic)") }
        let version = try reader.integer(2)
        switch version {
        case 1:
            let header = try json(reader.take(try reader.integer(4)))
            let partShift = try int(header["part_shift"])
            let replicas = try int(header["replica_count"])
            let little = (header["byteorder"] as? String ?? "little") == "little"
            var rows: [[UInt16]] = []
            for _ in 0..<replicas {
                let raw = try reader.take((1 << (32 - partShift)) * 2)
                rows.append(stride(from: 0, to: raw.count, by: 2).map { little ? UInt16(raw[$0]) | UInt16(raw[$0 + 1]) << 8 : UInt16(raw[$0]) << 8 | UInt16(raw[$0 + 1]) })
            }
            return RingData(devices: try devices(header["devs"]), partShift: partShift, assignments: rows, version: header["version"] as? Int)
        case 2:
            let metadata = try json(reader.take(try reader.integer(8)))
            let deviceList = try? JSONSerialization.jsonObject(with: Data(reader.take(try reader.integer(8))))
            let partShift = try int(metadata["part_shift"])
            guard try int(metadata["dev_id_bytes"]) == 2 else { throw RingFileError("only 2-byte device ids are supported") }
            let partitions = 1 << (32 - partShift)
            let total = try reader.integer(8) / 2
            var rows: [[UInt16]] = []
            var remaining = total
            while remaining > 0 {
                let count = min(partitions, remaining)
                let raw = try reader.take(count * 2)
                rows.append(stride(from: 0, to: raw.count, by: 2).map { UInt16(raw[$0]) << 8 | UInt16(raw[$0 + 1]) })
                remaining -= count
            }
            return RingData(devices: try devices(deviceList), partShift: partShift, assignments: rows, version: metadata["version"] as? Int)
        default:
            throw RingFileError("unsupported ring format version \(version)")
        }
    }

    private static func json(_ bytes: [UInt8]) throws(RingFileError) -> [String: Any] {
        guard let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else {
            throw RingFileError("ring header is not a JSON object")
        }
        return object
    }

    private static func int(_ value: Any?) throws(RingFileError) -> Int {
        guard let number = value as? NSNumber else { throw RingFileError("ring header lacks a number") }
        return number.intValue
    }

    private static func devices(_ value: Any?) throws(RingFileError) -> [RingDevice?] {
        guard let list = value as? [Any] else { throw RingFileError("ring devices are not a list") }
        return list.map { item in
            guard let dev = item as? [String: Any] else { return nil }
            return RingDevice(
                id: (dev["id"] as? NSNumber)?.intValue ?? 0, region: (dev["region"] as? NSNumber)?.intValue ?? 1,
                zone: (dev["zone"] as? NSNumber)?.intValue ?? 0, ip: dev["ip"] as? String ?? "", port: (dev["port"] as? NSNumber)?.intValue ?? 0,
                device: dev["device"] as? String ?? "", weight: (dev["weight"] as? NSNumber)?.doubleValue ?? 0, meta: dev["meta"] as? String ?? "",
                replicationIP: dev["replication_ip"] as? String, replicationPort: (dev["replication_port"] as? NSNumber)?.intValue)
        }
    }

    /// Inflates a whole gzip file.
    static func gunzip(_ bytes: [UInt8]) throws(RingFileError) -> [UInt8] {
        do {
            return try bytes.withUnsafeBytes { (raw) throws(ZlibError) in try Zlib.inflate(raw, format: .gzip) }
        } catch {
            throw RingFileError("ring file is not valid gzip: \(error)")
        }
    }
}

/// Big-endian reads over a byte array.
struct ByteReader {
    private let bytes: [UInt8]
    private var offset = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    mutating func take(_ count: Int) throws(RingFileError) -> [UInt8] {
        guard count >= 0, offset + count <= bytes.count else { throw RingFileError("ring file is truncated") }
        defer { offset += count }
        return Array(bytes[offset..<offset + count])
    }

    mutating func integer(_ width: Int) throws(RingFileError) -> Int {
        try take(width).reduce(0) { $0 << 8 | Int($1) }
    }
}
