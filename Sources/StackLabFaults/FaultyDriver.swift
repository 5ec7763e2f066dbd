import Foundation
import Drivers
import Manifests
import Planning
import Synchronization

/// Faults a real node cannot produce, for crash and pipeline tests, read from the environment of `stacklab-faults`
/// (never of `stacklab`):
/// - `STACKLAB_FAULT_KILL_AFTER_DRIVER_CALLS=N` kills the process (SIGKILL) right after its N-th driver call (a change
///   applied, a node's save of a batch, a traffic reading or a counter deletion), before the journal or the ledger
///   records it;
/// - `STACKLAB_FAULT_STOP_AFTER_DRIVER_CALLS=N` stops it (SIGSTOP, as a debugger or a frozen VM would) once, there;
/// - `STACKLAB_FAULT_FAIL_ADDRESS=instance/r/t/name` makes every change to that instance fail as its node refused it.
struct Faults: Sendable {
    var killAfter: Int?
    var stopAfter: Int?
    var failing: Address?

    init(environment: [String: String]) throws {
        killAfter = try environment["STACKLAB_FAULT_KILL_AFTER_DRIVER_CALLS"].map(Self.count)
        stopAfter = try environment["STACKLAB_FAULT_STOP_AFTER_DRIVER_CALLS"].map(Self.count)
        failing = try environment["STACKLAB_FAULT_FAIL_ADDRESS"].map { text in
            guard let address = Address(parsing: text), address.kind == .instance else { throw Invalid(text: "STACKLAB_FAULT_FAIL_ADDRESS=\(text) is not an instance address") }
            return address
        }
    }

    var isEmpty: Bool { killAfter == nil && stopAfter == nil && failing == nil }

    struct Invalid: Error, CustomStringConvertible {
        var text: String
        var description: String { text }
    }

    private static func count(_ text: String) throws -> Int {
        guard let count = Int(text), count > 0 else { throw Invalid(text: "a driver call count must be a positive number, not \(text)") }
        return count
    }

    /// Driver calls made so far by this process.
    static let calls = Mutex(0)

    /// Counts one driver call, and kills or stops the process when it is the one asked for.
    func counted() {
        guard killAfter != nil || stopAfter != nil else { return }
        let count = Self.calls.withLock { $0 += 1; return $0 }
        if let killAfter, count >= killAfter { kill(getpid(), SIGKILL) }
        if let stopAfter, count == stopAfter { kill(getpid(), SIGSTOP) }
    }

    /// Throws, as the node would, when `operation` changes the failing instance.
    func refuse(_ operation: NodeOperation, on node: Address) throws(DriverError) {
        guard let failing else { return }
        let hits: Bool = switch operation {
        case .defineDomain(let domain, _), .replaceDomain(let domain): domain.address == failing
        case .setPower(let domain, _): domain == "\(failing.tenant ?? ""):\(failing.name)"
        case .deleteDomain(_, let instance): instance == failing
        case .ensureNetwork, .deleteNetwork, .ensureVolume, .deleteVolume, .configureDHCP, .loadFirewall, .loadProxy, .installRing: false
        }
        if hits { throw Self.refusal(on: node) }
    }

    /// A move of the failing instance here is refused too.
    func refuse(receiving domain: DesiredDomain, on node: Address) throws(DriverError) {
        if let failing, domain.address == failing { throw Self.refusal(on: node) }
    }

    private static func refusal(on node: Address) -> DriverError {
        DriverError(node: node, message: "injected failure (STACKLAB_FAULT_FAIL_ADDRESS)", isTransient: false)
    }
}

/// A node driver with `faults` injected around every call that changes the node; everything else is passed through.
/// It has the capabilities its inner driver has, and no others.
struct FaultyDriver<Inner: NodeDriver>: NodeDriver {
    let inner: Inner
    let faults: Faults

    var address: Address { inner.address }
    func observe() throws(DriverError) -> ObservedNode { try inner.observe() }
    func usage() throws(DriverError) -> [InstanceUsage] { try inner.usage() }
    func readRing(_ file: String) throws(DriverError) -> Data { try inner.readRing(file) }
    func disconnect() { inner.disconnect() }

    /// A reading counts as a call (the meter's crash test kills right after it, before the ledger has it).
    func trafficReading() throws(DriverError) -> TrafficReading? {
        let reading = try inner.trafficReading()
        faults.counted()
        return reading
    }

    func deleteTrafficCounters(_ names: [String]) throws(DriverError) {
        try inner.deleteTrafficCounters(names)
        faults.counted()
    }

    func apply(_ operation: NodeOperation) throws(DriverError) {
        try faults.refuse(operation, on: address)
        try inner.apply(operation)
        faults.counted()
    }

    func receive(_ domain: DesiredDomain, from source: any NodeDriver, sourceDomain: String) throws(DriverError) {
        try faults.refuse(receiving: domain, on: address)
        try inner.receive(domain, from: source, sourceDomain: sourceDomain)
        faults.counted()
    }

    func exportVolume(pool: String, name: String, chunkSize: Int, _ consume: (_ capacity: UInt64, _ read: () throws -> Data?) throws -> Void) throws(DriverError) {
        try inner.exportVolume(pool: pool, name: name, chunkSize: chunkSize, consume)
        faults.counted()
    }

    func importVolume(pool: String, name: String, bytes: UInt64, _ produce: (_ write: (Data) throws -> Void) throws -> Void) throws(DriverError) {
        try inner.importVolume(pool: pool, name: name, bytes: bytes, produce)
        faults.counted()
    }
}

extension FaultyDriver: GenerationTracking where Inner: GenerationTracking {
    func generation() -> String? { inner.generation() }
    func observe(generation: String?) throws(DriverError) -> ObservedNode { try inner.observe(generation: generation) }
}

extension FaultyDriver: WriteBatching where Inner: WriteBatching {
    func apply(_ operation: NodeOperation, deferringWrite: Bool) throws(DriverError) {
        try faults.refuse(operation, on: address)
        try inner.apply(operation, deferringWrite: deferringWrite)
        faults.counted()
    }

    func flush() throws(DriverError) {
        try inner.flush()
        faults.counted()
    }
}

/// A move copies from the source's own libvirt node (a real node reaches the source itself).
extension FaultyDriver: LibvirtBacked where Inner: LibvirtBacked {
    var libvirtNode: LibvirtNode { inner.libvirtNode }
}

/// `driver` with `faults` injected, wrapped as its own type (opened from the existential) so its capabilities carry over.
func faulty<Driver: NodeDriver>(_ driver: Driver, _ faults: Faults) -> any NodeDriver {
    FaultyDriver(inner: driver, faults: faults)
}
