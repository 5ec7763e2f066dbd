import Billing
import Foundation
import Manifests
import Planning

/// Runs and the journal of every change: planned → started → done / failed / skipped, written before and after
/// each change acts, so an interrupted apply can be told and completed.
public protocol RunJournal: Sendable {
    /// Starts a run; runs left `running` by a process that died are closed as `interrupted` first. `undoes` names, for
    /// a run that goes back on purpose (a rollback), the revision each region is taken back from: the region then
    /// stays at the run's revision until a newer push than that one.
    func beginRun(regions: [String], revision: String?, undoes: [String: String]) throws -> Int64
    /// Ends a run.
    func finishRun(_ run: Int64, succeeded: Bool) throws
    /// Closes runs whose process died (`interrupted`), failing their unfinished changes; returns those changes.
    func recoverDeadRuns() throws -> [JournalEntry]
    /// Creates of instances interrupted by a dead run and not yet settled (no later entry for the same address).
    func unsettledInterruptedCreates() throws -> [JournalEntry]
    /// An interrupted create of an instance found done on its node afterwards: the entry becomes `done`
    /// (noting it was found at recovery) and the placement is recorded, as if the run had lived to write it.
    func settleInterrupted(_ entry: JournalEntry, node: Address, ip: IPv4Address, specHash: String) throws
    /// Whether this process may write the store (a read-only one still plans: nothing is remembered).
    var isWritable: Bool { get }
    /// Records every change of a run as planned, before any is attempted.
    func journalPlanned(_ changes: ChangeList, run: Int64) throws
    /// Moves a journal entry to `status`, counting attempts and keeping the error.
    func journal(_ change: Change, run: Int64, status: JournalEntry.Status, error: String?) throws
    /// Moves several journal entries to `status` in one transaction (an applier's batch of one node's changes).
    func journal(_ changes: [Change], run: Int64, status: JournalEntry.Status, error: String?) throws
    /// The journal of `run` (all runs when nil), oldest first.
    func journalEntries(run: Int64?) throws -> [JournalEntry]
    /// Every run, oldest first.
    func runs() throws -> [RunRecord]
    /// The runs of `region` alone at `revision` (how a deploy pipeline learns what the region's holder made of a
    /// revision it released), oldest first.
    func runs(region: String, revision: String) throws -> [RunRecord]
    /// For each of `addresses` that a run has changed, the last change done to it (the tenant console links each
    /// resource to it).
    func lastChanges(_ addresses: [Address]) throws -> [Address: LastChange]
    /// For each of `regions`, the last run that applied it successfully at a known revision (a region never applied
    /// is absent).
    func lastApplied(regions: [String]) throws -> [String: RunRecord]
    /// Where each instance was last made to run, from the journal's done changes: address → (node address, IP).
    func placements() throws -> [Address: Placement]
    /// Records that `region` was found converged at `revision` at `at` (seconds since the epoch). Every holder records
    /// it after every run that converged the region, one whose plan was empty too: a deploy learns from it that a region
    /// another reconciler holds has taken a release, which an empty plan's missing run row never says.
    func markConverged(region: String, revision: String, at: Double) throws
    /// For each of `regions`, the revision it was last found converged at, and when (a region never found is absent).
    func convergence(regions: [String]) throws -> [String: Convergence]
}

/// A region found converged at a revision.
public struct Convergence: Sendable, Equatable {
    public var revision: String
    public var at: Double

    public init(revision: String, at: Double) {
        self.revision = revision
        self.at = at
    }
}

/// Swift ring builders, one per ring address, saved with compare-and-swap so that two reconcilers never save over
/// each other's rebalance.
public protocol RingBuilderStore: Sendable {
    /// Every saved builder (those at `addresses` when given).
    func rings(_ addresses: Set<Address>?) throws -> [Address: StoredRing]
    /// For every saved ring, a stamp that changes whenever its saved state does, without reading the state.
    func ringStamps() throws -> [Address: String]
    /// Saves a builder if the ring file checksum saved now is still `previous` (nil: nothing saved yet); otherwise
    /// throws `StateConflict`. Saving the state that is already saved succeeds (an interrupted apply repeats it).
    func saveRing(address: Address, state: Data, checksum: String, previous: String?) throws
}

/// Plans of converged regions, by the key of their inputs.
public protocol PlanMemoStore: Sendable {
    /// Every remembered region plan: region → (input key, the plan as JSON).
    func regionMemos() throws -> [String: (key: String, plan: Data)]
    /// Remembers region plans (one transaction); a nil plan forgets the region.
    func saveRegionMemos(_ memos: [(region: String, key: String, plan: Data?)]) throws
}

