import Drivers
import Foundation
import Libvirt
import Manifests
import Planning
#if canImport(Glibc)
import Glibc
#endif

/// The machine under a simulated node: libvirt's test driver, started from a host file generated from the Node
/// spec and written back after every change (the test driver forgets everything when its connection closes), and a
/// file tree beside the host file (`<state>/nodes/<region>/<name>/`) holding the node's rings, DHCP files and ruleset.
///
/// `@unchecked Sendable`: `state` guards every mutable field; changes come one at a time under the node's lock.
public final class SimulatedMachine: NodeMachine, @unchecked Sendable {
    let node: Address
    /// `<state>/nodes/<region>/<name>.xml`.
    public let hostFile: String
    /// The node's files, without a trailing slash (the host file without `.xml`).
    let localRoot: String
    /// The size a saved host has (0: as the host file says, for a node known only by its host file).
    private let cpus: Int
    private let memoryKiB: UInt64
    public let uri: String
    /// An empty host file outside a state directory this process may not write (see `init`), removed with the machine.
    private let temporaryHost: String?
    /// What the last save of the host file wrote, reused for what no change touched since.
    let snapshots = SnapshotCache()
    private let state = NSLock()
    /// Whether the connection holds changes its host file does not (writes deferred until `flush`).
    private var unsaved = false
    /// Whether the change being made holds its writes back: its files then wait in `heldFiles` for the save, so nothing
    /// of a held change is on disk before its batch is journaled started.
    private var holding = false
    /// Files written (content) or removed (nil) at the next save, by absolute path.
    private var heldFiles: [String: Data?] = [:]
    /// The host file as it was when the open connection read it, and as it was just before the next one is opened.
    private var openedStamp: FileStamp?
    private var connectingStamp: FileStamp?

    /// The machine of the simulated node at `endpoint` under `stateDirectory`, from its host file, or an empty host made
    /// from its spec (written now when the directory may be written).
    init(endpoint: NodeEndpoint, stateDirectory: String) throws(DriverError) {
        node = endpoint.address
        cpus = endpoint.cpus
        memoryKiB = endpoint.memoryKiB
        hostFile = SimulatedNode.hostFile(stateDirectory: Self.standardized(stateDirectory), node: endpoint.address)
        localRoot = String(hostFile.dropLast(".xml".count))
        var source = hostFile
        if !FileManager.default.fileExists(atPath: hostFile) {
            let empty = SimulatedHost.emptyHost(cpus: cpus, memoryKiB: memoryKiB)
            do {
                try SimulatedHost.write(empty, to: hostFile)
            } catch {
                // A state directory this process may not write (a read-only plan): the new node is empty, so it is
                // observed from an empty host elsewhere; applying to it needs write access and fails then.
                source = NSTemporaryDirectory() + "/stacklab-empty-host-\(getpid())-\(UUID().uuidString).xml"
                do {
                    try SimulatedHost.write(empty, to: source)
                } catch {
                    throw DriverError(node: endpoint.address, message: "cannot create simulated host \(hostFile): \(error)", isTransient: false)
                }
            }
        }
        uri = "test://" + source
        temporaryHost = source == hostFile ? nil : source
    }

    deinit {
        if let temporaryHost { unlink(temporaryHost) }
    }

