import Foundation
import Hosts
import Libvirt
import Manifests
import Planning
import SSH
import Synchronization

/// A node driven through libvirt, on the machine its `NodeMachine` describes: a production node over SSH
/// (`RemoteMachine`), or a simulated one (libvirt's test driver, in SimulatedNodes). Everything libvirt does is here;
/// the machine supplies the connection's URI, the files beside libvirt, and what happens around a change (a simulated
/// host is saved after it).
///
/// The connection opens on first use: a node that is never observed or changed is never connected to.
///
/// `@unchecked Sendable`: the libvirt connection is thread-safe; `lock` serialises changes, and `opening` guards the
/// lazily opened connection.
public final class LibvirtNode: NodeDriver, LibvirtBacked, @unchecked Sendable {
    public let address: Address
    /// The driver the node's objects are written for (a production node's is known once connected).
    package private(set) var kind: HypervisorKind
    /// The machine under the node.
    public let machine: any NodeMachine
    /// The node's file root without a trailing slash (`""` for `/`).
    let root: String
    private var opened: Connection?
    private let opening = NSLock()
    /// Held by every change (and by a machine's save of changes held back).
    package let lock = NSLock()
    /// Seconds a guest gets to shut down before it is powered off.
    public var shutdownTimeout: Double = 60
    /// The instance each StackLab guest runs, by domain UUID (see `usage`).
    private let owners = Mutex<[String: (instance: Address, mac: String?)]>([:])

    /// A node at `address` on `machine`, whose objects are written for `kind`, with files under `fileRoot` (nil: `/`).
    public init(address: Address, kind: HypervisorKind, fileRoot: String?, machine: any NodeMachine) {
        self.address = address
        self.kind = kind
        self.machine = machine
        root = fileRoot.map { $0 == "/" ? "" : ($0.hasSuffix("/") ? String($0.dropLast()) : $0) } ?? ""
    }

    /// A production node at `endpoint` (`qemu+ssh://…` with a pinned host key; anything else is refused), reached with
    /// SSH key `identity`, its libvirt daemon at `socket` when that is not the default one.
    public convenience init(remote endpoint: NodeEndpoint, identity: String, socket: String? = nil) throws(DriverError) {
        let machine = try RemoteMachine(endpoint: endpoint, identity: identity, socket: socket)
        self.init(address: endpoint.address, kind: .kvm, fileRoot: endpoint.fileRoot, machine: machine)
    }

    public var libvirtNode: LibvirtNode { self }

    /// The libvirt connection, opened on first use, and again when the machine says the open one no longer shows
    /// the node (a simulated host file replaced by another process).
    package var connection: Connection {
        get throws(LibvirtError) {
            opening.lock()
            defer { opening.unlock() }
            if let opened, machine.connectionIsCurrent() { return opened }
            try machine.willConnect()
            let connection = try Connection(uri: machine.uri)
            if kind != .test {
                // Without KVM (a nested or emulated host) guests run on QEMU's TCG.
                kind = try connection.capabilities().contains("<domain type='kvm'") ? .kvm : .qemu
            }
            opened = connection
            machine.connected()
            return connection
        }
    }

    public func disconnect() {
        lock.lock()
        defer { lock.unlock() }
        opening.lock()
        defer { opening.unlock() }
        opened = nil
        machine.disconnect()
    }

