import Billing
import Foundation
import Manifests
import Planning
import Postgres
import State
import Synchronization

/// StackLab's state on a shared PostgreSQL database: the same journal, ledger, ring builders, plan memo, node
/// inventory and pipeline history as the embedded SQLite store, plus what sharing needs: region leases with fencing
/// tokens and a heartbeat per process. Several reconcilers, on one machine or many, use one database; each region is
/// written by the holder of its lease only.
///
/// `@unchecked Sendable`: the connection serialises its own use, and the lease book is behind a `Mutex`.
public final class PostgresState: StateBackend, @unchecked Sendable {
    let connection: PostgresConnection
    /// The database (without a password), for messages.
    public let location: String
    let url: String
    /// This process's name in the database (host/pid/random): what leases and runs are owned by.
    public let owner: String
    /// How long a lease lasts without renewal, and so how soon a dead process's regions move, in seconds.
    public let leaseSeconds: Double
    /// `serve` for a long-running reconciler (counted when regions are shared out), `apply` for a one-off command.
    let role: String
    private let clockSetting: Mutex<@Sendable () -> Int64>
    /// The ledger's clock: the wall clock, or a fixed time (`--at`).
    var clock: @Sendable () -> Int64 {
        get { clockSetting.withLock { $0 } }
        set { clockSetting.withLock { $0 = newValue } }
    }
    let book = Mutex(LeaseBook())
    let heartbeat = Mutex<Heartbeat?>(nil)

    /// What this process holds: leases (region → token, and how many holders use each) and, per run it began, the
    /// tokens its writes carry.
    struct LeaseBook {
        var held: [String: (token: Int64, holds: Int)] = [:]
        var runFences: [Int64: [String: Int64]] = [:]
        /// Regions a service keeps between runs (`PostgresRegionLeases.claim`).
        var claimed: Set<String> = []
    }

    /// Connects to `url`, running the schema migrations not yet run.
    public init(url: String, leaseSeconds: Double = 15, role: String = "apply", clock: (@Sendable () -> Int64)? = nil) throws {
        self.url = url
        location = PostgresConnection.redacted(url)
        // A transaction this process leaves idle longer than its lease (the process paused or stuck) is ended by the
        // server: it would hold lease rows locked (`FOR SHARE`) against the survivor taking the region over.
        connection = try PostgresConnection(url: url, idleTransactionTimeout: leaseSeconds)
        try PostgresSchema.migrate(connection)
        owner = "\(Self.hostname)/\(getpid())/\(UUID().uuidString.prefix(8).lowercased())"
        self.leaseSeconds = leaseSeconds
        self.role = role
        clockSetting = Mutex(clock ?? { Int64(Date().timeIntervalSince1970) })
    }

    /// Sets the ledger's clock (a fixed time for demos and tests).
    public func setClock(_ clock: @escaping @Sendable () -> Int64) {
        self.clock = clock
    }

    deinit {
        close()
    }

    /// Lets go of every lease and stops the heartbeat (a graceful exit: survivors take the regions at once).
    public func close() {
        let beating = heartbeat.withLock { beat in
            defer { beat = nil }
            return beat
        }
        guard let beating else { return }
        beating.stop()
        _ = try? connection.execute("UPDATE region_lease SET expires_at = clock_timestamp() WHERE owner = $1 AND expires_at > clock_timestamp()", [owner])
        _ = try? connection.execute("DELETE FROM reconciler WHERE owner = $1", [owner])
        book.withLock { $0.held = [:] }
    }

    /// A PostgreSQL database takes writes (a read-only role would fail at its first write, with the server's message).
    public var isWritable: Bool { true }

    /// The ledger's time now.
    public var now: Int64 { clock() }

    static var timestamp: Double { Date().timeIntervalSince1970 }

