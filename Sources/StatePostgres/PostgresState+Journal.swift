import Billing
import Foundation
import Manifests
import Planning
import Postgres
import State

/// Runs and the journal. Every write of a run carries the lease tokens the run began with and is checked against
/// the lease rows in its own transaction (`FOR SHARE`, so a takeover waits for it or makes it fail): a process that
/// lost a region's lease can never write that region's journal, placements or meters again.
extension PostgresState {
    public func beginRun(regions: [String], revision: String?, undoes: [String: String]) throws -> Int64 {
        _ = try recoverDeadRuns()
        try register()
        let tokens = try heldTokens(regions)
        let fences = tokens.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
        let run = try connection.transaction { tx in
            try fence(tx, tokens: tokens)
            return try tx.execute("""
                INSERT INTO run (regions, revision, pid, owner, status, started_at, fences, undoes)
                VALUES ($1, $2, $3, $4, 'running', extract(epoch FROM clock_timestamp()), $5, $6) RETURNING id
                """, [regions.joined(separator: ","), revision, Int(getpid()), owner, fences, RunRecord.encode(undoes: undoes)]).first?.int64("id") ?? 0
        }
        book.withLock { $0.runFences[run] = tokens }
        return run
    }

    /// Ends a run. A run whose lease was lost is closed as `interrupted` (its own row only) and the loss is thrown.
    public func finishRun(_ run: Int64, succeeded: Bool) throws {
        let tokens = book.withLock { $0.runFences.removeValue(forKey: run) } ?? [:]
        do {
            try connection.transaction { tx in
                try fence(tx, tokens: tokens)
                try tx.execute("UPDATE run SET status = $1, finished_at = extract(epoch FROM clock_timestamp()) WHERE id = $2 AND status = 'running'",
                               [succeeded ? "succeeded" : "failed", run])
            }
        } catch let lost as RegionLeaseLost {
            try connection.execute("""
                UPDATE run SET status = 'interrupted', finished_at = extract(epoch FROM clock_timestamp()) WHERE id = $1 AND owner = $2 AND status = 'running'
                """, [run, owner])
            throw lost
        }
    }

    /// Closes the runs of processes whose heartbeat stopped (dead, or cut off longer than their lease): the run
    /// becomes `interrupted` and its unfinished changes `failed` ("interrupted"), as in the embedded store.
    public func recoverDeadRuns() throws -> [JournalEntry] {
        try connection.transaction { tx in
            let dead = try tx.execute("""
                SELECT r.id FROM run r WHERE r.status = 'running' AND r.owner <> $1 AND NOT EXISTS (
                    SELECT 1 FROM reconciler c WHERE c.owner = r.owner AND c.heartbeat_at + c.lease_seconds * interval '1 second' > clock_timestamp())
                ORDER BY r.id FOR UPDATE OF r SKIP LOCKED
                """, [owner]).rows.compactMap { $0.int64("id") }
            var closed: [JournalEntry] = []
            for id in dead {
                closed += try tx.execute("SELECT * FROM journal WHERE run_id = $1 AND status IN ('planned', 'started') ORDER BY id", [id]).rows.map(Self.entry)
                try tx.execute("UPDATE run SET status = 'interrupted', finished_at = extract(epoch FROM clock_timestamp()) WHERE id = $1", [id])
                try tx.execute("UPDATE journal SET status = 'failed', error = 'interrupted' WHERE run_id = $1 AND status IN ('planned', 'started')", [id])
            }
            return closed
        }
    }

    public func unsettledInterruptedCreates() throws -> [JournalEntry] {
        try connection.execute("""
            SELECT * FROM journal j WHERE j.status = 'failed' AND j.error = 'interrupted' AND j.action = 'create'
            AND NOT EXISTS (SELECT 1 FROM journal k WHERE k.address = j.address AND k.id > j.id) ORDER BY j.id
            """).rows.map(Self.entry)
    }