    public func observe() throws(DriverError) -> ObservedNode {
        try observeLive()
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
            do throws(DriverError) {
                node.rings = try self.machine.rings()
            } catch {
                throw LibvirtError.cannotConnect("read the ring files of \(address)", message: error.message)
            }
            do throws(DriverError) {
                let proxy: (text: String?, drift: String?)
                (node.dhcp, node.firewall, node.firewallDrift, proxy) = try self.installedNetworking()
                (node.proxy, node.proxyDrift) = proxy
            } catch {
                throw LibvirtError.cannotConnect("read the network configuration of \(address)", message: error.message)
            }
            return node
        }
    }

    /// One call for every running guest's counters (`runningDomainCounters`), whatever the node runs; a guest whose
    /// driver leaves counters out of that call (the test driver's) is read on its own. Which instance a guest is comes
    /// from StackLab's metadata on it, read once per domain UUID: a domain's UUID is derived from its instance, so it
    /// never names another.
    public func usage() throws(DriverError) -> [InstanceUsage] {
        try libvirt { () throws(LibvirtError) -> [InstanceUsage] in
            var usage: [InstanceUsage] = []
            for (domain, bulk) in try self.connection.runningDomainCounters() {
                guard let owner = try self.owner(of: domain) else { continue }
                let counters: DomainCounters
                if let bulk { counters = bulk } else {
                    counters = try domain.counters(disks: InstanceUsage.diskDevices(inDomainXML: try domain.liveXML()), interfaces: owner.mac.map { [$0] } ?? [])
                }
                usage.append(InstanceUsage(instance: owner.instance, domain: domain.name, counters: counters))
            }
            return usage.sorted { $0.domain < $1.domain }
        }
    }

    /// The instance a guest runs and its MAC address, from StackLab's metadata (nil: not StackLab's).
    private func owner(of domain: Domain) throws(LibvirtError) -> (instance: Address, mac: String?)? {
        let uuid = domain.uuid
        if let known = owners.withLock({ $0[uuid] }) { return known }
        guard let owner = try domain.metadata(namespace: Ownership.namespace).flatMap(Ownership.parseElement),
              let instance = owner["address"].flatMap(Address.init(parsing:)) else { return nil }
        owners.withLock { $0[uuid] = (instance, owner["mac"]) }
        return (instance, owner["mac"])
    }

    public func apply(_ operation: NodeOperation) throws(DriverError) {
        try apply(operation, deferringWrite: false)
    }

    /// Performs `operation`; with `deferringWrite`, a machine that is not durable by itself may save it only at its
    /// next flush (see `WriteBatching`).
    package func apply(_ operation: NodeOperation, deferringWrite: Bool) throws(DriverError) {
        lock.lock()
        defer { lock.unlock() }
        let (domain, volumes): (String, [String]) = switch operation {
        case .defineDomain(let domain, _), .replaceDomain(let domain):
            (domain.name, [DesiredDomain.volumePrefix(for: domain.address)] + domain.disks.map(\.volume))
        case .ensureVolume(_, let name, _), .deleteVolume(_, let name): ("", [name])
        case .setPower(let name, _): (name, [])
        case .deleteDomain(let name, let instance): (name, [DesiredDomain.volumePrefix(for: instance)])
        case .ensureNetwork, .deleteNetwork, .installRing, .configureDHCP, .loadFirewall, .loadProxy: ("", [])
        }
        try changing(domain: domain, volumePrefixes: volumes, deferring: deferringWrite) { () throws(DriverError) in try perform(operation) }
    }

    /// Runs `body`, a change to `domain` and the volumes named by `volumePrefixes`, between the machine's change hooks.
    /// The caller holds `lock`.
    package func changing<T>(domain: String, volumePrefixes: [String], deferring: Bool = false, _ body: () throws(DriverError) -> T) throws(DriverError) -> T {
        machine.willChange(domain: domain, volumePrefixes: volumePrefixes, deferring: deferring)
        let result: T
        do {
            result = try body()
        } catch {
            try? machine.didChange(on: try libvirt { () throws(LibvirtError) in try connection }, succeeded: false)
            throw error
        }
        try machine.didChange(on: try libvirt { () throws(LibvirtError) in try connection }, succeeded: true)
        return result
    }

    private func perform(_ operation: NodeOperation) throws(DriverError) {
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
        case .loadProxy(let config):
            try machine.loadProxy(config)
        }
    }

    // MARK: Swift rings

    public func readRing(_ name: String) throws(DriverError) -> Data {
        guard RingFiles.isName(name) else { throw DriverError(node: address, message: "'\(name)' is not a ring file name", isTransient: false) }
        return try machine.readRing(name)
    }

    private func installRing(file name: String, content: Data, sha256: String) throws(DriverError) {
        guard RingFiles.isName(name) else {
            throw DriverError(node: address, message: "refusing to install '\(name)': not a ring file name (a plan names files, never paths)", isTransient: false)
        }
        try machine.installRing(name, content: content, sha256: sha256)
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

    /// Runs `script` on a production node's host face; a failure carries its output. A simulated node has none (its
    /// volumes hold no data to copy or hash, so nothing asks it to).
    func runOnHost(_ script: String) throws(DriverError) -> String {
        guard let host = machine as? RemoteMachine else {
            throw DriverError(node: address, message: "the node has no host face to run commands on", isTransient: false)
        }
        return try host.run(script)
    }

    /// Runs `body`, its libvirt failures as the node's.
    package func libvirt<T>(_ body: () throws(LibvirtError) -> T) throws(DriverError) -> T {
        do {
            return try body()
        } catch {
            throw DriverError(node: address, message: error.description, isTransient: error.isTransient)
        }
    }
}