    /// This machine's name as the kernel has it (no DNS lookup, unlike `ProcessInfo.hostName`).
    static let hostname: String = {
        var buffer = [UInt8](repeating: 0, count: 256)
        _ = buffer.withUnsafeMutableBufferPointer { gethostname(UnsafeMutableRawPointer($0.baseAddress!).assumingMemoryBound(to: CChar.self), 255) }
        return String(decoding: buffer.prefix { $0 != 0 }, as: UTF8.self)
    }()

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }()

    // MARK: Region plans

    public func regionMemos() throws -> [String: (key: String, plan: Data)] {
        var memos: [String: (key: String, plan: Data)] = [:]
        for row in try connection.execute("SELECT region, key, plan FROM region_memo").rows {
            memos[row.string("region")] = (row.string("key"), row.data("plan") ?? Data())
        }
        return memos
    }

    /// Plans are keyed by their inputs, so any process may remember one (no lease needed).
    public func saveRegionMemos(_ memos: [(region: String, key: String, plan: Data?)]) throws {
        guard !memos.isEmpty else { return }
        try connection.transaction { tx in
            for memo in memos {
                if let plan = memo.plan {
                    try tx.execute("""
                        INSERT INTO region_memo (region, key, plan, updated_at) VALUES ($1, $2, $3, $4)
                        ON CONFLICT (region) DO UPDATE SET key = excluded.key, plan = excluded.plan, updated_at = excluded.updated_at
                        """, [memo.region, memo.key, plan, Self.timestamp])
                } else {
                    try tx.execute("DELETE FROM region_memo WHERE region = $1", [memo.region])
                }
            }
        }
    }

    // MARK: Rings

    /// Saves a builder by compare-and-swap; the writer must hold the ring's region.
    public func saveRing(address ring: Address, state: Data, checksum: String, previous: String?) throws {
        let region = ring.region ?? ""
        let address = ring.description
        try connection.transaction { tx in
            try fence(tx, tokens: try heldTokens([region]))
            let found = try tx.execute("SELECT checksum FROM ring_state WHERE address = $1 FOR UPDATE", [address]).first?["checksum"]
            if found == checksum { return }
            guard found == previous else { throw StateConflict(address: address, expected: previous, found: found) }
            try tx.execute("""
                INSERT INTO ring_state (address, state, checksum, updated_at, generation) VALUES ($1, $2, $3, $4, 1)
                ON CONFLICT (address) DO UPDATE SET state = excluded.state, checksum = excluded.checksum, updated_at = excluded.updated_at,
                    generation = ring_state.generation + 1
                """, [address, state, checksum, Self.timestamp])
        }
    }

    public func rings(_ addresses: Set<Address>?) throws -> [Address: StoredRing] {
        var rings: [Address: StoredRing] = [:]
        let rows = try addresses.map {
            try connection.execute("SELECT address, state FROM ring_state WHERE address = ANY($1::text[])", [PostgresValue.textArray($0.map(\.description).sorted())])
        } ?? connection.execute("SELECT address, state FROM ring_state")
        for row in rows.rows {
            let text = row.string("address")
            guard let address = Address(parsing: text) else { throw StoredTextError(table: "ring_state", column: "address", text: text) }
            guard let data = row.data("state") else { continue }
            rings[address] = try StoredRing(stored: data, address: text)
        }
        return rings
    }

    public func ringStamps() throws -> [Address: String] {
        var stamps: [Address: String] = [:]
        for row in try connection.execute("SELECT address, checksum, generation FROM ring_state").rows {
            let text = row.string("address")
            guard let address = Address(parsing: text) else { throw StoredTextError(table: "ring_state", column: "address", text: text) }
            stamps[address] = "\(row.int64("generation") ?? 0):\(row.string("checksum"))"
        }
        return stamps
    }

    // MARK: Node inventory

    public func knownNodes(in regions: Set<String>?) throws -> [NodeEndpoint] {
        let rows = try regions.map {
            try connection.execute("SELECT * FROM node_inventory WHERE region = ANY($1::text[]) ORDER BY region, name", [PostgresValue.textArray($0.sorted())]).rows
        } ?? connection.execute("SELECT * FROM node_inventory ORDER BY region, name").rows
        return rows.map { row in
            NodeEndpoint(address: Address(kind: .node, region: row.string("region"), name: row.string("name")), libvirt: row.string("libvirt"),
                         cpus: row.int("cpus"), memoryKiB: UInt64(row.int64("memory_kib") ?? 0), hostKey: row["host_key"], fileRoot: row["file_root"])
        }
    }

    public func inventoryRevision() throws -> Int64 {
        try connection.execute("SELECT revision FROM node_inventory_revision").rows.first?.int64("revision") ?? 0
    }

    public func rememberNodes(_ nodes: [NodeEndpoint]) throws {
        guard !nodes.isEmpty else { return }
        try connection.transaction { tx in
            var changed = false
            for node in nodes {
                // A node recorded as it already is is not written: the revision stays, and so do the callers' kept copies.
                let written = try tx.execute("""
                    INSERT INTO node_inventory (region, name, libvirt, cpus, memory_kib, host_key, file_root, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                    ON CONFLICT (region, name) DO UPDATE SET libvirt = excluded.libvirt, cpus = excluded.cpus, memory_kib = excluded.memory_kib,
                        host_key = excluded.host_key, file_root = excluded.file_root, updated_at = excluded.updated_at
                    WHERE (node_inventory.libvirt, node_inventory.cpus, node_inventory.memory_kib, node_inventory.host_key, node_inventory.file_root)
                        IS DISTINCT FROM (excluded.libvirt, excluded.cpus, excluded.memory_kib, excluded.host_key, excluded.file_root)
                    """, [node.address.region ?? "", node.address.name, node.libvirt, node.cpus, Int64(node.memoryKiB), node.hostKey, node.fileRoot,
                          Self.timestamp])
                changed = changed || written.affected > 0
            }
            if changed { try tx.execute("UPDATE node_inventory_revision SET revision = revision + 1") }
        }
    }

    public func forgetNodes(_ nodes: [Address]) throws {
        guard !nodes.isEmpty else { return }
        try connection.transaction { tx in
            var changed = false
            for node in nodes {
                changed = try tx.execute("DELETE FROM node_inventory WHERE region = $1 AND name = $2", [node.region ?? "", node.name]).affected > 0 || changed
            }
            if changed { try tx.execute("UPDATE node_inventory_revision SET revision = revision + 1") }
        }
    }

    // MARK: Pipeline history

    @discardableResult
    public func recordPipelineRun(_ run: PipelineRunRecord) throws -> Int64 {
        if let id = run.id {
            let updated = try connection.execute("UPDATE pipeline_run SET verdict = $1, seconds = $2, steps = $3 WHERE id = $4", [run.verdict.rawValue, run.seconds, run.storedSteps, id])
            guard updated.affected == 1 else { throw PostgresError(operation: "update pipeline run \(id)", message: "there is no pipeline run \(id)") }
            return id
        }
        return try connection.execute("""
            INSERT INTO pipeline_run (kind, pipeline, subject, commit_id, verdict, started_at, seconds, steps) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id
            """, [run.kind.rawValue, run.pipeline, run.subject, run.commit, run.verdict.rawValue, run.startedAt, run.seconds, run.storedSteps]).first?.int64("id") ?? 0
    }

    public func pipelineRuns(limit: Int) throws -> [PipelineRunRecord] {
        try connection.execute("SELECT * FROM pipeline_run ORDER BY id DESC LIMIT $1", [limit]).rows.map { row in
            try PipelineRunRecord(id: row.int64("id"), storedKind: row.string("kind"), pipeline: row.string("pipeline"), subject: row.string("subject"),
                                  commit: row.string("commit_id"), verdict: row.int("verdict"), startedAt: row.double("started_at") ?? 0,
                                  seconds: row.double("seconds") ?? 0, storedSteps: row.string("steps"))
        }
    }
}
