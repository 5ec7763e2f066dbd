import Dispatch
import Drivers
import Foundation
import Manifests
import Parallel
import Planning

/// The nodes one reconciler reaches: production nodes over SSH (`LibvirtNode` on a `RemoteMachine`) and the
/// simulated nodes kept under its state directory. A long-running reconciler keeps one, so the simulated hosts'
/// listing and their generations are read again only where files changed.
public final class LocalNodes: NodeSource, @unchecked Sendable {
    /// Where simulated nodes live (`<state>/nodes/<region>/<name>.xml`).
    public let stateDirectory: String
    /// The SSH key for production nodes when the caller names none.
    public let defaultIdentity: String
    /// The libvirt daemon's socket on production nodes when it is not the default one (see `RemoteMachine.socket`).
    public let socketSetting: String?
    /// Region directories already listed; generations watched with inotify (nil: read every time).
    private let scan = SimulatedHostScan()
    let watch: GenerationWatch?

    /// The nodes of `stateDirectory`; with `watching`, generations are watched (for a long-running caller).
    /// `identity` is the SSH key for production nodes when a driver is asked for without one (the program passes
    /// `$STACKLAB_SSH_IDENTITY`, else `~/.ssh/id_ed25519`); `socketSetting` is `$STACKLAB_LIBVIRT_SOCKET` (see
    /// `RemoteMachine.socket`). No library reads the environment: the program reads it once and passes it down.
    public init(stateDirectory: String, watching: Bool = false, identity: String? = nil, socketSetting: String? = nil) {
        self.stateDirectory = stateDirectory
        defaultIdentity = identity ?? "\(NSHomeDirectory())/.ssh/id_ed25519"
        self.socketSetting = socketSetting
        watch = watching ? GenerationWatch() : nil
    }

    /// Endpoints also come from the state store and host files, not only from validated manifests: checked again here,
    /// so nothing but a simulated host or QEMU over SSH is ever connected to.
    public func driver(for endpoint: NodeEndpoint, identity: String?) throws(DriverError) -> any NodeDriver {
        guard let parsed = LibvirtURI(parsing: endpoint.libvirt) else {
            throw DriverError(node: endpoint.address, message: "refusing libvirt URI '\(endpoint.libvirt)': \(LibvirtURI.hint)", isTransient: false)
        }
        switch parsed.endpoint {
        case .simulated:
            return try SimulatedNode(endpoint: endpoint, stateDirectory: stateDirectory)
        case .ssh(_, let host, _, _):
            return try LibvirtNode(remote: endpoint, identity: identity ?? defaultIdentity, socket: RemoteMachine.socket(for: host, in: socketSetting))
        }
    }

    /// Simulated nodes with a host file under the state directory. The same array as the last call while the same
    /// region directories are listed and none of them changed (a caller that keeps what it made from the array
    /// knows it again: `DeclaredNodes.undeclared`).
    public func heldNodes(in regions: Set<String>?) -> [NodeEndpoint] {
        let listing = Self.scanned(stateDirectory: stateDirectory, regions: regions, scan: scan, watch: watch)
        return scan.endpoints(regions: regions, listing: listing) {
            listing.nodes.map { NodeEndpoint(address: $0, libvirt: "simulated", cpus: 0, memoryKiB: 0) }
        }
    }

    public func generations(of drivers: [Address: any NodeDriver]) -> (values: [Address: String?], read: Int) {
        if let watch {
            let values = watch.generations(of: drivers, stateDirectory: stateDirectory)
            return (values, watch.lastRead.count)
        }
        let list = Array(drivers)
        let read = ResultSlots<String?>(count: list.count)
        DispatchQueue.concurrentPerform(iterations: list.count) { index in
            read[index] = (list[index].value as? any GenerationTracking)?.generation()
        }
        var values: [Address: String?] = [:]
        for (entry, generation) in zip(list, read.values) { values[entry.key] = .some(generation) }
        return (values, list.count)
    }

    public var watchFailure: String? { watch?.failure }

    public func release(_ node: Address) {
        let hostFile = SimulatedNode.hostFile(stateDirectory: stateDirectory, node: node)
        unlink(SimulatedNode.observationFile(hostFile: hostFile))
        unlink(hostFile)
    }

    public func sweep() -> [String] {
        SimulatedHost.removeStaleTemporaries(stateDirectory: stateDirectory)
    }

