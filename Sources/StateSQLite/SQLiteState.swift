import Billing
import Foundation
import GRDB
import GRDBSQLite
import Manifests
import Planning
import State
import Synchronization

/// StackLab's state on this machine (SQLite, `stacklab.sqlite` in the state directory): runs, the journal of every
/// change, placements, ring builders, remembered plans and the node inventory. Every write is a transaction, so a
/// crash loses nothing that was recorded.
///
/// `@unchecked Sendable`: GRDB's `DatabaseQueue` serialises all access to the database.
public final class SQLiteState: StateBackend, @unchecked Sendable {
    private let queue: DatabaseQueue
    /// The state directory.
    public let directory: String
    /// Runs this process has begun and not finished: their liveness locks (descriptor, path).
    private let liveRuns = Mutex<[Int64: (descriptor: Int32, path: String)]>([:])
    /// The ledger's clock (seconds since the epoch): the wall clock, or a fixed time (`--at`) for demos and tests.
    private let clock: @Sendable () -> Int64

    /// The store in `directory` if one exists there (migrated if needed), or nil: reading state never creates it.
    public static func existing(directory: String, clock: (@Sendable () -> Int64)? = nil) throws -> SQLiteState? {
        FileManager.default.fileExists(atPath: "\(directory)/stacklab.sqlite") ? try SQLiteState(directory: directory, clock: clock) : nil
    }

    /// Why the store cannot be opened, naming its file.
    public struct OpenError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Opens (creating and migrating if needed) the store in `directory`. Processes starting at once migrate one after
    /// the other (an exclusive lock on `stacklab.sqlite.lock`), so two first applies never race on the schema. A store
    /// the process may not write is opened read-only (plans and drift need no write access); it must then already
    /// be migrated.
    public init(directory: String, clock: (@Sendable () -> Int64)? = nil) throws {
        self.directory = directory
        self.clock = clock ?? { Int64(Date().timeIntervalSince1970) }
        let path = "\(directory)/stacklab.sqlite"
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let writable = access(directory, W_OK) == 0 && (access(path, F_OK) != 0 || access(path, W_OK) == 0)
            var configuration = Configuration()
            configuration.busyMode = .timeout(10)
            configuration.readonly = !writable
            if writable {
                // Write-ahead log, synchronous FULL (the default): a commit appends to the log and syncs it once, and
                // is as durable as with the rollback journal, which made, synced and deleted a journal file for every
                // transaction (an apply commits two per node batch: at the medium size 17,070 fdatasyncs and 4,268
                // journal files became 4,359 fdatasyncs and none). The log and its index are kept when the last
                // connection closes, so that a process that may not write the directory can still open the store;
                // a log that a large transaction grew is cut back to 4 MiB when it starts over.
                configuration.prepareDatabase { db in
                    try db.execute(sql: "PRAGMA journal_mode = WAL")
                    try db.execute(sql: "PRAGMA journal_size_limit = 4194304")
                    var keep: Int32 = 1
                    _ = sqlite3_file_control(db.sqliteConnection, "main", SQLITE_FCNTL_PERSIST_WAL, &keep)
                }
                let lock = open("\(path).lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
                guard lock >= 0 else { throw OpenError(description: "cannot open \(path).lock: \(String(cString: strerror(errno)))") }
                defer { close(lock) }  // closing drops the lock
                flock(lock, LOCK_EX)
                queue = try DatabaseQueue(path: path, configuration: configuration)
                try Self.migrator.migrate(queue)
            } else {
                queue = try DatabaseQueue(path: path, configuration: configuration)
                guard try queue.read({ try Self.migrator.hasCompletedMigrations($0) }) else {
                    throw OpenError(description: "\(path) is read-only and needs migrating: run stacklab apply once with write access")
                }
            }
        } catch let error as OpenError {
            throw error
        } catch {
            throw OpenError(description: "state store \(path): \(error)")
        }
    }

    /// Whether this process may write the store.
    public var isWritable: Bool { !queue.configuration.readonly }

