import Libvirt
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Simulated nodes: libvirt's test driver, started from a host description generated from the Node spec and
/// written back after every change (the test driver forgets everything when its connection closes).
public enum SimulatedHost {
    /// A host with `cpus` CPU threads and `memoryKiB` of memory and nothing on it.
    public static func emptyHost(cpus: Int, memoryKiB: UInt64) -> String {
        """
        <node>
          <cpu>
            <mhz>2400</mhz>
            <model>x86_64</model>
            <nodes>1</nodes>
            <sockets>1</sockets>
            <cores>\(cpus)</cores>
            <threads>1</threads>
          </cpu>
          <memory>\(memoryKiB)</memory>
        </node>

        """
    }

    private static let testNamespace = "http://libvirt.org/schemas/domain/test/1.0"

    /// Everything on the connection as a host description the test driver will load again: each domain's
    /// persistent XML (with the test driver's run state for domains that are not running), networks, and
    /// pools with their volumes.
    public static func snapshot(of connection: Connection, cpus: Int, memoryKiB: UInt64) throws(LibvirtError) -> String {
        var body = ""
        for domain in try connection.domains().sorted(by: { $0.name < $1.name }) {
            var xml = try domain.persistentXML()
            let state = try domain.info().state
            if state != .running {
                let code = state == .paused ? 3 : 5
                xml = xml.replacingOccurrences(of: "<domain type='test'", with: "<domain type='test' xmlns:test='\(testNamespace)'")
                xml = xml.replacingOccurrences(of: "</domain>", with: "  <test:runstate>\(code)</test:runstate>\n</domain>")
            }
            body += xml
        }
        for network in try connection.networks().sorted(by: { $0.name < $1.name }) {
            body += try network.xml()
        }
        for pool in try connection.pools().sorted(by: { $0.name < $1.name }) {
            var xml = try pool.xml()
            var volumes = ""
            for volume in try pool.volumes().sorted(by: { $0.name < $1.name }) { volumes += try volume.xml() }
            xml = xml.replacingOccurrences(of: "</pool>", with: volumes + "</pool>")
            body += xml
        }
        return emptyHost(cpus: cpus, memoryKiB: memoryKiB).replacingOccurrences(of: "</node>", with: body + "</node>")
    }

    /// Writes `xml` to `path` atomically (a crash leaves the old file or the new one, never half of one).
    public static func write(_ xml: String, to path: String) throws {
        try write(Data(xml.utf8), to: path)
    }

    /// Removes temporary files (`*.tmp-<pid>`) that a crashed write left under the simulated hosts in `stateDirectory`:
    /// those whose writer is gone, and any older than ten minutes (a write takes milliseconds; a reused PID cannot
    /// keep a file forever). Returns the paths removed.
    @discardableResult
    public static func removeStaleTemporaries(stateDirectory: String) -> [String] {
        var removed: [String] = []
        guard let walker = FileManager.default.enumerator(atPath: "\(stateDirectory)/nodes") else { return [] }
        let now = Date()
        while let relative = walker.nextObject() as? String {
            guard let marker = relative.range(of: ".tmp-", options: .backwards), let pid = Int32(relative[marker.upperBound...]) else { continue }
            let path = "\(stateDirectory)/nodes/\(relative)"
            let modified = (try? FileManager.default.attributesOfItem(atPath: path)[.modificationDate] as? Date) ?? .distantPast
            let writerGone = kill(pid, 0) != 0 && errno == ESRCH
            if writerGone || now.timeIntervalSince(modified) > 600, unlink(path) == 0 { removed.append(path) }
        }
        return removed
    }

    /// Writes `data` to `path` atomically.
    public static func write(_ data: Data, to path: String) throws {
        let url = URL(fileURLWithPath: path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        let temporary = path + ".tmp-\(getpid())"
        try data.write(to: URL(fileURLWithPath: temporary))
        guard rename(temporary, path) == 0 else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path])
        }
    }
}
