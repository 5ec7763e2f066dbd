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
    /// With `cache`, the XML of domains and volumes that no change touched since the last snapshot is reused: a node's
    /// snapshot after one change then costs that change, not a dump of everything on the node.
    public static func snapshot(of connection: Connection, cpus: Int, memoryKiB: UInt64, cache: SnapshotCache? = nil) throws(LibvirtError) -> String {
        var body = ""
        var domains: [String: String] = [:]
        for domain in try connection.domains().sorted(by: { $0.name < $1.name }) {
            if let kept = cache?.domain(domain.name) {
                domains[domain.name] = kept
                body += kept
                continue
            }
            var xml = try domain.persistentXML()
            let state = try domain.info().state
            if state != .running {
                let code = state == .paused ? 3 : 5
                xml = xml.replacingOccurrences(of: "<domain type='test'", with: "<domain type='test' xmlns:test='\(testNamespace)'")
                xml = xml.replacingOccurrences(of: "</domain>", with: "  <test:runstate>\(code)</test:runstate>\n</domain>")
            }
            domains[domain.name] = xml
            body += xml
        }
        cache?.keep(domains: domains)
        for network in try connection.networks().sorted(by: { $0.name < $1.name }) {
            body += try network.xml()
        }
        for pool in try connection.pools().sorted(by: { $0.name < $1.name }) {
            var xml = try pool.xml()
            var volumes = ""
            for volume in try pool.volumes().sorted(by: { $0.name < $1.name }) {
                let key = "\(pool.name)/\(volume.name)"
                if let kept = cache?.volume(key) {
                    volumes += kept
                } else {
                    let xml = try volume.xml()
                    cache?.keep(volume: xml, key: key)
                    volumes += xml
                }
            }
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
            if relative.hasSuffix(".observed.tmp") {
                // A saved observation's temporary (one per node): left by a killed save, replaced by the node's next one;
                // this removes one whose node is not saved again (gone from the manifests).
                let path = "\(stateDirectory)/nodes/\(relative)"
                let modified = (try? FileManager.default.attributesOfItem(atPath: path)[.modificationDate] as? Date) ?? .distantPast
                if now.timeIntervalSince(modified) > 600, unlink(path) == 0 { removed.append(path) }
                continue
            }
            guard let marker = relative.range(of: ".tmp-", options: .backwards), let pid = Int32(relative[marker.upperBound...]) else { continue }
            let path = "\(stateDirectory)/nodes/\(relative)"
            let modified = (try? FileManager.default.attributesOfItem(atPath: path)[.modificationDate] as? Date) ?? .distantPast
            let writerGone = kill(pid, 0) != 0 && errno == ESRCH
            if writerGone || now.timeIntervalSince(modified) > 600, unlink(path) == 0 { removed.append(path) }
        }
        return removed
    }

    /// Writes `data` to `path` atomically: a temporary file renamed over it, so a crashed process leaves the old
    /// file or the new one, never half of one. Without fsync: a simulated node lives in the page cache, which a
    /// process crash does not lose (it costs a disk flush per file, most of a large apply's time otherwise).
    /// `temporary` names the file written aside (default `<path>.tmp-<pid>`, which the sweep of crashed writes knows).
    public static func write(_ data: Data, to path: String, temporary: String? = nil) throws {
        let temporary = temporary ?? path + ".tmp-\(getpid())"
        var descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        if descriptor < 0 && errno == ENOENT {
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        }
        guard descriptor >= 0 else { throw WriteError(path: path, reason: String(cString: strerror(errno))) }
        let written = data.withUnsafeBytes { buffer -> Bool in
            var offset = 0
            while offset < buffer.count {
                let count = Glibc.write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                if count < 0 && errno == EINTR { continue }
                guard count > 0 else { return false }
                offset += count
            }
            return true
        }
        let reason = written ? nil : String(cString: strerror(errno))
        guard close(descriptor) == 0, written else {
            unlink(temporary)
            throw WriteError(path: path, reason: reason ?? String(cString: strerror(errno)))
        }
        guard rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw WriteError(path: path, reason: reason)
        }
    }

    /// A file that could not be written.
    public struct WriteError: Error, CustomStringConvertible {
        public var path: String
        public var reason: String
        public var description: String { "cannot write \(path): \(reason)" }
    }
}

/// The XML of a simulated node's domains (with their run state) and volumes as last saved, by name, for
/// `SimulatedHost.snapshot`. Whoever changes a domain or a volume forgets it here first.
///
/// `@unchecked Sendable`: every access goes through `lock`.
public final class SnapshotCache: @unchecked Sendable {
    private var domains: [String: String] = [:]
    /// `<pool>/<volume>` → XML.
    private var volumes: [String: String] = [:]
    private let lock = NSLock()

    /// An empty cache.
    public init() {}

    func domain(_ name: String) -> String? { lock.withLock { domains[name] } }
    func keep(domains kept: [String: String]) { lock.withLock { domains = kept } }
    func volume(_ key: String) -> String? { lock.withLock { volumes[key] } }
    func keep(volume xml: String, key: String) { lock.withLock { volumes[key] = xml } }

    /// Forgets domain `name` and the volumes whose names start with `volumePrefix`.
    public func forget(domain name: String, volumePrefix: String? = nil) {
        lock.withLock {
            domains[name] = nil
            if let volumePrefix { volumes = volumes.filter { !($0.key.split(separator: "/", maxSplits: 1).last ?? "").hasPrefix(volumePrefix) } }
        }
    }

    /// Forgets everything (a new connection).
    public func forgetAll() {
        lock.withLock {
            domains = [:]
            volumes = [:]
        }
    }
}
