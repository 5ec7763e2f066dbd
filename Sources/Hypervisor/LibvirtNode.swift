import Foundation
import Libvirt
import Manifests
import Planning

/// A node driven through libvirt: `qemu+ssh://…` in production, the test driver for simulated nodes (whose
/// state is written under the state directory after every change).
///
/// The connection opens on first use: a node whose generation shows it unchanged is never connected to.
///
/// `@unchecked Sendable`: the libvirt connection is thread-safe; `lock` serialises changes and snapshots, and
/// `opening` guards the lazily opened connection.
public final class LibvirtNode: NodeDriver, @unchecked Sendable {
    public let address: Address
    private let kind: HypervisorKind
    private let hostFile: String?
    private let cpus: Int
    private let memoryKiB: UInt64
    private let uri: String
    private var opened: Connection?
    /// The host file as it was when `opened` read it (simulated nodes).
    private var openedStamp: FileStamp?
    private let opening = NSLock()
    private let lock = NSLock()

    /// `directory` as an absolute path without `.`, `..` or doubled slashes (cheap when it already is one).
    static func standardized(_ directory: String) -> String {
        let parts = directory.split(separator: "/", omittingEmptySubsequences: false)
        if directory.hasPrefix("/"), !parts.dropFirst().contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) { return directory }
        return URL(fileURLWithPath: directory).standardizedFileURL.path
    }

    /// The directory under the state directory that holds simulated hosts.
    public static func hostFile(stateDirectory: String, node: Address) -> String {
        "\(stateDirectory)/nodes/\(node.region ?? "-")/\(node.name).xml"
    }

    /// A driver for `node`; a simulated node starts from its saved host file, or an empty host made from its spec.
    /// Nothing is connected to until the node is observed or changed.
    public init(node: Resource<NodeSpec>, stateDirectory: String) throws(DriverError) {
        address = node.address
        kind = HypervisorKind(uri: node.spec.libvirt.value)
        cpus = node.spec.cpus.value
        memoryKiB = node.spec.memory.value.bytes / 1024
        if node.spec.isSimulated {
            let path = Self.hostFile(stateDirectory: Self.standardized(stateDirectory), node: node.address)
            if !FileManager.default.fileExists(atPath: path) {
                do {
                    try SimulatedHost.write(SimulatedHost.emptyHost(cpus: cpus, memoryKiB: memoryKiB), to: path)
                } catch {
                    throw DriverError(node: node.name, message: "cannot create simulated host \(path): \(error)", isTransient: false)
                }
            }
            hostFile = path
            uri = "test://" + path
        } else {
            hostFile = nil
            uri = node.spec.libvirt.value
        }
    }

    /// The libvirt connection, opened on first use. The test driver reads its host file once, when it connects:
    /// a simulated node whose host file was replaced by someone else (another process's apply, an edit) is
    /// connected to again, so it is never observed stale.
    private var connection: Connection {
        get throws(LibvirtError) {
            opening.lock()
            defer { opening.unlock() }
            let stamp = hostFile.flatMap(FileStamp.init(path:))
            if let opened, stamp == openedStamp { return opened }
            let connection = try Connection(uri: uri)
            opened = connection
            openedStamp = stamp
            return connection
        }
    }

    public func disconnect() {
        lock.lock()
        defer { lock.unlock() }
        opening.lock()
        defer { opening.unlock() }
        opened = nil
        openedStamp = nil
    }

    /// For a simulated node: the identity, size and times of its host file and ring files, which every change
    /// replaces (written aside, then renamed). A production node cannot vouch for its state without being asked
    /// (libvirt's lifecycle events could, in a long-running reconciler): nil.
    public func generation() -> String? {
        guard let hostFile, let host = FileStamp(path: hostFile) else { return nil }
        var token = host.description
        if let directory = ringDirectory {
            for name in FileStamp.names(in: directory, suffix: ".ring.gz") {
                guard let stamp = FileStamp(path: "\(directory)/\(name)") else { return nil }
                token += ";\(name)=\(stamp)"
            }
        }
        return token
    }

    public func observe() throws(DriverError) -> ObservedNode {
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
                    ip: owner?["ip"].flatMap(IPv4Address.init(parsing:)), state: state, vcpus: info.vcpus, memoryKiB: info.maxMemoryKiB,
                    flavor: owner?["flavor"], image: owner?["image"]))
            }
            let networks = try connection.networks().map(\.name).filter { $0.hasPrefix("stacklab-") }.map { String($0.dropFirst("stacklab-".count)) }
            let host = try connection.nodeInfo()
            let volumes = try connection.pools().first { $0.name == StorageXML.instancePool }?.volumes().map(\.name) ?? []
            var node = ObservedNode(address: address, domains: domains.sorted { $0.name < $1.name }, networks: networks.sorted())
            node.cpus = host.cpus
            node.memoryKiB = host.memoryKiB
            node.volumes = volumes.sorted()
            node.rings = self.installedRings()
            return node
        }
    }

    public func apply(_ change: Change) throws(DriverError) {
        lock.lock()
        defer { lock.unlock() }
        try libvirt { () throws(LibvirtError) in
            let connection = try self.connection
            switch (change.address.kind, change.action) {
            case (.network, .create):
                try ensureNetwork(change.address.name, bridge: change.bridge ?? "br100")
            case (.network, .delete):
                if let network = try connection.networks().first(where: { $0.name == NetworkXML.name(for: change.address.name) }) {
                    if try network.isActive() { try network.destroy() }
                    try network.undefine()
                }
            case (.instance, .create), (.instance, .update):
                guard let domain = change.domain else { return }
                try ensureDomain(domain, restart: change.action == .update)
            case (.instance, .power):
                guard let want = change.domain, let domain = try connection.domain(named: want.name) else { return }
                try setPower(domain, running: want.running)
            case (.instance, .delete):
                try deleteDomain(named: change.observedName ?? DesiredDomain.name(for: change.address), address: change.address)
            case (.ring, .create), (.ring, .update):
                break  // written below, outside libvirt
            default:
                return
            }
        }
        if change.address.kind == .ring { try installRing(change) }
        try persist()
    }

    // MARK: Swift rings

    /// Where a simulated node keeps its Swift ring files (`/etc/swift` on a real one).
    private var ringDirectory: String? {
        hostFile.map { String($0.dropLast(".xml".count)) + "/etc/swift" }
    }

    private func installedRings() -> [String: String] {
        guard let directory = ringDirectory, let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return [:] }
        var rings: [String: String] = [:]
        for name in names where name.hasSuffix(".ring.gz") {
            if let data = FileManager.default.contents(atPath: "\(directory)/\(name)") { rings[name] = RingPlanner.sha256(data) }
        }
        return rings
    }

    private func installRing(_ change: Change) throws(DriverError) {
        guard let directory = ringDirectory else {
            throw DriverError(node: address.name, message: "installing ring files on a production node needs the SSH transport, which is not built yet",
                              isTransient: false)
        }
        guard let payload = change.payload, let checksum = change.checksum, let name = change.file else { return }
        do {
            try SimulatedHost.write(payload, to: "\(directory)/\(name)")
        } catch {
            throw DriverError(node: address.name, message: "cannot write \(name): \(error)", isTransient: false)
        }
        guard installedRings()[name] == checksum else {
            throw DriverError(node: address.name, message: "\(name) does not match its checksum after install", isTransient: true)
        }
    }

    // MARK: Changes

    private func ensureNetwork(_ name: String, bridge: String) throws(LibvirtError) {
        let libvirtName = NetworkXML.name(for: name)
        var network = try connection.networks().first { $0.name == libvirtName }
        if network == nil { network = try connection.defineNetwork(xml: NetworkXML.render(network: name, bridge: bridge)) }
        if let network, try !network.isActive() { try network.start() }
    }

    private func instancePool() throws(LibvirtError) -> StoragePool {
        if let pool = try connection.pools().first(where: { $0.name == StorageXML.instancePool }) {
            if try !pool.isActive() { try pool.start() }
            return pool
        }
        let path = kind == .kvm ? "/var/lib/stacklab/instances" : "/stacklab-instances"
        let pool = try connection.definePool(xml: StorageXML.pool(name: StorageXML.instancePool, path: path))
        try pool.start()
        return pool
    }

    private func ensureDomain(_ want: DesiredDomain, restart: Bool) throws(LibvirtError) {
        let pool = try instancePool()
        let existing = Set(try pool.volumes().map(\.name))
        for disk in want.disks where !existing.contains(disk.volume) {
            let backing = disk.image.map { kind == .kvm ? "/var/lib/stacklab/images/" + ($0 as NSString).lastPathComponent : nil } ?? nil
            try pool.createVolume(xml: StorageXML.volume(name: disk.volume, bytes: disk.bytes, backingFile: backing))
        }
        if !restart, let domain = try connection.domain(named: want.name), Ownership.parse(try domain.persistentXML())?["spec"] == want.specHash {
            try setPower(domain, running: want.running)  // already defined as wanted: an earlier run got this far
            return
        }
        if restart, let domain = try connection.domain(named: want.name), try domain.info().state != .shutoff {
            try domain.destroy()
        }
        let domain = try connection.defineDomain(xml: DomainXML.render(want, for: kind))
        try setPower(domain, running: want.running)
    }

    private func setPower(_ domain: Domain, running: Bool) throws(LibvirtError) {
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
        if let domain, try domain.info().state != .shutoff { try domain.destroy() }
        let prefix = DesiredDomain.volumePrefix(for: address) + "-"
        if let pool = try connection.pools().first(where: { $0.name == StorageXML.instancePool }) {
            for volume in try pool.volumes() where volume.name.hasPrefix(prefix) { try volume.delete() }
        }
        try domain?.undefine()
    }

    // MARK: Plumbing

    /// Writes a simulated node's state to its host file.
    private func persist() throws(DriverError) {
        guard let hostFile else { return }
        do {
            try SimulatedHost.write(try SimulatedHost.snapshot(of: connection, cpus: cpus, memoryKiB: memoryKiB), to: hostFile)
            opening.lock()
            openedStamp = FileStamp(path: hostFile)  // our own write: the open connection already holds this state
            opening.unlock()
        } catch {
            throw DriverError(node: address.name, message: "cannot save simulated host: \(error)", isTransient: false)
        }
    }

    private func libvirt<T>(_ body: () throws(LibvirtError) -> T) throws(DriverError) -> T {
        do {
            return try body()
        } catch {
            throw DriverError(node: address.name, message: error.description, isTransient: error.isTransient)
        }
    }
}