/// Every node StackLab has changed, with how to reach it: a node (or region) that leaves the manifests is still
/// observed, so that what StackLab left on it is deleted or reported, never forgotten.
public protocol NodeInventory: Sendable {
    /// The nodes recorded (those of `regions` when given: a run over one region of many reads only its own).
    func knownNodes(in regions: Set<String>?) throws -> [NodeEndpoint]
    /// A number that changes whenever a node is recorded for the first time, recorded with another endpoint, or
    /// forgotten (never when a node is recorded as it already is). A caller that reads this before `knownNodes` may
    /// keep the nodes under it: while it is the same, so are they.
    func inventoryRevision() throws -> Int64
    /// Records nodes (before anything is changed on them).
    func rememberNodes(_ nodes: [NodeEndpoint]) throws
    /// Forgets nodes that hold nothing of StackLab's any more.
    func forgetNodes(_ nodes: [Address]) throws
}

/// One process applies a region at a time: a lease is held while a run works on the region and let go when the
/// returned holder is released. On one machine, a file lock; across machines, the shared database's leases.
public protocol RegionLeases: Sendable {
    /// Takes the lease on `region`, waiting up to `timeout` seconds; throws when another holder keeps it.
    func acquire(_ region: String, timeout: Double) throws -> AnyObject
    /// The regions, out of `regions`, that this process should work on now (see the default below).
    func claim(_ regions: [String]) throws -> [String]
}

/// Billing's ledger: metering intervals, opened, switched and closed by the journal writes of the changes that cause
/// them (in the same transaction), and the money tenants put in (deposits, coupons).
public protocol Ledger: Sendable {
    /// Every metering interval (of `tenant` when given), by tenant and start.
    func meterIntervals(tenant: String?) throws -> [MeterInterval]
    /// Every deposit and coupon (of `tenant` when given), oldest first.
    func accountEntries(tenant: String?) throws -> [AccountEntry]
    /// Records a deposit or a coupon; a coupon already redeemed by the tenant is refused.
    func recordAccount(_ entry: AccountEntry) throws
    /// The ledger's time now (seconds since the epoch).
    var now: Int64 { get }
    /// Changes of dead runs that carry meters, began (their driver call may have acted) and were never settled.
    func unsettledMeteredChanges() throws -> [JournalEntry]
    /// An interrupted change that took effect (a fresh plan no longer wants it): its meters apply from when it began,
    /// and its entry is recorded done, as if its run had lived to write it.
    func settleMeters(_ entry: JournalEntry) throws
}

/// One traffic counter's reading as the ledger records it: the instance and tenant it counts for, and the price list
/// that tenant is billed by.
public struct TrafficSample: Sendable, Hashable {
    public var counter: TrafficCounter
    public var tenant: String
    public var priceList: String
    /// The counter's bytes (cumulative within its epoch).
    public var bytes: Int64

    public init(counter: TrafficCounter, tenant: String, priceList: String, bytes: Int64) {
        self.counter = counter
        self.tenant = tenant
        self.priceList = priceList
        self.bytes = bytes
    }
}

/// Bandwidth's ledger: what each node's traffic counters have been accounted for up to, per epoch, and the bytes that
/// made, per instance and hour.
public protocol TrafficLedger: Sendable {
    /// Records what `node` (of `region`) counted in `epoch`, read at `time`, in one transaction: each counter's bytes
    /// past what the ledger already accounted for in that epoch go to its instance's hour, and the mark moves up. A
    /// reading recorded twice, or one older than the mark, adds nothing; a counter in a new epoch (a new table) counts
    /// from zero. On a shared database only the holder of the region's lease may record (else `RegionLeaseLost`).
    /// Returns the bytes added.
    @discardableResult
    func recordTraffic(region: String, node: Address, epoch: String, samples: [TrafficSample], at time: Int64) throws -> Int64
    /// Every hour's bytes (of `tenant` when given), by tenant, hour and instance.
    func trafficUsage(tenant: String?) throws -> [TrafficUsage]
}

/// Object storage's ledger: the bytes each tenant's account held, one sample per account, region and hour.
public protocol StorageLedger: Sendable {
    /// Records `samples` (each of its hour) in one transaction; a sample of an hour already recorded for its account
    /// adds nothing, so a sampling repeated after a crash, or by a second service, bills the hour once. On a shared
    /// database only the holder of `region`'s lease may record (else `RegionLeaseLost`). Returns how many were new.
    @discardableResult
    func recordStorage(region: String, samples: [StorageUsage]) throws -> Int
    /// Every recorded hour (of `tenant` when given), by tenant, region and hour.
    func storageUsage(tenant: String?) throws -> [StorageUsage]
}