    private static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE run (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    regions TEXT NOT NULL,
                    revision TEXT,
                    pid INTEGER NOT NULL,
                    status TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'interrupted')),
                    started_at REAL NOT NULL,
                    finished_at REAL
                );
                CREATE TABLE journal (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    run_id INTEGER NOT NULL REFERENCES run(id),
                    change_id TEXT NOT NULL,
                    address TEXT NOT NULL,
                    node TEXT NOT NULL,
                    action TEXT NOT NULL,
                    reason TEXT NOT NULL,
                    status TEXT NOT NULL CHECK (status IN ('planned', 'started', 'done', 'failed', 'skipped')),
                    attempts INTEGER NOT NULL DEFAULT 0,
                    error TEXT,
                    updated_at REAL NOT NULL,
                    UNIQUE (run_id, change_id)
                );
                CREATE INDEX journal_by_address ON journal(address);
                CREATE TABLE placement (
                    address TEXT PRIMARY KEY,
                    node TEXT NOT NULL,
                    ip TEXT NOT NULL,
                    spec_hash TEXT NOT NULL,
                    updated_at REAL NOT NULL
                );
                """)
        }
        migrator.registerMigration("v2-rings") { db in
            try db.execute(sql: """
                CREATE TABLE ring_state (
                    address TEXT PRIMARY KEY,
                    state BLOB NOT NULL,
                    checksum TEXT NOT NULL,
                    updated_at REAL NOT NULL
                );
                """)
        }
        migrator.registerMigration("v3-region-memo") { db in
            try db.execute(sql: """
                CREATE TABLE region_memo (
                    region TEXT PRIMARY KEY,
                    key TEXT NOT NULL,
                    plan BLOB NOT NULL,
                    updated_at REAL NOT NULL
                );
                """)
        }
        migrator.registerMigration("v4-ring-generation") { db in
            try db.execute(sql: "ALTER TABLE ring_state ADD COLUMN generation INTEGER NOT NULL DEFAULT 0")
        }
        migrator.registerMigration("v5-node-inventory") { db in
            try db.execute(sql: """
                CREATE TABLE node_inventory (
                    region TEXT NOT NULL,
                    name TEXT NOT NULL,
                    libvirt TEXT NOT NULL,
                    cpus INTEGER NOT NULL,
                    memory_kib INTEGER NOT NULL,
                    updated_at REAL NOT NULL,
                    PRIMARY KEY (region, name)
                );
                """)
        }
        migrator.registerMigration("v6-run-liveness") { db in
            // A run holds an flock on locks/run-<liveness>.lock while it lives: a lock that can be taken is a dead run,
            // which a reused PID can never fake.
            try db.execute(sql: "ALTER TABLE run ADD COLUMN liveness TEXT")
        }
        migrator.registerMigration("v7-node-access") { db in
            // A production node that leaves the manifests is still reached (to delete what StackLab made on it) with the
            // host key and file root it had.
            try db.execute(sql: "ALTER TABLE node_inventory ADD COLUMN host_key TEXT")
            try db.execute(sql: "ALTER TABLE node_inventory ADD COLUMN file_root TEXT")
        }
        migrator.registerMigration("v8-ledger") { db in
            // Billing: each journal row carries the meters its change sets and stops, and when it started; metering
            // intervals are opened, switched and closed in the transaction of the journal write that causes them.
            try db.execute(sql: "ALTER TABLE journal ADD COLUMN meters TEXT")
            try db.execute(sql: "ALTER TABLE journal ADD COLUMN started_at INTEGER")
            try db.execute(sql: """
                CREATE TABLE meter_interval (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    resource TEXT NOT NULL,
                    address TEXT NOT NULL,
                    tenant TEXT NOT NULL,
                    kind TEXT NOT NULL,
                    item TEXT NOT NULL,
                    quantity INTEGER NOT NULL,
                    period TEXT NOT NULL,
                    price_list TEXT NOT NULL,
                    start INTEGER NOT NULL,
                    stop INTEGER,
                    opened_by TEXT NOT NULL,
                    closed_by TEXT,
                    UNIQUE (resource, start)
                )
                """)
            // At most one open interval per resource: a replay can never charge twice.
            try db.execute(sql: "CREATE UNIQUE INDEX meter_open ON meter_interval (resource) WHERE stop IS NULL")
            try db.execute(sql: "CREATE INDEX meter_tenant ON meter_interval (tenant, start)")
            try db.execute(sql: """
                CREATE TABLE account_entry (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    tenant TEXT NOT NULL,
                    kind TEXT NOT NULL,
                    amount_micros INTEGER NOT NULL,
                    discount_ppm INTEGER NOT NULL,
                    currency TEXT NOT NULL,
                    reference TEXT NOT NULL,
                    recorded_by TEXT NOT NULL,
                    at INTEGER NOT NULL,
                    expires INTEGER
                )
                """)
            // A coupon is redeemed once per tenant.
            try db.execute(sql: "CREATE UNIQUE INDEX account_coupon ON account_entry (tenant, reference) WHERE kind = 'coupon'")
        }
        migrator.registerMigration("v9-pipeline-history") { db in
            try db.execute(sql: """
                CREATE TABLE pipeline_run (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    kind TEXT NOT NULL,
                    pipeline TEXT NOT NULL,
                    subject TEXT NOT NULL,
                    commit_id TEXT NOT NULL,
                    verdict INTEGER NOT NULL,
                    started_at REAL NOT NULL,
                    seconds REAL NOT NULL,
                    steps TEXT NOT NULL
                )
                """)
        }
        // Every run's start asks for running runs and interrupted changes: with these, that costs what they hold, not
        // the whole history (a region's run at 100,000 instances spent 30 ms scanning the journal).
        migrator.registerMigration("v10-recovery-indexes") { db in
            try db.execute(sql: """
                CREATE INDEX run_running ON run (status) WHERE status = 'running';
                CREATE INDEX journal_interrupted ON journal (id) WHERE status = 'failed' AND error = 'interrupted';
                CREATE INDEX journal_by_change ON journal (change_id);
                """)
        }
        // A ring's stamp (checksum, generation) is stored after its builder, megabytes of JSON in overflow pages that
        // SQLite walks to reach the later columns: every plan read every builder to learn the stamps (172 MB, 0.25 s
        // from disk, for a region's run at 100,000 instances). The covering index holds the stamps on their own.
        migrator.registerMigration("v11-ring-stamps") { db in
            try db.execute(sql: "CREATE INDEX ring_stamp ON ring_state (address, checksum, generation)")
        }
        migrator.registerMigration("v12-ledger-reversals") { db in
            // An entry can be taken back by a reversal (an operator's, with a reason), once.
            try db.execute(sql: "ALTER TABLE account_entry ADD COLUMN reverses INTEGER")
            try db.execute(sql: "CREATE UNIQUE INDEX account_reversal ON account_entry (reverses) WHERE reverses IS NOT NULL")
        }
        migrator.registerMigration("v13-run-undoes") { db in
            // A rollback says which revision it took each region back from: the region stays there until a newer push.
            try db.execute(sql: "ALTER TABLE run ADD COLUMN undoes TEXT")
        }
        migrator.registerMigration("v14-region-convergence") { db in
            // Where each region was last found converged (a deploy's step for a region another reconciler holds).
            try db.execute(sql: "CREATE TABLE region_convergence (region TEXT PRIMARY KEY, revision TEXT NOT NULL, at REAL NOT NULL)")
        }
        migrator.registerMigration("v15-traffic") { db in
            // Bandwidth: each counter's mark per epoch, and the bytes per instance and hour (see TrafficLedger).
            try db.execute(sql: """
                CREATE TABLE traffic_mark (
                    node TEXT NOT NULL, counter TEXT NOT NULL, epoch TEXT NOT NULL, bytes INTEGER NOT NULL, read_at INTEGER NOT NULL,
                    PRIMARY KEY (node, counter, epoch))
                """)
            try db.execute(sql: """
                CREATE TABLE traffic_usage (
                    tenant TEXT NOT NULL, instance TEXT NOT NULL, direction TEXT NOT NULL, scope TEXT NOT NULL, price_list TEXT NOT NULL,
                    hour INTEGER NOT NULL, bytes INTEGER NOT NULL,
                    PRIMARY KEY (tenant, instance, direction, scope, price_list, hour))
                """)
        }
        migrator.registerMigration("v16-storage") { db in
            // Object storage: the bytes each tenant's account held, first sample of each hour (see StorageLedger).
            try db.execute(sql: """
                CREATE TABLE storage_usage (
                    tenant TEXT NOT NULL, region TEXT NOT NULL, price_list TEXT NOT NULL, hour INTEGER NOT NULL, bytes INTEGER NOT NULL,
                    PRIMARY KEY (tenant, region, hour))
                """)
        }
        migrator.registerMigration("v17-node-inventory-revision") { db in
            // A number that changes whenever the inventory does (see NodeInventory.inventoryRevision).
            try db.execute(sql: "CREATE TABLE node_inventory_revision (revision INTEGER NOT NULL)")
            try db.execute(sql: "INSERT INTO node_inventory_revision (revision) VALUES (0)")
        }
        return migrator
    }

    // MARK: Region plans

    /// Every remembered region plan: region → (input key, the plan as JSON).
    public func regionMemos() throws -> [String: (key: String, plan: Data)] {
        try queue.read { db in
            var memos: [String: (key: String, plan: Data)] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT region, key, plan FROM region_memo") { memos[row["region"]] = (row["key"], row["plan"]) }
            return memos
        }
    }

    /// Remembers region plans (one transaction); a nil plan forgets the region.
    public func saveRegionMemos(_ memos: [(region: String, key: String, plan: Data?)]) throws {
        guard !memos.isEmpty else { return }
        try queue.write { db in
            for memo in memos {
                if let plan = memo.plan {
                    try db.execute(sql: """
                        INSERT INTO region_memo (region, key, plan, updated_at) VALUES (?, ?, ?, ?)
                        ON CONFLICT(region) DO UPDATE SET key = excluded.key, plan = excluded.plan, updated_at = excluded.updated_at
                        """, arguments: [memo.region, memo.key, plan, Date().timeIntervalSince1970])
                } else {
                    try db.execute(sql: "DELETE FROM region_memo WHERE region = ?", arguments: [memo.region])
                }
            }
        }
    }

    // MARK: Rings

    public func saveRing(address ring: Address, state: Data, checksum: String, previous: String?) throws {
        let address = ring.description
        try queue.write { db in
            let found = try String.fetchOne(db, sql: "SELECT checksum FROM ring_state INDEXED BY ring_stamp WHERE address = ?", arguments: [address])
            if found == checksum { return }  // already saved (an interrupted apply repeats the change)
            guard found == previous else { throw StateConflict(address: address, expected: previous, found: found) }
            try db.execute(sql: """
                INSERT INTO ring_state (address, state, checksum, updated_at, generation) VALUES (?, ?, ?, ?, 1)
                ON CONFLICT(address) DO UPDATE SET state = excluded.state, checksum = excluded.checksum, updated_at = excluded.updated_at,
                    generation = ring_state.generation + 1
                """, arguments: [address, state, checksum, Date().timeIntervalSince1970])
        }
    }

    public func rings(_ addresses: Set<Address>? = nil) throws -> [Address: StoredRing] {
        try queue.read { db in
            var rings: [Address: StoredRing] = [:]
            let rows = try addresses.map { wanted in
                try Row.fetchAll(db, sql: "SELECT address, state FROM ring_state WHERE address IN (SELECT value FROM json_each(?))",
                                 arguments: [String(decoding: try JSONEncoder().encode(wanted.map(\.description).sorted()), as: UTF8.self)])
            } ?? Row.fetchAll(db, sql: "SELECT address, state FROM ring_state")
            for row in rows {
                let text: String = row["address"]
                guard let address = Address(parsing: text) else { throw StoredTextError(table: "ring_state", column: "address", text: text) }
                let data: Data = row["state"]
                rings[address] = try StoredRing(stored: data, address: text)
            }
            return rings
        }
    }

    /// For every saved ring, a stamp that changes whenever its saved state does (the save's generation, counted
    /// by every save, and the ring file's checksum), without reading the state.
    public func ringStamps() throws -> [Address: String] {
        try queue.read { db in
            var stamps: [Address: String] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT address, checksum, generation FROM ring_state INDEXED BY ring_stamp") {
                let text: String = row["address"]
                guard let address = Address(parsing: text) else { throw StoredTextError(table: "ring_state", column: "address", text: text) }
                stamps[address] = "\(row["generation"] as Int64):\(row["checksum"] as String)"
            }
            return stamps
        }
    }

    // MARK: Runs

    /// Starts a run; runs left `running` by a process that died are closed first (`recoverDeadRuns`).
    public func beginRun(regions: [String], revision: String?, undoes: [String: String]) throws -> Int64 {
        _ = try recoverDeadRuns()
        let token = UUID().uuidString.lowercased()
        let lockPath = Self.livenessLock(directory: directory, token: token)
        try FileManager.default.createDirectory(atPath: (lockPath as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let descriptor = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0, flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            throw OpenError(description: "cannot lock \(lockPath): \(String(cString: strerror(errno)))")
        }
        let run = try queue.write { db in
            try db.execute(sql: "INSERT INTO run (regions, revision, pid, status, started_at, liveness, undoes) VALUES (?, ?, ?, 'running', ?, ?, ?)",
                           arguments: [regions.joined(separator: ","), revision, getpid(), Date().timeIntervalSince1970, token, RunRecord.encode(undoes: undoes)])
            return db.lastInsertedRowID
        }
        liveRuns.withLock { $0[run] = (descriptor, lockPath) }
        return run
    }

    /// Ends a run (and lets go of its liveness lock).
    public func finishRun(_ run: Int64, succeeded: Bool) throws {
        try queue.write { db in
            try db.execute(sql: "UPDATE run SET status = ?, finished_at = ? WHERE id = ?",
                           arguments: [succeeded ? "succeeded" : "failed", Date().timeIntervalSince1970, run])
        }
        if let held = liveRuns.withLock({ $0.removeValue(forKey: run) }) {
            unlink(held.path)
            close(held.descriptor)
        }
    }

    /// Closes every run left `running` by a process that died: the run becomes `interrupted`, and its changes still
    /// `planned` or `started` become `failed` ("interrupted"; the next plan checks each against its node). A run is
    /// alive only while its liveness lock is held; runs from before liveness locks fall back to their PID. Returns
    /// the entries it closed. A read-only store recovers nothing.
    public func recoverDeadRuns() throws -> [JournalEntry] {
        guard isWritable else { return [] }
        let ours = liveRuns.withLock { Set($0.keys) }
        let candidates = try queue.read { db in
            try Row.fetchAll(db, sql: "SELECT id, pid, liveness FROM run WHERE status = 'running'").map { row in
                (id: row["id"] as Int64, pid: row["pid"] as Int32, liveness: row["liveness"] as String?)
            }
        }
        var dead: [Int64] = []
        for run in candidates where !ours.contains(run.id) {
            if let token = run.liveness {
                let path = Self.livenessLock(directory: directory, token: token)
                let descriptor = open(path, O_RDWR | O_CLOEXEC)
                if descriptor < 0 {
                    dead.append(run.id)  // its process removed it on the way out, or never got that far
                } else {
                    if flock(descriptor, LOCK_EX | LOCK_NB) == 0 {
                        dead.append(run.id)
                        unlink(path)
                    }
                    close(descriptor)
                }
            } else if kill(run.pid, 0) != 0 && errno == ESRCH || run.pid == getpid() {
                dead.append(run.id)
            }
        }
        guard !dead.isEmpty else { return [] }
        return try queue.write { db in
            var closed: [JournalEntry] = []
            for id in dead {
                closed += try Self.entries(db, run: id).filter { $0.status == .planned || $0.status == .started }
                try db.execute(sql: "UPDATE run SET status = 'interrupted', finished_at = ? WHERE id = ? AND status = 'running'",
                               arguments: [Date().timeIntervalSince1970, id])
                try db.execute(sql: "UPDATE journal SET status = 'failed', error = 'interrupted' WHERE run_id = ? AND status IN ('planned', 'started')",
                               arguments: [id])
            }
            return closed
        }
    }

    public func unsettledInterruptedCreates() throws -> [JournalEntry] {
        try queue.read { db in
            try Row.fetchAll(db, sql: """
                SELECT * FROM journal j WHERE j.status = 'failed' AND j.error = 'interrupted' AND j.action = 'create'
                AND NOT EXISTS (SELECT 1 FROM journal k WHERE k.address = j.address AND k.id > j.id) ORDER BY j.id
                """).map(Self.entry)
        }
    }

    public func settleInterrupted(_ entry: JournalEntry, node: Address, ip: IPv4Address, specHash: String) throws {
        try queue.write { db in
            try db.execute(sql: """
                UPDATE journal SET status = 'done', error = 'interrupted; found done on the node at recovery', updated_at = ?
                WHERE run_id = ? AND change_id = ? AND status = 'failed'
                """, arguments: [Date().timeIntervalSince1970, entry.run, entry.changeID.description])
            try db.execute(sql: """
                INSERT INTO placement (address, node, ip, spec_hash, updated_at) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT(address) DO UPDATE SET node = excluded.node, ip = excluded.ip, spec_hash = excluded.spec_hash, updated_at = excluded.updated_at
                """, arguments: [entry.address.description, node.description, ip.description, specHash, Date().timeIntervalSince1970])
            // Charged from when its create began, as if the run had lived to record it.
            let row = try Row.fetchOne(db, sql: "SELECT meters, started_at FROM journal WHERE run_id = ? AND change_id = ?", arguments: [entry.run, entry.changeID.description])
            if let text: String = row?["meters"], let meters = try? JSONDecoder().decode([Meter].self, from: Data(text.utf8)) {
                try Self.meter(meters, at: row?["started_at"] ?? clock(), by: entry.changeID.description, in: db)
            }
        }
    }

    /// Carries out `MeterRules` for each meter at `time`, in the journal write's transaction.
    private static func meter(_ meters: [Meter], at time: Int64, by change: String, in db: Database) throws {
        for meter in meters {
            let open = try Row.fetchOne(db.cachedStatement(sql: "SELECT id, item, quantity, period, price_list, start FROM meter_interval WHERE resource = ? AND stop IS NULL"),
                                        arguments: [meter.resource.description]).map {
                MeterRules.OpenInterval(id: $0["id"], item: $0["item"], quantity: $0["quantity"], period: $0["period"], priceList: $0["price_list"], start: $0["start"])
            }
            switch MeterRules.step(meter, open: open, at: time) {
            case .keep:
                continue
            case .amend(let id):
                try db.execute(sql: "UPDATE meter_interval SET item = ?, quantity = ?, period = ?, price_list = ?, opened_by = ? WHERE id = ?",
                               arguments: [meter.item, meter.quantity, meter.period.rawValue, meter.priceList, change, id])
                continue
            case .close(let id):
                try db.execute(sql: "UPDATE meter_interval SET stop = ?, closed_by = ? WHERE id = ?", arguments: [time, change, id])
            case .open:
                break
            }
            let start = time
            try db.cachedStatement(sql: """
                INSERT INTO meter_interval (resource, address, tenant, kind, item, quantity, period, price_list, start, opened_by)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (resource, start) DO NOTHING
                """).execute(arguments: [meter.resource.description, meter.address.description, meter.tenant, meter.kind.rawValue, meter.item, meter.quantity,
                                 meter.period.rawValue, meter.priceList, start, change])
        }
    }

    // MARK: Ledger

    public func meterIntervals(tenant: String?) throws -> [MeterInterval] {
        try queue.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM meter_interval \(tenant == nil ? "" : "WHERE tenant = ?") ORDER BY tenant, start, resource",
                             arguments: tenant.map { [$0] } ?? []).map { row in
                try MeterInterval(storedAddress: row["address"], tenant: row["tenant"], storedKind: row["kind"], item: row["item"], quantity: row["quantity"],
                                  storedPeriod: row["period"], priceList: row["price_list"], start: row["start"], stop: row["stop"])
            }
        }
    }

    public func accountEntries(tenant: String?) throws -> [AccountEntry] {
        try queue.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM account_entry \(tenant == nil ? "" : "WHERE tenant = ?") ORDER BY at, id",
                             arguments: tenant.map { [$0] } ?? []).map { row in
                AccountEntry(tenant: row["tenant"], kind: AccountEntry.Kind(rawValue: row["kind"]) ?? .deposit,
                             amount: Money(micros: Int128(row["amount_micros"] as Int64)),
                             discountPPM: row["discount_ppm"], currency: row["currency"], reference: row["reference"], by: row["recorded_by"],
                             at: row["at"], expires: row["expires"], id: row["id"], reverses: row["reverses"])
            }
        }
    }

    public func recordAccount(_ entry: AccountEntry) throws {
        let amount = try entry.storedAmount()
        try queue.write { db in
            try db.execute(sql: """
                INSERT INTO account_entry (tenant, kind, amount_micros, discount_ppm, currency, reference, recorded_by, at, expires, reverses)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [entry.tenant, entry.kind.rawValue, amount, entry.discountPPM, entry.currency, entry.reference, entry.by,
                                 entry.at, entry.expires, entry.reverses])
        }
    }

    /// The ledger's time now.
    public var now: Int64 { clock() }

    // MARK: Traffic

    @discardableResult
    public func recordTraffic(region: String, node: Address, epoch: String, samples: [TrafficSample], at time: Int64) throws -> Int64 {
        try queue.write { db in
            var added: Int64 = 0
            for sample in samples {
                let mark = try Int64.fetchOne(db.cachedStatement(sql: "SELECT bytes FROM traffic_mark WHERE node = ? AND counter = ? AND epoch = ?"),
                                              arguments: [node.description, sample.counter.name, epoch])
                let delta = TrafficMarks.delta(bytes: sample.bytes, mark: mark)
                guard delta > 0 || mark == nil else { continue }
                try db.cachedStatement(sql: """
                    INSERT INTO traffic_mark (node, counter, epoch, bytes, read_at) VALUES (?, ?, ?, ?, ?)
                    ON CONFLICT (node, counter, epoch) DO UPDATE SET bytes = excluded.bytes, read_at = excluded.read_at
                    """).execute(arguments: [node.description, sample.counter.name, epoch, max(sample.bytes, mark ?? 0), time])
                guard delta > 0 else { continue }
                try db.cachedStatement(sql: """
                    INSERT INTO traffic_usage (tenant, instance, direction, scope, price_list, hour, bytes) VALUES (?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (tenant, instance, direction, scope, price_list, hour) DO UPDATE SET bytes = bytes + excluded.bytes
                    """).execute(arguments: [sample.tenant, sample.counter.instance.description, sample.counter.direction.rawValue, sample.counter.scope.rawValue,
                                             sample.priceList, TrafficMarks.hour(of: time), delta])
                added += delta
            }
            try db.execute(sql: "DELETE FROM traffic_mark WHERE node = ? AND epoch <> ? AND read_at < ?",
                           arguments: [node.description, epoch, time - TrafficMarks.kept])
            return added
        }
    }

    @discardableResult
    public func recordStorage(region: String, samples: [StorageUsage]) throws -> Int {
        try queue.write { db in
            var added = 0
            for sample in samples where sample.region == region {
                try db.cachedStatement(sql: """
                    INSERT INTO storage_usage (tenant, region, price_list, hour, bytes) VALUES (?, ?, ?, ?, ?) ON CONFLICT (tenant, region, hour) DO NOTHING
                    """).execute(arguments: [sample.tenant, region, sample.priceList, sample.hour, sample.bytes])
                added += db.changesCount
            }
            return added
        }
    }

    public func storageUsage(tenant: String?) throws -> [StorageUsage] {
        try queue.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM storage_usage \(tenant == nil ? "" : "WHERE tenant = ?") ORDER BY tenant, region, hour",
                             arguments: tenant.map { [$0] } ?? []).map { row in
                StorageUsage(tenant: row["tenant"], region: row["region"], priceList: row["price_list"], hour: row["hour"], bytes: row["bytes"])
            }
        }
    }

    public func trafficUsage(tenant: String?) throws -> [TrafficUsage] {
        try queue.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM traffic_usage \(tenant == nil ? "" : "WHERE tenant = ?") ORDER BY tenant, hour, instance, direction, scope",
                             arguments: tenant.map { [$0] } ?? []).compactMap { row in
                TrafficMarks.usage(tenant: row["tenant"], instance: row["instance"], direction: row["direction"], scope: row["scope"],
                                   priceList: row["price_list"], hour: row["hour"], bytes: row["bytes"])
            }
        }
    }

    // MARK: Pipeline history

    @discardableResult
    public func recordPipelineRun(_ run: PipelineRunRecord) throws -> Int64 {
        try queue.write { db in
            if let id = run.id {
                try db.execute(sql: "UPDATE pipeline_run SET verdict = ?, seconds = ?, steps = ? WHERE id = ?", arguments: [run.verdict.rawValue, run.seconds, run.storedSteps, id])
                guard db.changesCount == 1 else { throw OpenError(description: "\(directory)/stacklab.sqlite has no pipeline run \(id) to update") }
                return id
            }
            try db.execute(sql: "INSERT INTO pipeline_run (kind, pipeline, subject, commit_id, verdict, started_at, seconds, steps) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                           arguments: [run.kind.rawValue, run.pipeline, run.subject, run.commit, run.verdict.rawValue, run.startedAt, run.seconds, run.storedSteps])
            return db.lastInsertedRowID
        }
    }

    public func pipelineRuns(limit: Int) throws -> [PipelineRunRecord] {
        try queue.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM pipeline_run ORDER BY id DESC LIMIT ?", arguments: [limit]).map { row in
                try PipelineRunRecord(id: row["id"], storedKind: row["kind"], pipeline: row["pipeline"], subject: row["subject"], commit: row["commit_id"],
                                      verdict: row["verdict"], startedAt: row["started_at"], seconds: row["seconds"], storedSteps: row["steps"])
            }
        }
    }

    public func unsettledMeteredChanges() throws -> [JournalEntry] {
        try queue.read { db in
            try Row.fetchAll(db, sql: """
                SELECT * FROM journal j WHERE j.status = 'failed' AND j.error = 'interrupted' AND j.meters IS NOT NULL AND j.started_at IS NOT NULL
                AND NOT EXISTS (SELECT 1 FROM journal k WHERE k.change_id = j.change_id AND k.id > j.id) ORDER BY j.id
                """).map(Self.entry)
        }
    }

    public func settleMeters(_ entry: JournalEntry) throws {
        try queue.write { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT meters, started_at FROM journal WHERE run_id = ? AND change_id = ? AND status = 'failed'",
                                             arguments: [entry.run, entry.changeID.description]) else { return }
            try db.execute(sql: "UPDATE journal SET status = 'done', error = 'interrupted; found done at recovery', updated_at = ? WHERE run_id = ? AND change_id = ?",
                           arguments: [Date().timeIntervalSince1970, entry.run, entry.changeID.description])
            if let text: String = row["meters"], let meters = try? JSONDecoder().decode([Meter].self, from: Data(text.utf8)) {
                try Self.meter(meters, at: row["started_at"] ?? clock(), by: entry.changeID.description, in: db)
            }
        }
    }

    private static func livenessLock(directory: String, token: String) -> String {
        "\(directory)/locks/run-\(token).lock"
    }

    // MARK: Journal

    /// Records every change of a run as planned, before any is attempted.
    /// Charging of what the changes delete stops now, in the same transaction: the delete was requested, whatever
    /// becomes of the real teardown.
    public func journalPlanned(_ changes: ChangeList, run: Int64) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try queue.write { db in
            let now = Date().timeIntervalSince1970
            let requested = clock()
            for change in changes {
                let meters = change.meters.isEmpty ? nil : String(decoding: try encoder.encode(change.meters), as: UTF8.self)
                try db.cachedStatement(sql: """
                    INSERT INTO journal (run_id, change_id, address, node, action, reason, status, updated_at, meters)
                    VALUES (?, ?, ?, ?, ?, ?, 'planned', ?, ?)
                    """).execute(arguments: [run, change.id.description, change.address.description, change.target.description, change.action.rawValue,
                                     change.reason.rawValue, now, meters])
                for resource in change.stopsMeters {
                    try db.execute(sql: "UPDATE meter_interval SET stop = max(start, ?), closed_by = ? WHERE resource = ? AND stop IS NULL",
                                   arguments: [requested, change.id.description, resource.description])
                }
            }
        }
    }

    /// Moves a journal entry to `status` (started/done/failed/skipped), counting attempts and keeping the error.
    public func journal(_ change: Change, run: Int64, status: JournalEntry.Status, error: String? = nil) throws {
        try journal([change], run: run, status: status, error: error)
    }

    /// Moves several journal entries to `status` in one transaction.
    public func journal(_ changes: [Change], run: Int64, status: JournalEntry.Status, error: String?) throws {
        guard !changes.isEmpty else { return }
        try queue.write { db in
            let now = Date().timeIntervalSince1970
            let started = clock()
            if status != .done {
                // Nothing else is recorded for these: one statement per hundred changes.
                for part in stride(from: 0, to: changes.count, by: 100) {
                    let ids = changes[part..<min(part + 100, changes.count)].map(\.id.description)
                    let head: [(any DatabaseValueConvertible)?] = [status.rawValue, error, now, status.rawValue, status.rawValue, started, run]
                    try db.cachedStatement(sql: """
                        UPDATE journal SET status = ?, error = ?, updated_at = ?, attempts = attempts + (CASE WHEN ? = 'started' THEN 1 ELSE 0 END),
                        started_at = (CASE WHEN ? = 'started' AND started_at IS NULL THEN ? ELSE started_at END)
                        WHERE run_id = ? AND change_id IN (\(Array(repeating: "?", count: ids.count).joined(separator: ", ")))
                        """).execute(arguments: StatementArguments(head) + StatementArguments(ids))
                }
                return
            }
            for change in changes {
                try db.cachedStatement(sql: """
                    UPDATE journal SET status = ?, error = ?, updated_at = ?, attempts = attempts + (CASE WHEN ? = 'started' THEN 1 ELSE 0 END),
                    started_at = (CASE WHEN ? = 'started' AND started_at IS NULL THEN ? ELSE started_at END)
                    WHERE run_id = ? AND change_id = ?
                    """).execute(arguments: [status.rawValue, error, now, status.rawValue, status.rawValue, started, run, change.id.description])
                guard status == .done else { continue }
                try Self.record(change, in: db)
                guard !change.meters.isEmpty else { continue }
                let began = try Int64.fetchOne(db.cachedStatement(sql: "SELECT started_at FROM journal WHERE run_id = ? AND change_id = ?"),
                                               arguments: [run, change.id.description]) ?? started
                try Self.meter(change.meters, at: began, by: change.id.description, in: db)
            }
        }
    }

    private static func record(_ change: Change, in db: Database) throws {
        switch change.placementEffect {
        case .forget(let node):
            try db.cachedStatement(sql: "DELETE FROM placement WHERE address = ? AND node = ?").execute(arguments: [change.address.description, node])
        case .place(let node, let ip, let specHash):
            try db.cachedStatement(sql: """
                INSERT INTO placement (address, node, ip, spec_hash, updated_at) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT(address) DO UPDATE SET node = excluded.node, ip = excluded.ip, spec_hash = excluded.spec_hash, updated_at = excluded.updated_at
                """).execute(arguments: [change.address.description, node, ip, specHash, Date().timeIntervalSince1970])
        case nil:
            return
        }
    }

    // MARK: Node inventory

    public func knownNodes(in regions: Set<String>?) throws -> [NodeEndpoint] {
        try queue.read { db in
            let columns = "SELECT region, name, libvirt, cpus, memory_kib, host_key, file_root FROM node_inventory"
            let rows = try regions.map { wanted in
                try wanted.sorted().flatMap { try Row.fetchAll(db, sql: columns + " WHERE region = ? ORDER BY name", arguments: [$0]) }
            } ?? Row.fetchAll(db, sql: columns + " ORDER BY region, name")
            // By position: the columns are named above.
            return rows.map { row in
                NodeEndpoint(address: Address(kind: .node, region: row[0], name: row[1]), libvirt: row[2], cpus: row[3],
                             memoryKiB: UInt64(row[4] as Int64), hostKey: row[5], fileRoot: row[6])
            }
        }
    }

    public func inventoryRevision() throws -> Int64 {
        try queue.read { db in try Int64.fetchOne(db, sql: "SELECT revision FROM node_inventory_revision") ?? 0 }
    }

    public func rememberNodes(_ nodes: [NodeEndpoint]) throws {
        guard !nodes.isEmpty else { return }
        try queue.write { db in
            let now = Date().timeIntervalSince1970
            var changed = false
            for node in nodes {
                // A node recorded as it already is is not written: the revision stays, and so do the callers' kept copies.
                try db.cachedStatement(sql: """
                    INSERT INTO node_inventory (region, name, libvirt, cpus, memory_kib, host_key, file_root, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT(region, name) DO UPDATE SET libvirt = excluded.libvirt, cpus = excluded.cpus, memory_kib = excluded.memory_kib,
                        host_key = excluded.host_key, file_root = excluded.file_root, updated_at = excluded.updated_at
                    WHERE libvirt IS NOT excluded.libvirt OR cpus IS NOT excluded.cpus OR memory_kib IS NOT excluded.memory_kib
                        OR host_key IS NOT excluded.host_key OR file_root IS NOT excluded.file_root
                    """).execute(arguments: [node.address.region ?? "", node.address.name, node.libvirt, node.cpus, Int64(node.memoryKiB),
                                             node.hostKey, node.fileRoot, now])
                changed = changed || db.changesCount > 0
            }
            if changed { try Self.nextInventoryRevision(db) }
        }
    }

    public func forgetNodes(_ nodes: [Address]) throws {
        guard !nodes.isEmpty else { return }
        try queue.write { db in
            var changed = false
            for node in nodes {
                try db.execute(sql: "DELETE FROM node_inventory WHERE region = ? AND name = ?", arguments: [node.region ?? "", node.name])
                changed = changed || db.changesCount > 0
            }
            if changed { try Self.nextInventoryRevision(db) }
        }
    }

    private static func nextInventoryRevision(_ db: Database) throws {
        try db.execute(sql: "UPDATE node_inventory_revision SET revision = revision + 1")
    }

    public func journalEntries(run: Int64? = nil) throws -> [JournalEntry] {
        try queue.read { db in try Self.entries(db, run: run) }
    }

    private static func entries(_ db: Database, run: Int64?) throws -> [JournalEntry] {
        let rows = run == nil
            ? try Row.fetchAll(db, sql: "SELECT * FROM journal ORDER BY id")
            : try Row.fetchAll(db, sql: "SELECT * FROM journal WHERE run_id = ? ORDER BY id", arguments: [run])
        return try rows.map(entry)
    }

    private static func entry(_ row: Row) throws -> JournalEntry {
        try JournalEntry(run: row["run_id"], storedAddress: row["address"], target: row["node"], action: row["action"], status: row["status"],
                         attempts: row["attempts"], error: row["error"])
    }

    /// Every run, oldest first.
    public func runs() throws -> [RunRecord] {
        try queue.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM run ORDER BY id").map(Self.runRecord)
        }
    }

    public func runs(region: String, revision: String) throws -> [RunRecord] {
        try queue.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM run WHERE regions = ? AND revision = ? ORDER BY id", arguments: [region, revision]).map(Self.runRecord)
        }
    }

    public func lastChanges(_ addresses: [Address]) throws -> [Address: LastChange] {
        try queue.read { db in
            var rows: [(address: String, run: Int64, action: String, at: Double, revision: String?)] = []
            for start in stride(from: 0, to: addresses.count, by: 500) {
                let chunk = addresses[start..<min(start + 500, addresses.count)].map(\.description)
                let marks = Array(repeating: "?", count: chunk.count).joined(separator: ",")
                for row in try Row.fetchAll(db, sql: """
                    SELECT j.address, j.run_id, j.action, j.updated_at, r.revision FROM journal j JOIN run r ON r.id = j.run_id
                    WHERE j.status = 'done' AND j.address IN (\(marks)) ORDER BY j.id
                    """, arguments: StatementArguments(chunk)) {
                    rows.append((row["address"], row["run_id"], row["action"], row["updated_at"], row["revision"]))
                }
            }
            return LastChange.latest(rows)
        }
    }

    public func lastApplied(regions: [String]) throws -> [String: RunRecord] {
        try queue.read { db in
            var result: [String: RunRecord] = [:]
            for region in Set(regions) {
                // Region names are DNS labels (no commas, no LIKE wildcards but `_`, matched by instr instead).
                let row = try Row.fetchOne(db, sql: """
                    SELECT * FROM run WHERE status = 'succeeded' AND revision IS NOT NULL AND instr(',' || regions || ',', ?) > 0
                    ORDER BY id DESC LIMIT 1
                    """, arguments: ["," + region + ","])
                if let row { result[region] = Self.runRecord(row) }
            }
            return result
        }
    }

    private static func runRecord(_ row: Row) -> RunRecord {
        RunRecord(id: row["id"], regions: RunRecord.regions(stored: row["regions"]), status: RunStatus(stored: row["status"]), revision: row["revision"], startedAt: row["started_at"],
                  undoes: RunRecord.decode(undoes: row["undoes"]))
    }

    public func markConverged(region: String, revision: String, at: Double) throws {
        try queue.write { db in
            try db.execute(sql: """
                INSERT INTO region_convergence (region, revision, at) VALUES (?, ?, ?)
                ON CONFLICT (region) DO UPDATE SET revision = excluded.revision, at = excluded.at
                """, arguments: [region, revision, at])
        }
    }

    public func convergence(regions: [String]) throws -> [String: Convergence] {
        try queue.read { db in
            var result: [String: Convergence] = [:]
            for region in Set(regions) {
                if let row = try Row.fetchOne(db, sql: "SELECT revision, at FROM region_convergence WHERE region = ?", arguments: [region]) {
                    result[region] = Convergence(revision: row["revision"], at: row["at"])
                }
            }
            return result
        }
    }

    /// Recorded placements: address → (node, ip).
    public func placements() throws -> [Address: Placement] {
        try queue.read { db in
            try Placement.stored(try Row.fetchAll(db, sql: "SELECT address, node, ip FROM placement").map { ($0["address"], $0["node"], $0["ip"]) })
        }
    }
}

