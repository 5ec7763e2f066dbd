import Postgres

/// StackLab's schema on PostgreSQL, as numbered migrations. Each runs once, in order, in its own transaction, and is
/// recorded in `schema_migration`; processes starting at once take an advisory lock so they migrate one at a time.
enum PostgresSchema {
    /// The advisory lock key processes take while migrating.
    static let migrationLock: Int64 = 0x5354_4143_4B4C_4142  // "STACKLAB"

    static let migrations: [(version: String, sql: String)] = [
        ("v1", """
            CREATE TABLE run (
                id BIGSERIAL PRIMARY KEY,
                regions TEXT NOT NULL,
                revision TEXT,
                pid INTEGER NOT NULL,
                owner TEXT NOT NULL,
                status TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'interrupted')),
                started_at DOUBLE PRECISION NOT NULL,
                finished_at DOUBLE PRECISION,
                fences TEXT NOT NULL DEFAULT ''
            );
            CREATE INDEX run_running ON run (status) WHERE status = 'running';
            CREATE TABLE journal (
                id BIGSERIAL PRIMARY KEY,
                run_id BIGINT NOT NULL REFERENCES run(id),
                change_id TEXT NOT NULL,
                address TEXT NOT NULL,
                node TEXT NOT NULL,
                region TEXT NOT NULL,
                action TEXT NOT NULL,
                reason TEXT NOT NULL,
                status TEXT NOT NULL CHECK (status IN ('planned', 'started', 'done', 'failed', 'skipped')),
                attempts INTEGER NOT NULL DEFAULT 0,
                error TEXT,
                updated_at DOUBLE PRECISION NOT NULL,
                meters TEXT,
                started_at BIGINT,
                fence BIGINT,
                UNIQUE (run_id, change_id)
            );
            CREATE INDEX journal_by_address ON journal (address);
            CREATE INDEX journal_by_change ON journal (change_id);
            CREATE TABLE placement (
                address TEXT PRIMARY KEY,
                node TEXT NOT NULL,
                ip TEXT NOT NULL,
                spec_hash TEXT NOT NULL,
                updated_at DOUBLE PRECISION NOT NULL
            );
            CREATE TABLE ring_state (
                address TEXT PRIMARY KEY,
                state BYTEA NOT NULL,
                checksum TEXT NOT NULL,
                generation BIGINT NOT NULL DEFAULT 1,
                updated_at DOUBLE PRECISION NOT NULL
            );
            CREATE TABLE region_memo (
                region TEXT PRIMARY KEY,
                key TEXT NOT NULL,
                plan BYTEA NOT NULL,
                updated_at DOUBLE PRECISION NOT NULL
            );
            CREATE TABLE node_inventory (
                region TEXT NOT NULL,
                name TEXT NOT NULL,
                libvirt TEXT NOT NULL,
                cpus INTEGER NOT NULL,
                memory_kib BIGINT NOT NULL,
                host_key TEXT,
                file_root TEXT,
                updated_at DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (region, name)
            );
            CREATE TABLE meter_interval (
                id BIGSERIAL PRIMARY KEY,
                resource TEXT NOT NULL,
                address TEXT NOT NULL,
                tenant TEXT NOT NULL,
                kind TEXT NOT NULL,
                item TEXT NOT NULL,
                quantity BIGINT NOT NULL,
                period TEXT NOT NULL,
                price_list TEXT NOT NULL,
                start BIGINT NOT NULL,
                stop BIGINT,
                opened_by TEXT NOT NULL,
                closed_by TEXT,
                UNIQUE (resource, start)
            );
            CREATE UNIQUE INDEX meter_open ON meter_interval (resource) WHERE stop IS NULL;
            CREATE INDEX meter_tenant ON meter_interval (tenant, start);
            CREATE TABLE account_entry (
                id BIGSERIAL PRIMARY KEY,
                tenant TEXT NOT NULL,
                kind TEXT NOT NULL,
                amount_micros BIGINT NOT NULL,
                discount_ppm BIGINT NOT NULL,
                currency TEXT NOT NULL,
                reference TEXT NOT NULL,
                recorded_by TEXT NOT NULL,
                at BIGINT NOT NULL,
                expires BIGINT
            );
            CREATE UNIQUE INDEX account_coupon ON account_entry (tenant, reference) WHERE kind = 'coupon';
            CREATE TABLE pipeline_run (
                id BIGSERIAL PRIMARY KEY,
                kind TEXT NOT NULL,
                pipeline TEXT NOT NULL,
                subject TEXT NOT NULL,
                commit_id TEXT NOT NULL,
                verdict INTEGER NOT NULL,
                started_at DOUBLE PRECISION NOT NULL,
                seconds DOUBLE PRECISION NOT NULL,
                steps TEXT NOT NULL
            );
            -- Every process that works on regions: alive while its heartbeat is younger than its lease time.
            CREATE TABLE reconciler (
                owner TEXT PRIMARY KEY,
                host TEXT NOT NULL,
                pid INTEGER NOT NULL,
                role TEXT NOT NULL,
                lease_seconds DOUBLE PRECISION NOT NULL,
                started_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
                heartbeat_at TIMESTAMPTZ NOT NULL
            );
            -- One holder per region. The token grows whenever the region changes hands, and every write of a run carries
            -- the token its run began with, so a holder that lost the lease can never write again.
            CREATE TABLE region_lease (
                region TEXT PRIMARY KEY,
                owner TEXT NOT NULL,
                token BIGINT NOT NULL,
                acquired_at TIMESTAMPTZ NOT NULL,
                expires_at TIMESTAMPTZ NOT NULL
            );
            """),
        // Every run's start asks for interrupted changes: with this, that costs what they hold, not the whole journal.
        ("v2", """
            CREATE INDEX journal_interrupted ON journal (id) WHERE status = 'failed' AND error = 'interrupted';
            """),
        // An entry can be taken back by a reversal (an operator's, with a reason), once.
        ("v3", """
            ALTER TABLE account_entry ADD COLUMN reverses BIGINT;
            CREATE UNIQUE INDEX account_reversal ON account_entry (reverses) WHERE reverses IS NOT NULL;
            """),
        // A rollback says which revision it took each region back from: the region stays there until a newer push.
        ("v4", """
            ALTER TABLE run ADD COLUMN undoes TEXT;
            """),
        // Where each region was last found converged (a deploy's step for a region another reconciler holds).
        ("v5", """
            CREATE TABLE region_convergence (region TEXT PRIMARY KEY, revision TEXT NOT NULL, at DOUBLE PRECISION NOT NULL);
            """),
        // Bandwidth: each counter's mark per epoch, and the bytes per instance and hour (see TrafficLedger).
        ("v6", """
            CREATE TABLE traffic_mark (
                node TEXT NOT NULL, counter TEXT NOT NULL, epoch TEXT NOT NULL, bytes BIGINT NOT NULL, read_at BIGINT NOT NULL,
                PRIMARY KEY (node, counter, epoch));
            CREATE TABLE traffic_usage (
                tenant TEXT NOT NULL, instance TEXT NOT NULL, direction TEXT NOT NULL, scope TEXT NOT NULL, price_list TEXT NOT NULL,
                hour BIGINT NOT NULL, bytes BIGINT NOT NULL,
                PRIMARY KEY (tenant, instance, direction, scope, price_list, hour));
            """),
        // Object storage: the bytes each tenant's account held, first sample of each hour (see StorageLedger).
        ("v7", """
            CREATE TABLE storage_usage (
                tenant TEXT NOT NULL, region TEXT NOT NULL, price_list TEXT NOT NULL, hour BIGINT NOT NULL, bytes BIGINT NOT NULL,
                PRIMARY KEY (tenant, region, hour));
            """),
        // A number that changes whenever the inventory does (see NodeInventory.inventoryRevision).
        ("v8", """
            CREATE TABLE node_inventory_revision (revision BIGINT NOT NULL);
            INSERT INTO node_inventory_revision (revision) VALUES (0);
            """),
    ]

    /// Runs the migrations not yet recorded; returns the versions it ran.
    @discardableResult
    static func migrate(_ connection: PostgresConnection) throws -> [String] {
        try connection.transaction { tx in
            try tx.execute("SELECT pg_advisory_xact_lock($1)", [migrationLock])
            try tx.execute("CREATE TABLE IF NOT EXISTS schema_migration (version TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp())")
            let done = Set(try tx.execute("SELECT version FROM schema_migration").rows.map { $0.string("version") })
            var ran: [String] = []
            for migration in migrations where !done.contains(migration.version) {
                try tx.execute(migration.sql)
                try tx.execute("INSERT INTO schema_migration (version) VALUES ($1)", [migration.version])
                ran.append(migration.version)
            }
            return ran
        }
    }
}