/// Every pipeline run (gate, deploy, check): steps, verdicts, durations, logs.
public protocol PipelineHistory: Sendable {
    /// Keeps a run and returns its id: a new run when `run.id` is nil; otherwise the run kept before under that id
    /// gets the new verdict, time and steps (a deploy the service rolls out over several looks keeps one row).
    @discardableResult
    func recordPipelineRun(_ run: PipelineRunRecord) throws -> Int64
    /// The newest runs first, at most `limit`.
    func pipelineRuns(limit: Int) throws -> [PipelineRunRecord]
}


/// Everything a reconciler keeps: one backend implements all of it (SQLite embedded; PostgreSQL to share regions).
public typealias StateBackend = RunJournal & RingBuilderStore & PlanMemoStore & NodeInventory & Ledger & TrafficLedger & StorageLedger & PipelineHistory

/// A compare-and-swap that lost: someone else saved first.
public struct StateConflict: Error, CustomStringConvertible {
    /// What was being saved.
    public var address: String
    /// What the saver expected and what it found.
    public var expected: String?
    public var found: String?

    /// Creates a conflict report.
    public init(address: String, expected: String?, found: String?) {
        self.address = address
        self.expected = expected
        self.found = found
    }

    public var description: String {
        "\(address) was saved by someone else since it was planned (expected \(expected.map { String($0.prefix(12)) } ?? "nothing"), found \(found.map { String($0.prefix(12)) } ?? "nothing")); plan again"
    }
}

/// One journal row.
public struct JournalEntry: Sendable, Equatable {
    /// Where a change is in its life.
    public enum Status: String, Sendable {
        case planned, started, done, failed, skipped
    }

    public var run: Int64
    public var address: Address
    /// Where the change runs: a node, or its region.
    public var target: Change.Target
    public var action: Change.Action
    public var status: Status
    public var attempts: Int
    public var error: String?

    /// The change's id (its address at its target).
    public var changeID: ChangeID { ChangeID(address: address, target: target) }

    /// Creates an entry.
    public init(run: Int64, address: Address, target: Change.Target, action: Change.Action, status: Status, attempts: Int, error: String?) {
        self.run = run
        self.address = address
        self.target = target
        self.action = action
        self.status = status
        self.attempts = attempts
        self.error = error
    }

    /// An entry from a store's columns (text only inside SQL): throws, naming the column, when one does not read as
    /// what StackLab writes there.
    public init(run: Int64, storedAddress: String, target: String, action: String, status: String, attempts: Int, error: String?) throws(StoredTextError) {
        guard let address = Address(parsing: storedAddress) else { throw StoredTextError(table: "journal", column: "address", text: storedAddress) }
        guard let parsedTarget = Change.Target(parsing: target) else { throw StoredTextError(table: "journal", column: "node", text: target) }
        guard let parsedAction = Change.Action(rawValue: action) else { throw StoredTextError(table: "journal", column: "action", text: action) }
        guard let parsedStatus = Status(rawValue: status) else { throw StoredTextError(table: "journal", column: "status", text: status) }
        self.init(run: run, address: address, target: parsedTarget, action: parsedAction, status: parsedStatus, attempts: attempts, error: error)
    }
}

/// A stored value that does not read as what StackLab writes in its column (a row edited by hand, or written by a
/// newer build).
public struct StoredTextError: Error, CustomStringConvertible {
    public var table: String
    public var column: String
    public var text: String

    public init(table: String, column: String, text: String) {
        self.table = table
        self.column = column
        self.text = text
    }

    public var description: String {
        "the state store's \(table).\(column) holds '\(text)', which this build cannot read; was the row edited by hand, or written by a newer stacklab?"
    }
}

/// Where a run is in its life.
public enum RunStatus: String, Sendable, Codable, CaseIterable {
    /// Applying now (or its process died and no one closed it yet).
    case running
    case succeeded
    case failed
    /// Its process died (closed by the next start) or it lost its lease.
    case interrupted
}

extension RunStatus {
    /// The status as a store holds it; one this build does not know (written by a newer one) reads as interrupted, so
    /// nothing is taken as done or running from it.
    public init(stored text: String) {
        self = RunStatus(rawValue: text) ?? .interrupted
    }
}

/// One run row.
/// The last change done to a resource: the run that did it, what it did, when it finished, and the revision it applied.
public struct LastChange: Sendable, Equatable {
    public var run: Int64
    public var action: Change.Action
    /// When the change was done (seconds since the epoch).
    public var at: Double
    public var revision: String?

    public init(run: Int64, action: Change.Action, at: Double, revision: String?) {
        self.run = run
        self.action = action
        self.at = at
        self.revision = revision
    }