    /// Settles an interrupted create found done. Only the holder of the entry's region settles it; others leave it.
    public func settleInterrupted(_ entry: JournalEntry, node: Address, ip: IPv4Address, specHash: String) throws {
        let region = entry.target.region
        guard let tokens = try? heldTokens([region]) else { return }
        try connection.transaction { tx in
            try fence(tx, tokens: tokens)
            try tx.execute("""
                UPDATE journal SET status = 'done', error = 'interrupted; found done on the node at recovery', updated_at = $1
                WHERE run_id = $2 AND change_id = $3 AND status = 'failed'
                """, [Self.timestamp, entry.run, entry.changeID.description])
            try Self.place(address: entry.address.description, node: node.description, ip: ip.description, specHash: specHash, in: tx)
            let row = try tx.execute("SELECT meters, started_at FROM journal WHERE run_id = $1 AND change_id = $2", [entry.run, entry.changeID.description]).first
            if let text = row?["meters"], let meters = try? JSONDecoder().decode([Meter].self, from: Data(text.utf8)) {
                try Self.meter(meters, at: row?.int64("started_at") ?? clock(), by: entry.changeID.description, in: tx)
            }
        }
    }

    public func journalPlanned(_ changes: ChangeList, run: Int64) throws {
        let tokens = try runTokens(run)
        let requested = clock()
        try connection.transaction { tx in
            try fence(tx, tokens: tokens)
            let now = Self.timestamp
            for batch in stride(from: 0, to: changes.count, by: 500).map({ changes[$0..<min($0 + 500, changes.count)] }) {
                var values: [String] = []
                var parameters: [(any PostgresEncodable)?] = []
                for change in batch {
                    let meters = change.meters.isEmpty ? nil : String(decoding: try Self.encoder.encode(change.meters), as: UTF8.self)
                    let base = parameters.count
                    values.append("(" + (1...10).map { "$\(base + $0)" }.joined(separator: ", ") + ", 'planned')")
                    parameters += [run, change.id.description, change.address.description, change.target.description, change.region,
                                   change.action.rawValue, change.reason.rawValue, now, meters, tokens[change.region]]
                }
                try tx.execute("""
                    INSERT INTO journal (run_id, change_id, address, node, region, action, reason, updated_at, meters, fence, status)
                    VALUES \(values.joined(separator: ", "))
                    """, parameters)
            }
            for change in changes {
                for resource in change.stopsMeters {
                    try tx.execute("UPDATE meter_interval SET stop = GREATEST(start, $1), closed_by = $2 WHERE resource = $3 AND stop IS NULL",
                                   [requested, change.id.description, resource.description])
                }
            }
        }
    }

    public func journal(_ change: Change, run: Int64, status: JournalEntry.Status, error: String?) throws {
        try journal([change], run: run, status: status, error: error)
    }

    public func journal(_ changes: [Change], run: Int64, status: JournalEntry.Status, error: String?) throws {
        guard !changes.isEmpty else { return }
        let tokens = try runTokens(run)
        let regions = Set(changes.map(\.region))
        let started = clock()
        try connection.transaction { tx in
            try fence(tx, tokens: tokens.filter { regions.contains($0.key) })
            for change in changes {
                try tx.execute("""
                    UPDATE journal SET status = $1, error = $2, updated_at = $3, attempts = attempts + (CASE WHEN $1 = 'started' THEN 1 ELSE 0 END),
                    started_at = (CASE WHEN $1 = 'started' AND started_at IS NULL THEN $4 ELSE started_at END)
                    WHERE run_id = $5 AND change_id = $6
                    """, [status.rawValue, error, Self.timestamp, started, run, change.id.description])
                guard status == .done else { continue }
                try Self.record(change, in: tx)
                guard !change.meters.isEmpty else { continue }
                let began = try tx.execute("SELECT started_at FROM journal WHERE run_id = $1 AND change_id = $2", [run, change.id.description]).first?
                    .int64("started_at") ?? started
                try Self.meter(change.meters, at: began, by: change.id.description, in: tx)
            }
        }
    }

    public func journalEntries(run: Int64?) throws -> [JournalEntry] {
        let rows = run == nil
            ? try connection.execute("SELECT * FROM journal ORDER BY id")
            : try connection.execute("SELECT * FROM journal WHERE run_id = $1 ORDER BY id", [run])
        return try rows.rows.map(Self.entry)
    }