    /// Every simulated node that has a host file under `stateDirectory` (`nodes/<region>/<name>.xml`), in `regions` only
    /// when given. With `scan`, a region directory whose stamp is unchanged since the last call is not read again.
    public static func simulatedNodes(stateDirectory: String, regions: Set<String>? = nil, scan: SimulatedHostScan? = nil) -> [Address] {
        scanned(stateDirectory: stateDirectory, regions: regions, scan: scan).nodes
    }

    /// What `simulatedNodes` finds, the region directories it listed, and whether every one of them was as `scan` kept it.
    /// With `watch` too, a directory in which no event happened since it was last listed is not even stamped: 100
    /// region directories cost one read of the watch's queue, not 100 stats and a listing of `nodes`.
    static func scanned(stateDirectory: String, regions: Set<String>?, scan: SimulatedHostScan?, watch: GenerationWatch? = nil) -> SimulatedHostScan.Listing {
        let root = "\(stateDirectory)/nodes"
        var listing = SimulatedHostScan.Listing()
        let unchanged = scan == nil ? [] : watch?.unchangedListings(stateDirectory: stateDirectory) ?? []
        let names: [String]
        if let regions {
            names = regions.sorted()
        } else if unchanged.contains(""), let kept = scan?.regions() {
            names = kept
        } else {
            watch?.listing([""])
            names = FileStamp.names(in: root, suffix: "")
            scan?.keep(regions: names)
        }
        for region in names where !region.hasPrefix(".") {
            let directory = "\(root)/\(region)"
            listing.directories.append(region)
            if unchanged.contains(region), let kept = scan?.nodes(directory, stamp: nil) {
                listing.found.append(kept)
                continue
            }
            watch?.listing([region])
            let stamp = FileStamp(path: directory)?.description
            if let stamp, let kept = scan?.nodes(directory, stamp: stamp) {
                listing.found.append(kept)
                continue
            }
            listing.unchanged = false
            let found = FileStamp.names(in: directory, suffix: ".xml").map { Address(kind: .node, region: region, name: String($0.dropLast(4))) }
            scan?.keep(found, directory: directory, stamp: stamp)
            listing.found.append(found)
        }
        return listing
    }
}

/// What `LocalNodes.simulatedNodes` found in each region directory, by the directory's stamp (adding or removing a
/// host file changes it). For a long-running reconciler.
///
/// `@unchecked Sendable`: every access goes through `lock`.
public final class SimulatedHostScan: @unchecked Sendable {
    /// Each directory's last listing, with its stamp then (nil: it could not be stamped).
    private var directories: [String: (stamp: String?, nodes: [Address])] = [:]
    /// The last listing of `nodes` itself (the region directories).
    private var regionNames: [String]?
    let lock = NSLock()

    /// An empty scan.
    public init() {}

    /// The nodes `directory` held when last listed, if its stamp then was `stamp`; any stamp when nil (the caller
    /// knows from a watch that nothing happened in it since).
    func nodes(_ directory: String, stamp: String?) -> [Address]? {
        lock.withLock {
            directories[directory].flatMap { stamp == nil || $0.stamp == stamp ? $0.nodes : nil }
        }
    }

    func keep(_ nodes: [Address], directory: String, stamp: String?) {
        lock.withLock { directories[directory] = (stamp, nodes) }
    }

    func regions() -> [String]? {
        lock.withLock { regionNames }
    }

    func keep(regions: [String]) {
        lock.withLock { regionNames = regions }
    }

    /// One listing of the region directories.
    struct Listing {
        /// The nodes found in each directory (the kept arrays for unchanged ones: joined only when read).
        var found: [[Address]] = []
        var nodes: [Address] { Array(found.joined()) }
        /// The region directories listed, in order.
        var directories: [String] = []
        /// Whether every directory was as kept (its stamp unchanged).
        var unchanged = true
    }

    /// The endpoints last made, while `listing` lists the same directories unchanged for the same regions; else
    /// what `make` makes (kept from now on).
    private var lastEndpoints: (regions: Set<String>?, directories: [String], endpoints: [NodeEndpoint])?

    func endpoints(regions: Set<String>?, listing: Listing, make: () -> [NodeEndpoint]) -> [NodeEndpoint] {
        lock.lock()
        defer { lock.unlock() }
        if listing.unchanged, let last = lastEndpoints, last.regions == regions, last.directories == listing.directories { return last.endpoints }
        let endpoints = make()
        lastEndpoints = (regions, listing.directories, endpoints)
        return endpoints
    }
}