    /// `directory` as an absolute path without `.`, `..` or doubled slashes (cheap when it already is one).
    static func standardized(_ directory: String) -> String {
        let parts = directory.split(separator: "/", omittingEmptySubsequences: false)
        if directory.hasPrefix("/"), !parts.dropFirst().contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) { return directory }
        return URL(fileURLWithPath: directory).standardizedFileURL.path
    }

    /// Where the node keeps its Swift ring files (`/etc/swift` on a real one).
    private var ringDirectory: String { localRoot + "/etc/swift" }

    /// Whether the connection holds changes the files do not (the node is then what the connection says).
    var holdsUnsavedChanges: Bool { state.withLock { unsaved || !heldFiles.isEmpty } }

    // MARK: Connection

    /// The test driver reads its host file once, when it connects: a host file replaced by someone else (another
    /// process's apply, an edit) is connected to again, so the node is never observed stale.
    public func connectionIsCurrent() -> Bool {
        let stamp = FileStamp(path: hostFile)
        return state.withLock { stamp == openedStamp }
    }

    public func willConnect() throws(LibvirtError) {
        let stamp = FileStamp(path: hostFile)
        state.withLock { connectingStamp = stamp }
        snapshots.forgetAll()  // another connection: nothing saved from the last one is known to hold
    }

    public func connected() {
        state.withLock { openedStamp = connectingStamp }
    }

    /// Held-back changes go with the connection, as a crash would take them: they were never journaled done, and the
    /// next connection starts from the saved host.
    public func disconnect() {
        state.withLock {
            unsaved = false
            heldFiles = [:]
            openedStamp = nil
        }
        snapshots.forgetAll()
    }

    // MARK: Changes

    public func willChange(domain: String, volumePrefixes: [String], deferring: Bool) {
        snapshots.forget(domain: domain)
        for prefix in volumePrefixes { snapshots.forget(domain: domain, volumePrefix: prefix) }
        state.withLock { holding = deferring }
    }

    public func didChange(on connection: Connection, succeeded: Bool) throws(DriverError) {
        let deferred = state.withLock {
            defer { holding = false }
            if succeeded && holding { unsaved = true }
            return holding
        }
        if succeeded && !deferred { try save(connection) }
    }

    /// Saves every change held back since the last save.
    func flush(_ connection: Connection) throws(DriverError) {
        guard state.withLock({ unsaved }) else { return }
        try save(connection)
    }

    /// Writes the held files and the connection's state to the host file.
    private func save(_ connection: Connection) throws(DriverError) {
        let files = state.withLock {
            unsaved = false
            defer { heldFiles = [:] }
            return heldFiles
        }
        do {
            for (path, content) in files.sorted(by: { $0.key < $1.key }) { try writeLocal(content, to: path) }
            // A node known only by its host file (it left the manifests) keeps the size its host already has.
            let size = cpus > 0 ? (cpus: cpus, memoryKiB: memoryKiB) : try connection.nodeInfo()
            try SimulatedHost.write(try SimulatedHost.snapshot(of: connection, cpus: size.cpus, memoryKiB: size.memoryKiB, cache: snapshots), to: hostFile)
            let stamp = FileStamp(path: hostFile)
            state.withLock { openedStamp = stamp }  // our own write: the open connection already holds this state
        } catch {
            throw DriverError(node: node, message: "cannot save simulated host: \(error)", isTransient: false)
        }
    }

    /// Writes `content` to the file at `path` (removes it when nil), or holds it for the save while the change being
    /// made holds its writes. A file that already holds `content` is not written again.
    private func writeLocal(_ content: Data?, to path: String) throws {
        let held = state.withLock {
            if holding {
                heldFiles[path] = .some(content)
                unsaved = true
            }
            return holding
        }
        if held { return }
        if let content {
            if FileManager.default.contents(atPath: path) != content { try SimulatedHost.write(content, to: path) }
        } else if unlink(path) != 0 && errno != ENOENT {
            throw SimulatedHost.WriteError(path: path, reason: String(cString: strerror(errno)))
        }
    }

    // MARK: Files

    public func rings() throws(DriverError) -> [String: String] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: ringDirectory) else { return [:] }
        var rings: [String: String] = [:]
        for name in names where name.hasSuffix(".ring.gz") {
            if let data = FileManager.default.contents(atPath: "\(ringDirectory)/\(name)") { rings[name] = RingPlanner.sha256(data) }
        }
        return rings
    }

    public func readRing(_ name: String) throws(DriverError) -> Data {
        guard let data = FileManager.default.contents(atPath: "\(ringDirectory)/\(name)") else {
            throw DriverError(node: node, message: "cannot read \(name)", isTransient: false)
        }
        return data
    }

    public func installRing(_ name: String, content: Data, sha256: String) throws(DriverError) {
        do {
            try writeLocal(content, to: "\(ringDirectory)/\(name)")
        } catch {
            throw DriverError(node: node, message: "cannot write \(name): \(error)", isTransient: false)
        }
        guard try (state.withLock({ holding }) ? RingPlanner.sha256(content) : rings()[name]) == sha256 else {
            throw DriverError(node: node, message: "\(name) does not match its checksum after install", isTransient: true)
        }
    }

    public func networkFiles() throws(DriverError) -> NetworkFiles {
        var files: [String: String] = [:]
        for directory in [NetworkFiles.dnsmasqDirectory, NetworkFiles.metadataDirectory] {
            for name in (try? FileManager.default.contentsOfDirectory(atPath: localRoot + directory)) ?? [] {
                files[directory + "/" + name] = try? String(contentsOfFile: localRoot + directory + "/" + name, encoding: .utf8)
            }
        }
        files[NetworkFiles.rulesetFile] = try? String(contentsOfFile: localRoot + NetworkFiles.rulesetFile, encoding: .utf8)
        files[ProxyConfig.file] = try? String(contentsOfFile: localRoot + ProxyConfig.file, encoding: .utf8)
        return NetworkFiles(files: files)
    }

    public func writeNetworkFiles(_ files: [(path: String, content: String)], dhcp: NodeDHCP) throws(DriverError) {
        let keep = Set(files.map(\.path))
        do {
            for directory in [NetworkFiles.dnsmasqDirectory, NetworkFiles.metadataDirectory] {
                for name in (try? FileManager.default.contentsOfDirectory(atPath: localRoot + directory)) ?? [] where !keep.contains(directory + "/" + name) {
                    try writeLocal(nil, to: localRoot + directory + "/" + name)
                }
            }
            for file in files { try writeLocal(Data(file.content.utf8), to: localRoot + file.path) }
        } catch {
            throw DriverError(node: node, message: "cannot write the DHCP configuration: \(error)", isTransient: false)
        }
    }

    public func loadRuleset(_ ruleset: Ruleset) throws(DriverError) {
        do {
            try writeLocal(ruleset.rules.isEmpty ? nil : Data(ruleset.nft.utf8), to: localRoot + NetworkFiles.rulesetFile)
        } catch {
            throw DriverError(node: node, message: "cannot write the ruleset: \(error)", isTransient: false)
        }
    }

    /// A simulated node runs no HAProxy: its configuration is the file (drift is drift of the file).
    public func loadProxy(_ config: ProxyConfig) throws(DriverError) {
        do {
            try writeLocal(config.services.isEmpty ? nil : Data(config.text.utf8), to: localRoot + ProxyConfig.file)
        } catch {
            throw DriverError(node: node, message: "cannot write the HAProxy configuration: \(error)", isTransient: false)
        }
    }

    public func proxyHealth() throws(DriverError) -> [ProxyServerHealth]? { nil }

    // MARK: Generation

    /// The identity, size and times of the host file and the node's files, which every change replaces (written
    /// aside, then renamed).
    func generation() -> String? {
        guard let host = FileStamp(path: hostFile) else { return nil }
        // A digest of the stamps, not their text: a plan over 10,000 nodes asks every one (a few dozen stats each).
        var hasher = StableHasher()
        host.combine(into: &hasher)
        // Rings, DHCP files and the ruleset all live under the node's own directory: a node that was never given
        // any (a region not applied yet) costs one stat, not one per file.
        guard FileStamp(path: localRoot) != nil else {
            hasher.combine(0)
            return hasher.hex
        }
        guard let rings = FileStamp.entries(in: ringDirectory, suffix: ".ring.gz") else { return nil }
        hasher.combine(rings)
        hasher.combine(1)
        // The DHCP files and the ruleset: their directories change when a file is added or removed.
        for path in [localRoot + NetworkFiles.dnsmasqDirectory, localRoot + NetworkFiles.metadataDirectory, localRoot + NetworkFiles.rulesetFile, localRoot + ProxyConfig.file] {
            if let stamp = FileStamp(path: path) { stamp.combine(into: &hasher) } else { hasher.combine(0) }
        }
        for directory in [NetworkFiles.dnsmasqDirectory, NetworkFiles.metadataDirectory] {
            guard let files = FileStamp.entries(in: localRoot + directory, suffix: "") else { return nil }
            hasher.combine(files)
        }
        return hasher.hex
    }
}
