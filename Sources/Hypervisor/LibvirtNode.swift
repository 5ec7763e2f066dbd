import Foundation
import Hosts
import Libvirt
import Manifests
import Planning
import SSH

/// A node driven through libvirt: `qemu+ssh://…` in production, the test driver for simulated nodes (whose
/// state is written under the state directory after every change).
///
/// The connection opens on first use: a node whose generation shows it unchanged is never connected to.
///
/// `@unchecked Sendable`: the libvirt connection is thread-safe; `lock` serialises changes and snapshots, and
/// `opening` guards the lazily opened connection.
public final class LibvirtNode: NodeDriver, @unchecked Sendable {
    public let address: Address
    var kind: HypervisorKind
    let hostFile: String?
    private let cpus: Int
    private let memoryKiB: UInt64
    private let uri: String
    /// How a production node is reached (nil for a simulated node).
    let remote: Remote?
    /// The known_hosts file libvirt checks a production node against (a temporary file, removed with the driver).
    private var knownHostsFile: String?
    /// A production node's host face, once opened.
    private var host: SSHHost?
    /// The node's file root without a trailing slash (`""` for `/`).
    let root: String
    /// An empty host file outside a state directory this process may not write (see `init`), removed with the driver.
    private var temporaryHost: String?
    private var opened: Connection?
    /// What the last save of the host file wrote, reused for what no change touched since (simulated nodes).
    let snapshots = SnapshotCache()
    /// Whether the connection holds changes its host file does not (writes deferred until `flush()`); under `lock`.
    private var unsaved = false
    /// Whether the change being applied holds its writes back (under `lock`): a simulated node's files then wait in
    /// `heldFiles` for the save, so nothing of a held change is on disk before its batch is journaled started.
    private var holding = false
    /// Files of a simulated node written (content) or removed (nil) at the next save, by absolute path; under `lock`.
    private var heldFiles: [String: Data?] = [:]
    /// The host file as it was when `opened` read it (simulated nodes).
    private var openedStamp: FileStamp?
    private let opening = NSLock()
    let lock = NSLock()
    /// Serialises writes of the saved observation.
    private let saving = NSLock()
    /// Seconds a guest gets to shut down before it is powered off.
    public var shutdownTimeout: Double = 60
    /// Seconds a production node gets to accept a connection and show its SSH banner.
    public var connectTimeout: Double = 10

