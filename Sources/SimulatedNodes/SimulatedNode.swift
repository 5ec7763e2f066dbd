import Drivers
import Foundation
import Libvirt
import Manifests
import Planning
#if canImport(Glibc)
import Glibc
#endif

/// A simulated node: a `LibvirtNode` on a `SimulatedMachine`, with what only such a node can do: vouch for its
/// state by its files' stamps (`GenerationTracking`, with the observation saved at that generation), and hold its
/// writes back for one save per batch (`WriteBatching`).
public final class SimulatedNode: NodeDriver, GenerationTracking, WriteBatching, LibvirtBacked, @unchecked Sendable {
    public let libvirtNode: LibvirtNode
    let machine: SimulatedMachine
    /// Serialises writes of the saved observation.
    private let saving = NSLock()

    /// A driver for the simulated node at `endpoint` (also a node that left the manifests, known by its host file: `cpus`
    /// 0 then means "as the host file says"), kept under `stateDirectory`. Nothing is connected to until it is used.
    public init(endpoint: NodeEndpoint, stateDirectory: String) throws(DriverError) {
        guard endpoint.libvirt == "simulated" else {
            throw DriverError(node: endpoint.address, message: "'\(endpoint.libvirt)' is not a simulated node", isTransient: false)
        }
        machine = try SimulatedMachine(endpoint: endpoint, stateDirectory: stateDirectory)
        libvirtNode = LibvirtNode(address: endpoint.address, kind: .test, fileRoot: nil, machine: machine)
    }

    /// The node's host file: `<state>/nodes/<region>/<name>.xml`.
    public static func hostFile(stateDirectory: String, node: Address) -> String {
        "\(stateDirectory)/nodes/\(node.region ?? "-")/\(node.name).xml"
    }

    /// Where a node's last observation is saved (see `SavedObservation`): beside its host file, removed with it.
    public static func observationFile(hostFile: String) -> String {
        String(hostFile.dropLast(".xml".count)) + ".observed"
    }

    public var address: Address { libvirtNode.address }
    public var hostFile: String { machine.hostFile }

    public func usage() throws(DriverError) -> [InstanceUsage] {
        try libvirtNode.usage().map { var usage = $0; usage.simulated = true; return usage }
    }
    public func trafficReading() throws(DriverError) -> TrafficReading? { nil }
    public func deleteTrafficCounters(_ names: [String]) throws(DriverError) {}
    public func apply(_ operation: NodeOperation) throws(DriverError) { try libvirtNode.apply(operation) }
    public func readRing(_ file: String) throws(DriverError) -> Data { try libvirtNode.readRing(file) }
    public func disconnect() { libvirtNode.disconnect() }

    public func receive(_ domain: DesiredDomain, from source: any NodeDriver, sourceDomain: String) throws(DriverError) {
        try libvirtNode.receive(domain, from: source, sourceDomain: sourceDomain)
    }

    public func exportVolume(pool: String, name: String, chunkSize: Int, _ consume: (_ capacity: UInt64, _ read: () throws -> Data?) throws -> Void) throws(DriverError) {
        try libvirtNode.exportVolume(pool: pool, name: name, chunkSize: chunkSize, consume)
    }

    public func importVolume(pool: String, name: String, bytes: UInt64, _ produce: (_ write: (Data) throws -> Void) throws -> Void) throws(DriverError) {
        try libvirtNode.importVolume(pool: pool, name: name, bytes: bytes, produce)
    }

    // MARK: WriteBatching

    public func apply(_ operation: NodeOperation, deferringWrite: Bool) throws(DriverError) {
        try libvirtNode.apply(operation, deferringWrite: deferringWrite)
    }

    public func flush() throws(DriverError) {
        libvirtNode.lock.lock()
        defer { libvirtNode.lock.unlock() }
        try machine.flush(try libvirtNode.libvirt { () throws(LibvirtError) in try libvirtNode.connection })
    }

    // MARK: GenerationTracking

    public func generation() -> String? { machine.generation() }

    public func observe() throws(DriverError) -> ObservedNode {
        try observe(generation: generation())
    }

    /// A node whose saved observation was made at `generation` (read just before, so that a file changed meanwhile shows
    /// as another generation next time) is not parsed again; otherwise it is observed and the observation saved. Not
    /// while the connection holds changes its files do not (the node is then what the connection says).
    public func observe(generation: String?) throws(DriverError) -> ObservedNode {
        let file = Self.observationFile(hostFile: machine.hostFile)
        guard let generation, !machine.holdsUnsavedChanges else { return try libvirtNode.observe() }
        if let saved = SavedObservation.read(file, generation: generation) { return saved }
        let node = try libvirtNode.observe()
        if !machine.holdsUnsavedChanges {
            saving.withLock { SavedObservation.write(node, generation: generation, to: file) }
        }
        return node
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
        LocalNodes.simulatedNodes(stateDirectory: stateDirectory).count { node in
            unlink(observationFile(hostFile: hostFile(stateDirectory: stateDirectory, node: node))) == 0
        }
    }
}
