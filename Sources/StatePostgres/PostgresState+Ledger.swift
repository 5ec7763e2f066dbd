import Billing
import Foundation
import Manifests
import Planning
import Postgres
import State

/// Billing's ledger: intervals opened, switched and closed in the transaction of the journal write that causes them,
/// with the same rules as the embedded store (one open interval per resource; a replay charges nothing twice).
extension PostgresState {
    public func meterIntervals(tenant: String?) throws -> [MeterInterval] {
        let rows = tenant == nil
            ? try connection.execute("SELECT * FROM meter_interval ORDER BY tenant, start, resource")
            : try connection.execute("SELECT * FROM meter_interval WHERE tenant = $1 ORDER BY tenant, start, resource", [tenant])
        return try rows.rows.map { row in
            try MeterInterval(storedAddress: row.string("address"), tenant: row.string("tenant"), storedKind: row.string("kind"), item: row.string("item"),
                              quantity: row.int64("quantity") ?? 0, storedPeriod: row.string("period"), priceList: row.string("price_list"),
                              start: row.int64("start") ?? 0, stop: row.int64("stop"))
        }
    }

    public func accountEntries(tenant: String?) throws -> [AccountEntry] {
        let rows = tenant == nil
            ? try connection.execute("SELECT * FROM account_entry ORDER BY at, id")
            : try connection.execute("SELECT * FROM account_entry WHERE tenant = $1 ORDER BY at, id", [tenant])
        return rows.rows.map { row in
            AccountEntry(tenant: row.string("tenant"), kind: AccountEntry.Kind(rawValue: row.string("kind")) ?? .deposit,
                         amount: Money(micros: Int128(row.int64("amount_micros") ?? 0)), discountPPM: row.int64("discount_ppm") ?? 0, currency: row.string("currency"),
                         reference: row.string("reference"), by: row.string("recorded_by"), at: row.int64("at") ?? 0, expires: row.int64("expires"),
                         id: row.int64("id"), reverses: row.int64("reverses"))
        }
    }

    public func recordAccount(_ entry: AccountEntry) throws {
        let amount = try entry.storedAmount()
        try connection.execute("""
            INSERT INTO account_entry (tenant, kind, amount_micros, discount_ppm, currency, reference, recorded_by, at, expires, reverses)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
            """, [entry.tenant, entry.kind.rawValue, amount, entry.discountPPM, entry.currency, entry.reference, entry.by, entry.at, entry.expires,
                  entry.reverses])
    }

    public func unsettledMeteredChanges() throws -> [JournalEntry] {
        try connection.execute("""
            SELECT * FROM journal j WHERE j.status = 'failed' AND j.error = 'interrupted' AND j.meters IS NOT NULL AND j.started_at IS NOT NULL
            AND NOT EXISTS (SELECT 1 FROM journal k WHERE k.change_id = j.change_id AND k.id > j.id) ORDER BY j.id
            """).rows.map(Self.entry)
    }

    /// Settles the meters of an interrupted change that took effect; only the holder of its region does.
    public func settleMeters(_ entry: JournalEntry) throws {
        guard let tokens = try? heldTokens([entry.target.region]) else { return }
        try connection.transaction { tx in
            try fence(tx, tokens: tokens)
            guard let row = try tx.execute("SELECT meters, started_at FROM journal WHERE run_id = $1 AND change_id = $2 AND status = 'failed' FOR UPDATE",
                                           [entry.run, entry.changeID.description]).first else { return }
            try tx.execute("UPDATE journal SET status = 'done', error = 'interrupted; found done at recovery', updated_at = $1 WHERE run_id = $2 AND change_id = $3",
                           [Self.timestamp, entry.run, entry.changeID.description])
            if let text = row["meters"], let meters = try? JSONDecoder().decode([Meter].self, from: Data(text.utf8)) {
                try Self.meter(meters, at: row.int64("started_at") ?? clock(), by: entry.changeID.description, in: tx)
            }
        }
    }

    /// Carries out `MeterRules` for each meter at `time`, in the journal write's transaction.
    static func meter(_ meters: [Meter], at time: Int64, by change: String, in tx: PostgresTransaction) throws {
        for meter in meters {
            let open = try tx.execute("""
                SELECT id, item, quantity, period, price_list, start FROM meter_interval WHERE resource = $1 AND stop IS NULL FOR UPDATE
                """, [meter.resource.description]).first.map {
                MeterRules.OpenInterval(id: $0.int64("id") ?? 0, item: $0.string("item"), quantity: $0.int64("quantity") ?? 0, period: $0.string("period"),
                                        priceList: $0.string("price_list"), start: $0.int64("start") ?? 0)
            }
            switch MeterRules.step(meter, open: open, at: time) {
            case .keep:
                continue
            case .amend(let id):
                try tx.execute("UPDATE meter_interval SET item = $1, quantity = $2, period = $3, price_list = $4, opened_by = $5 WHERE id = $6",
                               [meter.item, meter.quantity, meter.period.rawValue, meter.priceList, change, id])
                continue
            case .close(let id):
                try tx.execute("UPDATE meter_interval SET stop = $1, closed_by = $2 WHERE id = $3", [time, change, id])
            case .open:
                break
            }
            try tx.execute("""
                INSERT INTO meter_interval (resource, address, tenant, kind, item, quantity, period, price_list, start, opened_by)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (resource, start) DO NOTHING
                """, [meter.resource.description, meter.address.description, meter.tenant, meter.kind.rawValue, meter.item, meter.quantity, meter.period.rawValue,
                      meter.priceList, time, change])
        }
    }
}