    /// `directory` as an absolute path without `.`, `..` or doubled slashes (cheap when it already is one).
    static func standardized(_ directory: String) -> String {
        let parts = directory.split(separator: "/", omittingEmptySubsequences: false)
        if directory.hasPrefix("/"), !parts.dropFirst().contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) { return directory }
        return URL(fileURLWithPath: directory).standardizedFileURL.path
    }

    /// A simulated node's host file: `<state>/nodes/<region>/<name>.xml`.
    public static func hostFile(stateDirectory: String, node: Address) -> String {
        "\(stateDirectory)/nodes/\(node.region ?? "-")/\(node.name).xml"
    }

    /// Every simulated node that has a host file under `stateDirectory` (`nodes/<region>/<name>.xml`), in `regions` only
    /// when given. With `scan`, a
    /// region directory whose stamp is unchanged since the last call is not read again.
    public static func simulatedNodes(stateDirectory: String, regions: Set<String>? = nil, scan: SimulatedHostScan? = nil) -> [Address] {
        let root = "\(stateDirectory)/nodes"
        var nodes: [Address] = []
        for region in regions.map({ $0.sorted() }) ?? FileStamp.names(in: root, suffix: "") where !region.hasPrefix(".") {
            let directory = "\(root)/\(region)"
            let stamp = FileStamp(path: directory)?.description
            if let stamp, let kept = scan?.nodes(directory, stamp: stamp) {
                nodes += kept
                continue
            }
            let found = FileStamp.names(in: directory, suffix: ".xml").map { Address(kind: .node, region: region, name: String($0.dropLast(4))) }
            if let stamp { scan?.keep(found, directory: directory, stamp: stamp) }
            nodes += found
        }
        return nodes
    }

    /// A driver for `node`; a simulated node starts from its saved host file, or an empty host made from its spec.
    /// Nothing is connected to until the node is observed or changed.
    public convenience init(node: Resource<NodeSpec>, stateDirectory: String, identity: String? = nil) throws(DriverError) {
        try self.init(endpoint: NodeEndpoint(node), stateDirectory: stateDirectory, identity: identity)
    }

    /// A driver for the node at `endpoint` (also a node that left the manifests, from the state store's inventory or
    /// its simulated host file; `cpus` 0 then means "as the host file says"). `identity` is the SSH key for a
    /// production node (default `$STACKLAB_SSH_IDENTITY`, else `~/.ssh/id_ed25519`).
    public init(endpoint: NodeEndpoint, stateDirectory: String, identity: String? = nil) throws(DriverError) {
        address = endpoint.address
        // Endpoints also come from the state store and host files, not only from validated manifests: checked again here,
        // so nothing but a simulated host or QEMU over SSH is ever connected to.
        guard let parsed = LibvirtURI(parsing: endpoint.libvirt) else {
            throw DriverError(node: endpoint.address, message: "refusing libvirt URI '\(endpoint.libvirt)': \(LibvirtURI.hint)", isTransient: false)
        }
        kind = HypervisorKind(uri: endpoint.libvirt)
        cpus = endpoint.cpus
        memoryKiB = endpoint.memoryKiB
        switch parsed.endpoint {
        case .simulated:
            remote = nil
            let path = Self.hostFile(stateDirectory: Self.standardized(stateDirectory), node: endpoint.address)
            var source = path
            if !FileManager.default.fileExists(atPath: path) {
                let empty = SimulatedHost.emptyHost(cpus: cpus, memoryKiB: memoryKiB)
                do {
                    try SimulatedHost.write(empty, to: path)
                } catch {
                    // A state directory this process may not write (a read-only plan): the new node is empty, so it is
                    // observed from an empty host elsewhere; applying to it needs write access and fails then.
                    source = NSTemporaryDirectory() + "/stacklab-empty-host-\(getpid())-\(UUID().uuidString).xml"
                    do {
                        try SimulatedHost.write(empty, to: source)
                    } catch {
                        throw DriverError(node: address, message: "cannot create simulated host \(path): \(error)", isTransient: false)
                    }
                }
            }
            hostFile = path
            uri = "test://" + source
            temporaryHost = source == path ? nil : source
        case .ssh(let user, let host, let port, _):
            hostFile = nil
            guard let hostKey = endpoint.hostKey, HostKey(publicKeyLine: hostKey) != nil else {
                throw DriverError(node: address, message: "no pinned host key: put the server's key in the Node's ssh.hostKey (stacklab bootstrap --trust-on-first-use shows and records it)", isTransient: false)
            }
            let environment = ProcessInfo.processInfo.environment
            let remote = Remote(host: host, port: UInt16(port ?? 22), user: user ?? "root", fileRoot: endpoint.fileRoot, hostKey: hostKey,
                                identity: identity ?? environment["STACKLAB_SSH_IDENTITY"] ?? "\(environment["HOME"] ?? NSHomeDirectory())/.ssh/id_ed25519")
            self.remote = remote
            // Written where any user may write (a read-only plan needs it too), and only for this driver's life.
            let knownHosts = NSTemporaryDirectory() + "/stacklab-known-hosts-\(getpid())-\(UUID().uuidString.prefix(8))"
            do {
                try SimulatedHost.write(remote.knownHostsLine, to: knownHosts)
            } catch {
                throw DriverError(node: address, message: "cannot write \(knownHosts): \(error)", isTransient: false)
            }
            knownHostsFile = knownHosts
            uri = remote.libvirtURI(knownHosts: knownHosts, socket: Remote.socket(for: host, in: environment["STACKLAB_LIBVIRT_SOCKET"]))
        }
        root = endpoint.fileRoot.map { $0 == "/" ? "" : ($0.hasSuffix("/") ? String($0.dropLast()) : $0) } ?? ""
    }

    /// How a production node is reached: the manifest's `qemu+ssh://user@host:port/system` and pinned host key, and the
    /// reconciler's SSH key.
    struct Remote {
        var host: String
        var port: UInt16
        var user: String
        var fileRoot: String?
        var hostKey: String
        var identity: String

        /// The node's line in a known_hosts file.
        var knownHostsLine: String {
            let entry = port == 22 ? (host.contains(":") ? "[\(host)]" : host) : "[\(host)]:\(port)"
            return "\(entry) \(hostKey.split(separator: " ").prefix(2).joined(separator: " "))\n"
        }

        /// The daemon's socket on `host` when it is not the default one, from `$STACKLAB_LIBVIRT_SOCKET`: one path for
        /// every node, or `host=path` pairs separated by commas (nodes not named use the default).
        static func socket(for host: String, in setting: String?) -> String? {
            guard let setting, !setting.isEmpty else { return nil }
            guard setting.contains("=") else { return setting }
            for pair in setting.split(separator: ",") {
                let parts = pair.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                if parts.count == 2, parts[0] == host { return parts[1] }
            }
            return nil
        }

        /// The URI libvirt connects with: the node carried by libvirt's in-process libssh2 transport, with what the
        /// reconciler (not the manifest) supplies: the key, a known_hosts file holding only the node's pinned host key
        /// (so libvirt verifies the server as StackLab does), and the daemon's socket when it is not the default one.
        func libvirtURI(knownHosts: String, socket: String?) -> String {
            var query = ["sshauth=privkey", "keyfile=\(LibvirtNode.escape(identity))", "known_hosts=\(LibvirtNode.escape(knownHosts))",
                         "known_hosts_verify=normal"]
            if let socket, !socket.isEmpty { query.append("socket=\(LibvirtNode.escape(socket))") }
            let hostPart = host.contains(":") ? "[\(host)]" : host
            return "qemu+libssh2://\(user)@\(hostPart):\(port)/system?" + query.joined(separator: "&")
        }
    }

    static func escape(_ value: String) -> String {
        value.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed.subtracting(CharacterSet(charactersIn: "&=+"))) ?? value
    }

    deinit {
        if let temporaryHost { unlink(temporaryHost) }
        if let knownHostsFile { unlink(knownHostsFile) }
    }

    /// The libvirt connection, opened on first use. The test driver reads its host file once, when it connects:
    /// a simulated node whose host file was replaced by someone else (another process's apply, an edit) is
    /// connected to again, so it is never observed stale.
    var connection: Connection {
        get throws(LibvirtError) {
            opening.lock()
            defer { opening.unlock() }
            let stamp = hostFile.flatMap(FileStamp.init(path:))
            if let opened, stamp == openedStamp { return opened }
            snapshots.forgetAll()  // another connection: nothing saved from the last one is known to hold
            if let remote {
                // libvirt's ssh transport waits forever on a port that accepts and stays silent: the node must show an
                // SSH banner within the deadline before libvirt is let near it.
                do {
                    try TCPConnection.probeSSH(host: remote.host, port: remote.port, timeout: connectTimeout)
                } catch {
                    throw LibvirtError.cannotConnect("connect to \(remote.host):\(remote.port)", message: "\(error)")
                }
            }
            let connection = try Connection(uri: uri)
            if kind != .test {
                // Without KVM (a nested or emulated host) guests run on QEMU's TCG.
                kind = try connection.capabilities().contains("<domain type='kvm'") ? .kvm : .qemu
            }
            opened = connection
            openedStamp = stamp
            return connection
        }
    }

    public func disconnect() {
        lock.lock()
        defer { lock.unlock() }
        // Held-back changes go with the connection, as a crash would take them: they were never journaled done, and the
        // next connection starts from the saved host.
        unsaved = false
        heldFiles = [:]
        opening.lock()
        defer { opening.unlock() }
        opened = nil
        openedStamp = nil
        host = nil
        snapshots.forgetAll()
    }

    /// For a simulated node: the identity, size and times of its host file and ring files, which every change
    /// replaces (written aside, then renamed). A production node cannot vouch for its state without being asked
    /// (libvirt's lifecycle events could, in a long-running reconciler): nil.
    public func generation() -> String? {
        guard let hostFile, let host = FileStamp(path: hostFile) else { return nil }
        // A digest of the stamps, not their text: a plan over 10,000 nodes asks every one (a few dozen stats each).
        var hasher = StableHasher()
        host.combine(into: &hasher)
        // Rings, DHCP files and the ruleset all live under the node's own directory: a node that was never given
        // any (a region not applied yet) costs one stat, not one per file.
        guard let base = localRoot, FileStamp(path: base) != nil else {
            hasher.combine(0)
            return hasher.hex
        }
        if let directory = ringDirectory {
            guard let rings = FileStamp.entries(in: directory, suffix: ".ring.gz") else { return nil }
            hasher.combine(rings)
        }
        hasher.combine(1)
        // The DHCP files and the ruleset: their directories change when a file is added or removed.
        for path in [base + Self.dnsmasqDirectory, base + Self.metadataDirectory, base + Self.rulesetFile] {
            if let stamp = FileStamp(path: path) { stamp.combine(into: &hasher) } else { hasher.combine(0) }
        }
        for directory in [Self.dnsmasqDirectory, Self.metadataDirectory] {
            guard let files = FileStamp.entries(in: base + directory, suffix: "") else { return nil }
            hasher.combine(files)
        }
        return hasher.hex
    }

    public func observe() throws(DriverError) -> ObservedNode {
        try observe(generation: hostFile == nil ? nil : generation())
    }

    /// A simulated node whose saved observation was made at `generation` (read just before, so that a file changed
    /// meanwhile shows as another generation next time) is not parsed again; otherwise it is observed and the observation
    /// saved. Not while the connection holds changes its files do not (the node is then what the connection says).
    public func observe(generation: String?) throws(DriverError) -> ObservedNode {
        guard let generation, let file = observationFile, !lock.withLock({ unsaved || !heldFiles.isEmpty }) else { return try observeLive() }
        if let saved = SavedObservation.read(file, generation: generation) { return saved }
        let node = try observeLive()
        if !lock.withLock({ unsaved || !heldFiles.isEmpty }) {
            saving.withLock { SavedObservation.write(node, generation: generation, to: file) }
        }
        return node
    }

    /// Where a simulated node's last observation is saved (see `SavedObservation`).
    var observationFile: String? { hostFile.map { Self.observationFile(hostFile: $0) } }

    /// The saved observation beside `hostFile`: removed with it.
    public static func observationFile(hostFile: String) -> String {
        String(hostFile.dropLast(".xml".count)) + ".observed"
    }

    /// The node whose `generation()` an entry `<state>/nodes/<region>/<entry>` is part of: its host file `<name>.xml`
    /// (or that file's temporary, `<name>.xml.tmp-<pid>`), or its own directory `<name>` and, when `inside`, anything
    /// under it. Nil for a saved observation (`<name>.observed`, and its temporary), which no generation reads.
    static func generationOwner(region: String, entry: Substring, inside: Bool) -> Address? {
        var name = entry
        if !inside {
            if entry.hasSuffix(".observed") || entry.contains(".observed.tmp") { return nil }
            if let host = entry.range(of: ".xml") { name = entry[..<host.lowerBound] }
        }
        return Address(kind: .node, region: region, name: String(name))
    }

    /// Removes every simulated node's saved observation under `stateDirectory`: the next observation of each parses its
    /// host (what `bench plan`'s `plan-reparse` row measures). Returns how many were removed.
    @discardableResult
    public static func removeSavedObservations(stateDirectory: String) -> Int {
        simulatedNodes(stateDirectory: stateDirectory).count { node in
            unlink(observationFile(hostFile: hostFile(stateDirectory: stateDirectory, node: node))) == 0
        }
    }

    private func observeLive() throws(DriverError) -> ObservedNode {
        try libvirt { () throws(LibvirtError) -> ObservedNode in
            let connection = try self.connection
            var domains: [ObservedDomain] = []
            for domain in try connection.domains() {
                // Only StackLab's own element, not the whole definition: observing a node stays cheap.
                let owner = try domain.metadata(namespace: Ownership.namespace).flatMap(Ownership.parseElement)
                let info = try domain.info()
                let state: ObservedDomain.State = switch info.state {
                case .running: .running
                case .paused: .paused
                case .shutoff: .shutoff
                case .crashed: .crashed
                case .other: .other
                }
                domains.append(ObservedDomain(
                    name: domain.name, address: owner?["address"].flatMap(Address.init(parsing:)), specHash: owner?["spec"],
                    ip: owner?["ip"].flatMap(IPv4Address.init(parsing:)), state: state, vcpus: info.vcpus, memoryKiB: try self.memoryTarget(domain, info: info),
                    maxVcpus: try domain.maxVcpus(), maxMemoryKiB: info.maxMemoryKiB, shapeHash: owner?["shape"], mac: owner?["mac"],
                    flavor: owner?["flavor"], image: owner?["image"]))
                domains[domains.count - 1].origin = owner?["origin"].flatMap(Address.init(parsing:))
                domains[domains.count - 1].port = owner?["port"]
            }
            let networks = try connection.networks().map(\.name).filter { $0.hasPrefix("stacklab-") }.map { String($0.dropFirst("stacklab-".count)) }
            let host = try connection.nodeInfo()
            var volumes: [String: UInt64] = [:]
            var allocations: [String: UInt64] = [:]
            var stored: [StorageVolume] = []
            for pool in try connection.pools() where pool.name == StorageXML.instancePool || pool.name == DesiredDomain.volumePool {
                stored += try pool.volumes()
            }
            for volume in stored {
                volumes[volume.name] = try volume.capacity()
                if self.kind != .test { allocations[volume.name] = try volume.allocation() }
            }
            var node = ObservedNode(address: address, domains: domains.sorted { $0.name < $1.name }, networks: networks.sorted())
            node.cpus = host.cpus
            node.memoryKiB = host.memoryKiB
            node.volumes = volumes
            node.allocations = self.kind == .test ? nil : allocations
            node.rings = try self.installedRingsForObserve()
            do throws(DriverError) {
                (node.dhcp, node.firewall, node.firewallDrift) = try self.installedNetworking()
            } catch {
                throw LibvirtError.cannotConnect("read the network configuration of \(address)", message: error.message)
            }
            return node
        }
    }

    public func usage() throws(DriverError) -> [InstanceUsage] {
        try libvirt { () throws(LibvirtError) -> [InstanceUsage] in
            var usage: [InstanceUsage] = []
            for domain in try self.connection.domains() where try domain.isActive() {
                guard let owner = try domain.metadata(namespace: Ownership.namespace).flatMap(Ownership.parseElement),
                      let instance = owner["address"].flatMap(Address.init(parsing:)) else { continue }
                let counters = try domain.counters(disks: InstanceUsage.diskDevices(inDomainXML: try domain.liveXML()), interfaces: owner["mac"].map { [$0] } ?? [])
                usage.append(InstanceUsage(instance: instance, domain: domain.name, counters: counters))
            }
            return usage.sorted { $0.domain < $1.domain }
        }
    }

    public func apply(_ operation: NodeOperation) throws(DriverError) {
        try apply(operation, deferringWrite: false)
    }

    /// A simulated node saves its host file once per `flush()` instead of once per change.
    public var defersWrites: Bool { hostFile != nil }

    public func flush() throws(DriverError) {
        lock.lock()
        defer { lock.unlock() }
        guard unsaved else { return }
        try persist()
    }

    public func apply(_ operation: NodeOperation, deferringWrite: Bool) throws(DriverError) {
        lock.lock()
        defer { lock.unlock() }
        holding = deferringWrite && hostFile != nil
        defer { holding = false }
        switch operation {
        case .defineDomain(let domain, _), .replaceDomain(let domain):
            snapshots.forget(domain: domain.name, volumePrefix: DesiredDomain.volumePrefix(for: domain.address))
            for disk in domain.disks { snapshots.forget(domain: domain.name, volumePrefix: disk.volume) }
        case .ensureVolume(_, let name, _), .deleteVolume(_, let name):
            snapshots.forget(domain: "", volumePrefix: name)
        case .setPower(let name, _):
            snapshots.forget(domain: name)
        case .deleteDomain(let name, let instance):
            snapshots.forget(domain: name, volumePrefix: DesiredDomain.volumePrefix(for: instance))
        case .ensureNetwork, .deleteNetwork, .installRing, .configureDHCP, .loadFirewall:
            break
        }
        switch operation {
        case .ensureNetwork(let network, let bridge):
            try libvirt { () throws(LibvirtError) in try ensureNetwork(network, bridge: bridge) }
        case .deleteNetwork(let name):
            try libvirt { () throws(LibvirtError) in
                if let network = try connection.networks().first(where: { $0.name == NetworkXML.name(for: name) }) {
                    if try network.isActive() { try network.destroy() }
                    try network.undefine()
                }
            }
        case .defineDomain(let domain, let restart):
            try libvirt { () throws(LibvirtError) in try ensureDomain(domain, restart: restart) }
        case .replaceDomain(let domain):
            try libvirt { () throws(LibvirtError) in
                // Idempotent: a replacement that already happened (the domain records the new image) is not redone.
                if let existing = try connection.domain(named: domain.name), try requireOwned(existing, by: domain.address),
                   Ownership.parse(try existing.persistentXML())?["image"] == domain.image {
                    try ensureDomain(domain, restart: false)
                    return
                }
                try deleteDomain(named: domain.name, address: domain.address)
                try ensureDomain(domain, restart: false)
            }
        case .setPower(let name, let running):
            try libvirt { () throws(LibvirtError) in
                guard let domain = try connection.domain(named: name) else {
                    throw LibvirtError(operation: "set power of domain \(name)", code: -1, message: "the domain does not exist")
                }
                try requireOwned(domain, by: nil)
                try setPower(domain, running: running)
            }
        case .deleteDomain(let name, let instance):
            try libvirt { () throws(LibvirtError) in try deleteDomain(named: name, address: instance) }
        case .installRing(let file, let content, let sha256):
            try installRing(file: file, content: content, sha256: sha256)
        case .configureDHCP(let dhcp):
            try configureDHCP(dhcp)
        case .ensureVolume(let poolName, let name, let bytes):
            try libvirt { () throws(LibvirtError) in
                let pool = try self.pool(named: poolName)
                if let volume = try pool.volumes().first(where: { $0.name == name }) {
                    if try volume.capacity() < bytes { try grow(volume, in: pool, to: bytes, backing: nil) }
                } else {
                    try pool.createVolume(xml: StorageXML.volume(name: name, bytes: bytes, backingFile: nil))
                }
            }
        case .deleteVolume(let poolName, let name):
            try libvirt { () throws(LibvirtError) in
                guard name.hasPrefix("v-") else {
                    throw LibvirtError(operation: "delete volume \(name)", code: -1, message: "only tenant volumes (v-…) are deleted on their own")
                }
                try self.pool(named: poolName).volumes().first { $0.name == name }?.delete()
            }
        case .loadFirewall(let ruleset):
            try loadFirewall(ruleset)
        }
        if deferringWrite && hostFile != nil {
            unsaved = true
        } else {
            try persist()
        }
    }

    // MARK: Swift rings

    /// Where a simulated node keeps its Swift ring files (`/etc/swift` on a real one).
    private var ringDirectory: String? {
        hostFile.map { String($0.dropLast(".xml".count)) + "/etc/swift" }
    }

    /// The ring files StackLab may install, by name.
    private static let ringFiles = ["account.ring.gz", "container.ring.gz", "object.ring.gz"]

    /// A production node's host face (SSH), opened on first use with the reconciler's key and the node's pinned host
    /// key; the same session serves every ring file of the run.
    func hostFace() throws(DriverError) -> SSHHost {
        opening.lock()
        defer { opening.unlock() }
        if let host { return host }
        guard let remote else { throw DriverError(node: address, message: "a simulated node has no SSH host face", isTransient: false) }
        do {
            let opened = try SSHHost(address: address, host: remote.host, port: remote.port, user: remote.user, fileRoot: remote.fileRoot,
                                     pinnedKey: remote.hostKey, credentials: .init(key: .file(remote.identity)), connectTimeout: connectTimeout)
            host = opened
            return opened
        } catch {
            throw DriverError(node: address, message: error.message, isTransient: true)
        }
    }

    private func installedRings() throws(DriverError) -> [String: String] {
        if remote != nil {
            do {
                return try hostFace().files(Self.ringFiles.map { "/etc/swift/\($0)" }).reduce(into: [:]) { $0[($1.key as NSString).lastPathComponent] = $1.value.sha256 }
            } catch let error as DriverError {
                throw error
            } catch {
                throw DriverError(node: address, message: "cannot read the ring files: \(error)", isTransient: true)
            }
        }
        guard let directory = ringDirectory, let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return [:] }
        var rings: [String: String] = [:]
        for name in names where name.hasSuffix(".ring.gz") {
            if let data = FileManager.default.contents(atPath: "\(directory)/\(name)") { rings[name] = RingPlanner.sha256(data) }
        }
        return rings
    }

    /// Whether `name` is a ring file name StackLab writes (`object.ring.gz`, `object-1.ring.gz`): a plain name, never a
    /// path. Checked before any file is read or written, whatever a (saved, possibly edited) plan says.
    static func isRingFileName(_ name: String) -> Bool {
        guard name.hasSuffix(".ring.gz"), name.utf8.count <= 64 else { return false }
        let stem = name.dropLast(".ring.gz".count)
        return !stem.isEmpty && stem.allSatisfy { $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-") }
    }

    /// Ring files for an observation (the observation's own error type).
    private func installedRingsForObserve() throws(LibvirtError) -> [String: String] {
        do {
            return try installedRings()
        } catch {
            throw LibvirtError.cannotConnect("read the ring files of \(address)", message: error.message)
        }
    }

    public func readRing(_ name: String) throws(DriverError) -> Data {
        guard Self.isRingFileName(name) else { throw DriverError(node: address, message: "'\(name)' is not a ring file name", isTransient: false) }
        if remote != nil {
            do {
                return Data(try hostFace().read("/etc/swift/\(name)"))
            } catch let error as DriverError {
                throw error
            } catch {
                throw DriverError(node: address, message: "\(error)", isTransient: true)
            }
        }
        guard let directory = ringDirectory, let data = FileManager.default.contents(atPath: "\(directory)/\(name)") else {
            throw DriverError(node: address, message: "cannot read \(name)", isTransient: false)
        }
        return data
    }

    private func installRing(file name: String, content: Data, sha256: String) throws(DriverError) {
        guard Self.isRingFileName(name) else {
            throw DriverError(node: address, message: "refusing to install '\(name)': not a ring file name (a plan names files, never paths)", isTransient: false)
        }
        if remote != nil {
            do {
                try hostFace().write("/etc/swift/\(name)", content: [UInt8](content), mode: 0o644)
            } catch let error as DriverError {
                throw error
            } catch {
                throw DriverError(node: address, message: "cannot install \(name): \(error)", isTransient: true)
            }
        } else if let directory = ringDirectory {
            do {
                try writeLocal(content, to: "\(directory)/\(name)")
            } catch {
                throw DriverError(node: address, message: "cannot write \(name): \(error)", isTransient: false)
            }
        }
        guard try (holding ? RingPlanner.sha256(content) : installedRings()[name]) == sha256 else {
            throw DriverError(node: address, message: "\(name) does not match its checksum after install", isTransient: true)
        }
    }

    // MARK: Changes

    private func ensureNetwork(_ name: String, bridge: String) throws(LibvirtError) {
        let libvirtName = NetworkXML.name(for: name)
        var network = try connection.networks().first { $0.name == libvirtName }
        if network == nil { network = try connection.defineNetwork(xml: NetworkXML.render(network: name, bridge: bridge)) }
        if let network, try !network.isActive() { try network.start() }
    }

    func instancePool() throws(LibvirtError) -> StoragePool {
        try pool(named: StorageXML.instancePool)
    }

    /// One of StackLab's pools (instance disks, or tenant volumes), defined and started on first use.
    func pool(named name: String) throws(LibvirtError) -> StoragePool {
        guard name == StorageXML.instancePool || name == DesiredDomain.volumePool else {
            throw LibvirtError(operation: "use storage pool \(name)", code: -1, message: "not one of StackLab's pools")
        }
        if let pool = try connection.pools().first(where: { $0.name == name }) {
            if try !pool.isActive() { try pool.start() }
            return pool
        }
        let directory = name == StorageXML.instancePool ? "instances" : "volumes"
        let path = kind == .test ? "/\(name)" : root + "/var/lib/stacklab/\(directory)"
        let pool = try connection.definePool(xml: StorageXML.pool(name: name, path: path))
        if kind != .test { try pool.build() }
        try pool.start()
        return pool
    }

    /// Makes the domain `want`: volumes created or grown, definition written, power set. With `restart`, a running
    /// domain that does not yet run `want`'s hardware is shut down first (gracefully) and started on the new
    /// definition; without it, a running domain grows live (vCPUs plugged, balloon raised, disks resized under the
    /// guest), and a change that cannot be made live is an error, never a silent restart.
    /// Refuses a domain that is not StackLab's: its metadata must name `address` (or, without one, the instance its
    /// name belongs to). A domain without StackLab's metadata is never defined over, started, stopped or deleted,
    /// whatever a plan (saved, possibly edited) says, even when it has StackLab's name or UUID.
    @discardableResult
    func requireOwned(_ domain: Domain, by address: Address?) throws(LibvirtError) -> Bool {
        let owner = try domain.metadata(namespace: Ownership.namespace).flatMap(Ownership.parseElement)?["address"].flatMap(Address.init(parsing:))
        guard let owner, address.map({ $0 == owner }) ?? (DesiredDomain.name(for: owner) == domain.name) else {
            throw LibvirtError(operation: "change domain \(domain.name)", code: -1,
                               message: "it is not StackLab's (its metadata does not name \(address?.description ?? "its instance")); StackLab never defines over, starts, stops or deletes a domain it does not own")
        }
        return true
    }

    func ensureDomain(_ want: DesiredDomain, restart: Bool) throws(LibvirtError) {
        let pool = try instancePool()
        var domain = try connection.domain(named: want.name)
        if let domain { try requireOwned(domain, by: want.address) }
        if domain == nil, let other = try connection.domain(uuid: want.uuid) {
            throw LibvirtError(operation: "define domain \(want.name)", code: -1,
                               message: "domain '\(other.name)' already has its UUID \(want.uuid); StackLab never defines over a domain it does not own")
        }
        var pools = [StorageXML.instancePool: pool]
        for disk in want.disks where pools[disk.pool] == nil { pools[disk.pool] = try self.pool(named: disk.pool) }
        var volumes: [String: StorageVolume] = [:]
        for pool in pools.values { for volume in try pool.volumes() { volumes[volume.name] = volume } }
        var growing: [(DesiredDomain.Disk, StorageVolume)] = []
        for disk in want.disks {
            if let volume = volumes[disk.volume] {
                if try volume.capacity() < disk.bytes { growing.append((disk, volume)) }
            } else {
                try pools[disk.pool]!.createVolume(xml: StorageXML.volume(name: disk.volume, bytes: disk.bytes, backingFile: backingFile(disk)))
            }
        }
        // A restart that happened before a crash is not repeated: the domain already runs the new hardware.
        if let running = domain, restart, try running.info().state != .shutoff, try !runs(want, running) || !growing.isEmpty {
            try stopGracefully(running)
        }
        let live = try domain.map { (domain) throws(LibvirtError) in try domain.info().state != .shutoff } ?? false
        for (disk, volume) in growing {
            if live, let domain {
                try growLive(domain, disk: disk, volume: volume, in: volume.pool)
            } else {
                try grow(volume, in: volume.pool, to: disk.bytes, backing: backingFile(disk))
            }
        }
        var defined = false
        if let domain, Ownership.parse(try domain.persistentXML())?["spec"] == want.specHash { defined = try runs(want, domain) }
        if !defined {
            // Redefining with the same XML is harmless, so an interrupted change is simply done again (and a definition
            // changed behind StackLab's back is written again). A running domain takes it at its next start.
            domain = try connection.defineDomain(xml: DomainXML.render(want, for: kind))
        }
        guard let domain else { return }
        if live, want.running, try domain.info().state != .shutoff { try resizeLive(domain, to: want) }
        try setPower(domain, running: want.running)
    }

    /// Whether the domain's running (or, when it is off, defined) vCPUs and memory are `want`'s.
    private func runs(_ want: DesiredDomain, _ domain: Domain) throws(LibvirtError) -> Bool {
        let info = try domain.info()
        guard info.vcpus == want.vcpus else { return false }
        return try memoryTarget(domain, info: info) == want.memoryKiB
    }

    /// The memory a domain is meant to have (KiB). The test driver reports it. QEMU reports what the guest's balloon
    /// holds now, which is the maximum until a balloon driver in the guest gives the rest back (and always, without
    /// one), in its info and its live XML alike: the target is read from the persistent definition's `<currentMemory>`,
    /// which StackLab writes before any live change.
    private func memoryTarget(_ domain: Domain, info: (state: Domain.State, maxMemoryKiB: UInt64, memoryKiB: UInt64, vcpus: Int)) throws(LibvirtError) -> UInt64 {
        guard kind != .test else { return info.memoryKiB }
        let xml = try domain.persistentXML()  // the live XML, too, shows what the balloon holds
        guard let open = xml.range(of: "<currentMemory"), let close = xml[open.upperBound...].range(of: "</currentMemory>"),
              let start = xml[open.upperBound..<close.lowerBound].firstIndex(of: ">"),
              let value = UInt64(xml[xml.index(after: start)..<close.lowerBound].trimmingCharacters(in: .whitespaces))
        else { return info.memoryKiB }
        return value
    }

    /// Plugs vCPUs and raises the balloon of a running domain to `want`'s, within its maximums.
    private func resizeLive(_ domain: Domain, to want: DesiredDomain) throws(LibvirtError) {
        let info = try domain.info()
        guard want.vcpus <= (try domain.maxVcpus()), want.memoryKiB <= info.maxMemoryKiB else {
            throw LibvirtError(operation: "resize running domain \(domain.name)", code: -1,
                               message: "it can grow live only to \(try domain.maxVcpus()) vCPUs and \(info.maxMemoryKiB) KiB; this change needs a restart the plan did not announce: plan again")
        }
        if info.vcpus != want.vcpus { try domain.setLiveVcpus(want.vcpus) }
        if try memoryTarget(domain, info: info) != want.memoryKiB { try domain.setLiveMemory(kib: want.memoryKiB) }
    }

    /// Grows the disk of a running domain through QEMU (the volume must not be resized behind its back). libvirt's test
    /// driver cannot; its volumes hold no data, so a simulated node's volume is grown as if it were shut off.
    private func growLive(_ domain: Domain, disk: DesiredDomain.Disk, volume: StorageVolume, in pool: StoragePool) throws(LibvirtError) {
        do {
            try domain.resizeDisk(disk.device, bytes: disk.bytes)
        } catch where error.isUnsupported && kind == .test {
            try grow(volume, in: pool, to: disk.bytes, backing: backingFile(disk))
        }
    }

    func backingFile(_ disk: DesiredDomain.Disk) -> String? {
        disk.image.map { kind == .test ? nil : root + "/var/lib/stacklab/images/" + ($0 as NSString).lastPathComponent } ?? nil
    }

    /// Grows the volume of a domain that is shut off. libvirt's test driver cannot resize; its volumes hold no data, so
    /// a simulated node's volume is created again at the new size instead.
    func grow(_ volume: StorageVolume, in pool: StoragePool, to bytes: UInt64, backing: String?) throws(LibvirtError) {
        do {
            try volume.resize(to: bytes)
        } catch where error.isUnsupported && kind == .test {
            let name = volume.name
            try volume.delete()
            try pool.createVolume(xml: StorageXML.volume(name: name, bytes: bytes, backingFile: backing))
        }
    }

    /// Asks the guest to shut down and waits up to `shutdownTimeout` seconds for it; then powers it off.
    func stopGracefully(_ domain: Domain) throws(LibvirtError) {
        if try domain.info().state == .running {
            do {
                try domain.shutdown()
                let deadline = Date().addingTimeInterval(shutdownTimeout)
                while try domain.info().state != .shutoff, Date() < deadline { Thread.sleep(forTimeInterval: 0.2) }
            } catch where error.isUnsupported {}
        }
        if try domain.info().state != .shutoff { try domain.destroy() }
    }

    func setPower(_ domain: Domain, running: Bool) throws(LibvirtError) {
        let state = try domain.info().state
        if running, state != .running {
            if state != .shutoff { try domain.destroy() }  // paused or crashed: power-cycle
            try domain.start()
        } else if !running, state != .shutoff {
            try domain.destroy()
        }
    }

    /// Stops the domain, deletes its volumes, then undefines it. In that order a crash at any point leaves the
    /// domain defined until its volumes are gone, so the next plan deletes it again and nothing leaks.
    private func deleteDomain(named name: String, address: Address) throws(LibvirtError) {
        let domain = try connection.domain(named: name)
        if let domain { try requireOwned(domain, by: address) }
        if let domain, try domain.info().state != .shutoff { try domain.destroy() }
        let prefix = DesiredDomain.volumePrefix(for: address) + "-"
        if let pool = try connection.pools().first(where: { $0.name == StorageXML.instancePool }) {
            for volume in try pool.volumes() where volume.name.hasPrefix(prefix) { try volume.delete() }
        }
        try domain?.undefine()
    }

    // MARK: Plumbing

    /// Writes a simulated node's state to its host file.
    /// Writes `content` to a simulated node's file at `path` (removes it when nil), or holds it for the save while
    /// the change being applied holds its writes. A file that already holds `content` is not written again.
    func writeLocal(_ content: Data?, to path: String) throws {
        if holding {
            heldFiles[path] = .some(content)
            unsaved = true
            return
        }
        if let content {
            if FileManager.default.contents(atPath: path) != content { try SimulatedHost.write(content, to: path) }
        } else if unlink(path) != 0 && errno != ENOENT {
            throw SimulatedHost.WriteError(path: path, reason: String(cString: strerror(errno)))
        }
    }

    func persist() throws(DriverError) {
        guard let hostFile else { return }
        unsaved = false
        do {
            let files = heldFiles
            heldFiles = [:]
            for (path, content) in files.sorted(by: { $0.key < $1.key }) { try writeLocal(content, to: path) }
            // A node known only by its host file (it left the manifests) keeps the size its host already has.
            let size = cpus > 0 ? (cpus: cpus, memoryKiB: memoryKiB) : try connection.nodeInfo()
            try SimulatedHost.write(try SimulatedHost.snapshot(of: connection, cpus: size.cpus, memoryKiB: size.memoryKiB, cache: snapshots), to: hostFile)
            opening.lock()
            openedStamp = FileStamp(path: hostFile)  // our own write: the open connection already holds this state
            opening.unlock()
        } catch {
            throw DriverError(node: address, message: "cannot save simulated host: \(error)", isTransient: false)
        }
    }

    func libvirt<T>(_ body: () throws(LibvirtError) -> T) throws(DriverError) -> T {
        do {
            return try body()
        } catch {
            throw DriverError(node: address, message: error.description, isTransient: error.isTransient)
        }
    }
}

/// What `LibvirtNode.simulatedNodes` found in each region directory, by the directory's stamp (adding or removing a
/// host file changes it). For a long-running reconciler.
///
/// `@unchecked Sendable`: every access goes through `lock`.
public final class SimulatedHostScan: @unchecked Sendable {
    private var directories: [String: (stamp: String, nodes: [Address])] = [:]
    let lock = NSLock()

    /// An empty scan.
    public init() {}

    func nodes(_ directory: String, stamp: String) -> [Address]? {
        lock.lock()
        defer { lock.unlock() }
        return directories[directory].flatMap { $0.stamp == stamp ? $0.nodes : nil }
    }

    func keep(_ nodes: [Address], directory: String, stamp: String) {
        lock.lock()
        defer { lock.unlock() }
        directories[directory] = (stamp, nodes)
    }
}