    /// The last changes among `rows` (address, run, action, time, revision), read oldest first: a later row replaces an
    /// earlier one of its address; a row whose address or action this build cannot read is left out.
    public static func latest(_ rows: [(address: String, run: Int64, action: String, at: Double, revision: String?)]) -> [Address: LastChange] {
        var latest: [Address: LastChange] = [:]
        for row in rows {
            guard let address = Address(parsing: row.address), let action = Change.Action(rawValue: row.action) else { continue }
            latest[address] = LastChange(run: row.run, action: action, at: row.at, revision: row.revision)
        }
        return latest
    }
}

public struct RunRecord: Sendable, Equatable {
    public var id: Int64
    /// The regions it applied.
    public var regions: [String]
    public var status: RunStatus
    /// The manifests revision it applied, and when it started (seconds since the epoch).
    public var revision: String?
    public var startedAt: Double
    /// A run that went back on purpose (a rollback): region → the revision it was taken back from. Empty otherwise.
    public var undoes: [String: String]

    /// Creates a run record.
    public init(id: Int64, regions: [String], status: RunStatus, revision: String? = nil, startedAt: Double = 0, undoes: [String: String] = [:]) {
        self.id = id
        self.regions = regions
        self.status = status
        self.revision = revision
        self.startedAt = startedAt
        self.undoes = undoes
    }

    /// The regions as stored: their names joined by commas (a region name never holds one).
    public static func regions(stored text: String) -> [String] {
        text.split(separator: ",").map(String.init)
    }

    /// `undoes` as stored: `region=revision` pairs joined by commas, sorted (nil when empty).
    public static func encode(undoes: [String: String]) -> String? {
        undoes.isEmpty ? nil : undoes.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
    }

    /// `undoes` from its stored text.
    public static func decode(undoes text: String?) -> [String: String] {
        var result: [String: String] = [:]
        for pair in (text ?? "").split(separator: ",") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            if parts.count == 2 { result[String(parts[0])] = String(parts[1]) }
        }
        return result
    }
}

extension RunJournal {
    /// Starts a run that does not go back on purpose.
    public func beginRun(regions: [String], revision: String?) throws -> Int64 {
        try beginRun(regions: regions, revision: revision, undoes: [:])
    }
}

/// A region held by another run or process (its lease or lock could not be had, or was lost): trying again later can
/// help.
public protocol RegionBusy: Error {}

/// A write refused because this process no longer holds the region's lease (it expired while the process was stopped
/// or cut off, and another may have taken the region over): nothing was written, and the run must stop.
public struct RegionLeaseLost: RegionBusy, CustomStringConvertible {
    /// The region, and what was found instead of this process's lease.
    public var region: String
    public var found: String

    /// Creates the error.
    public init(region: String, found: String) {
        self.region = region
        self.found = found
    }

    public var description: String {
        "the lease on region '\(region)' was lost (\(found)): this process may no longer write it; another reconciler carries on"
    }
}

extension RegionLeases {
    /// The regions, out of `regions`, that this process should work on now. One process alone works on all of them;
    /// processes that share regions each take a fair share and let go of the rest.
    public func claim(_ regions: [String]) throws -> [String] { regions }
}

extension NodeInventory {
    /// Every node recorded.
    public func knownNodes() throws -> [NodeEndpoint] { try knownNodes(in: nil) }
}

/// The rules both stores follow for traffic marks.
public enum TrafficMarks {
    /// How long a mark of an epoch that is no longer the node's is kept (a table restored by hand with its old epoch
    /// then adds nothing it was already billed for).
    public static let kept: Int64 = 40 * 86_400

    /// The bytes a reading adds past the mark: none when it is at or under it (a reading recorded twice, or read before
    /// one recorded already). StackLab never resets a counter within an epoch; one reset by hand (`nft reset`) is
    /// counted again only past its old value, in the tenant's favour.
    public static func delta(bytes: Int64, mark: Int64?) -> Int64 {
        max(0, bytes - (mark ?? 0))
    }

    /// The start of the hour `time` is in.
    public static func hour(of time: Int64) -> Int64 {
        time - ((time % 3_600) + 3_600) % 3_600
    }

    /// A usage row read back; nil when it is not one this version wrote.
    public static func usage(tenant: String, instance: String, direction: String, scope: String, priceList: String, hour: Int64, bytes: Int64) -> TrafficUsage? {
        guard let address = Address(parsing: instance), let direction = TrafficCounter.Direction(rawValue: direction),
              let scope = TrafficCounter.Scope(rawValue: scope) else { return nil }
        return TrafficUsage(tenant: tenant, instance: address, direction: direction, scope: scope, priceList: priceList, hour: hour, bytes: bytes)
    }
}