    public func lastChanges(_ addresses: [Address]) throws -> [Address: LastChange] {
        guard !addresses.isEmpty else { return [:] }
        let rows = try connection.execute("""
            SELECT j.address, j.run_id, j.action, j.updated_at, r.revision FROM journal j JOIN run r ON r.id = j.run_id
            WHERE j.status = 'done' AND j.address = ANY(string_to_array($1, E'\\n')) ORDER BY j.id
            """, [addresses.map(\.description).joined(separator: "\n")]).rows
        return LastChange.latest(rows.map { ($0.string("address"), $0.int64("run_id") ?? 0, $0.string("action"), $0.double("updated_at") ?? 0, $0["revision"]) })
    }

    public func runs() throws -> [RunRecord] {
        try connection.execute("SELECT id, regions, status, revision, started_at, undoes FROM run ORDER BY id").rows.map(Self.runRecord)
    }

    public func runs(region: String, revision: String) throws -> [RunRecord] {
        try connection.execute("SELECT id, regions, status, revision, started_at, undoes FROM run WHERE regions = $1 AND revision = $2 ORDER BY id",
                               [region, revision]).rows.map(Self.runRecord)
    }

    public func lastApplied(regions: [String]) throws -> [String: RunRecord] {
        var result: [String: RunRecord] = [:]
        for region in Set(regions) {
            let row = try connection.execute("""
                SELECT id, regions, status, revision, started_at, undoes FROM run
                WHERE status = 'succeeded' AND revision IS NOT NULL AND $1 = ANY (string_to_array(regions, ','))
                ORDER BY id DESC LIMIT 1
                """, [region]).rows.first
            if let row { result[region] = Self.runRecord(row) }
        }
        return result
    }

    static func runRecord(_ row: PostgresRow) -> RunRecord {
        RunRecord(id: row.int64("id") ?? 0, regions: RunRecord.regions(stored: row.string("regions")), status: RunStatus(stored: row.string("status")), revision: row["revision"] ?? nil,
                  startedAt: row.double("started_at") ?? 0, undoes: RunRecord.decode(undoes: row["undoes"] ?? nil))
    }

    public func markConverged(region: String, revision: String, at: Double) throws {
        try connection.execute("""
            INSERT INTO region_convergence (region, revision, at) VALUES ($1, $2, $3)
            ON CONFLICT (region) DO UPDATE SET revision = excluded.revision, at = excluded.at
            """, [region, revision, at])
    }

    public func convergence(regions: [String]) throws -> [String: Convergence] {
        var result: [String: Convergence] = [:]
        for region in Set(regions) {
            if let row = try connection.execute("SELECT revision, at FROM region_convergence WHERE region = $1", [region]).rows.first {
                result[region] = Convergence(revision: row.string("revision"), at: row.double("at") ?? 0)
            }
        }
        return result
    }

    public func placements() throws -> [Address: Placement] {
        try Placement.stored(try connection.execute("SELECT address, node, ip FROM placement").rows.map { ($0.string("address"), $0.string("node"), $0.string("ip")) })
    }

    // MARK: Helpers

    static func entry(_ row: PostgresRow) throws -> JournalEntry {
        try JournalEntry(run: row.int64("run_id") ?? 0, storedAddress: row.string("address"), target: row.string("node"), action: row.string("action"),
                         status: row.string("status"), attempts: row.int("attempts"), error: row["error"])
    }

    /// The tokens run `run` writes with.
    func runTokens(_ run: Int64) throws -> [String: Int64] {
        guard let tokens = book.withLock({ $0.runFences[run] }) else {
            throw RegionLeaseLost(region: "?", found: "run \(run) was not begun by this process")
        }
        return tokens
    }

    static func place(address: String, node: String, ip: String, specHash: String, in tx: PostgresTransaction) throws {
        try tx.execute("""
            INSERT INTO placement (address, node, ip, spec_hash, updated_at) VALUES ($1, $2, $3, $4, $5)
            ON CONFLICT (address) DO UPDATE SET node = excluded.node, ip = excluded.ip, spec_hash = excluded.spec_hash, updated_at = excluded.updated_at
            """, [address, node, ip, specHash, timestamp])
    }

    static func record(_ change: Change, in tx: PostgresTransaction) throws {
        switch change.placementEffect {
        case .forget(let node):
            try tx.execute("DELETE FROM placement WHERE address = $1 AND node = $2", [change.address.description, node])
        case .place(let node, let ip, let specHash):
            try place(address: change.address.description, node: node, ip: ip, specHash: specHash, in: tx)
        case nil:
            return
        }
    }
}