/// Bandwidth's ledger on the shared database: a reading is recorded only by the holder of its region's lease (fenced in
/// the transaction), and each counter's mark is locked while it moves, so nothing is counted twice.
extension PostgresState {
    @discardableResult
    public func recordTraffic(region: String, node: Address, epoch: String, samples: [TrafficSample], at time: Int64) throws -> Int64 {
        let tokens = try heldTokens([region])
        return try connection.transaction { tx in
            try fence(tx, tokens: tokens)
            var added: Int64 = 0
            for sample in samples {
                // The mark row exists before it is locked: two writers of a new epoch's first reading wait on one row.
                try tx.execute("INSERT INTO traffic_mark (node, counter, epoch, bytes, read_at) VALUES ($1, $2, $3, 0, $4) ON CONFLICT DO NOTHING",
                               [node.description, sample.counter.name, epoch, time])
                let mark = try tx.execute("SELECT bytes FROM traffic_mark WHERE node = $1 AND counter = $2 AND epoch = $3 FOR UPDATE",
                                          [node.description, sample.counter.name, epoch]).first?.int64("bytes")
                let delta = TrafficMarks.delta(bytes: sample.bytes, mark: mark)
                guard delta > 0 || mark == nil else { continue }
                try tx.execute("""
                    INSERT INTO traffic_mark (node, counter, epoch, bytes, read_at) VALUES ($1, $2, $3, $4, $5)
                    ON CONFLICT (node, counter, epoch) DO UPDATE SET bytes = GREATEST(traffic_mark.bytes, excluded.bytes), read_at = excluded.read_at
                    """, [node.description, sample.counter.name, epoch, max(sample.bytes, mark ?? 0), time])
                guard delta > 0 else { continue }
                try tx.execute("""
                    INSERT INTO traffic_usage (tenant, instance, direction, scope, price_list, hour, bytes) VALUES ($1, $2, $3, $4, $5, $6, $7)
                    ON CONFLICT (tenant, instance, direction, scope, price_list, hour) DO UPDATE SET bytes = traffic_usage.bytes + excluded.bytes
                    """, [sample.tenant, sample.counter.instance.description, sample.counter.direction.rawValue, sample.counter.scope.rawValue,
                          sample.priceList, TrafficMarks.hour(of: time), delta])
                added += delta
            }
            try tx.execute("DELETE FROM traffic_mark WHERE node = $1 AND epoch <> $2 AND read_at < $3", [node.description, epoch, time - TrafficMarks.kept])
            return added
        }
    }

    @discardableResult
    public func recordStorage(region: String, samples: [StorageUsage]) throws -> Int {
        let tokens = try heldTokens([region])
        return try connection.transaction { tx in
            try fence(tx, tokens: tokens)
            var added = 0
            for sample in samples where sample.region == region {
                added += try tx.execute("""
                    INSERT INTO storage_usage (tenant, region, price_list, hour, bytes) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant, region, hour) DO NOTHING
                    RETURNING hour
                    """, [sample.tenant, region, sample.priceList, sample.hour, sample.bytes]).rows.count
            }
            return added
        }
    }

    public func storageUsage(tenant: String?) throws -> [StorageUsage] {
        let order = "ORDER BY tenant, region, hour"
        let rows = tenant == nil
            ? try connection.execute("SELECT * FROM storage_usage \(order)")
            : try connection.execute("SELECT * FROM storage_usage WHERE tenant = $1 \(order)", [tenant])
        return rows.rows.map { row in
            StorageUsage(tenant: row.string("tenant"), region: row.string("region"), priceList: row.string("price_list"), hour: row.int64("hour") ?? 0,
                         bytes: row.int64("bytes") ?? 0)
        }
    }

    public func trafficUsage(tenant: String?) throws -> [TrafficUsage] {
        let order = "ORDER BY tenant, hour, instance, direction, scope"
        let rows = tenant == nil
            ? try connection.execute("SELECT * FROM traffic_usage \(order)")
            : try connection.execute("SELECT * FROM traffic_usage WHERE tenant = $1 \(order)", [tenant])
        return rows.rows.compactMap { row in
            TrafficMarks.usage(tenant: row.string("tenant"), instance: row.string("instance"), direction: row.string("direction"), scope: row.string("scope"),
                               priceList: row.string("price_list"), hour: row.int64("hour") ?? 0, bytes: row.int64("bytes") ?? 0)
        }
    }
}
