import Foundation
import Postgres
import State

/// Region leases on the shared database. A lease is a row (region, owner, token, expires_at) compared with the
/// database's clock, so machines need not agree on the time. The holder renews its leases from a heartbeat thread on
/// its own connection; a lease that expired is never renewed (it must be taken again, with a new token).
extension PostgresState {
    /// Records this process as a reconciler and starts its heartbeat (once); live reconcilers of the `serve` role
    /// share the regions out among themselves.
    public func register() throws {
        guard heartbeat.withLock({ $0 == nil }) else { return }
        try connection.execute("""
            INSERT INTO reconciler (owner, host, pid, role, lease_seconds, heartbeat_at) VALUES ($1, $2, $3, $4, $5, clock_timestamp())
            ON CONFLICT (owner) DO UPDATE SET heartbeat_at = clock_timestamp()
            """, [owner, Self.hostname, Int(getpid()), role, leaseSeconds])
        // Processes dead for a day are forgotten.
        try connection.execute("DELETE FROM reconciler WHERE heartbeat_at < clock_timestamp() - interval '1 day'")
        let beat = try Heartbeat(state: self)
        let started = heartbeat.withLock { slot -> Bool in
            guard slot == nil else { return false }
            slot = beat
            return true
        }
        if started { beat.start() }
    }

    /// Takes `region`'s lease when it is free, expired, or already this process's (then it is extended and keeps its
    /// token); a lease changing hands gets the next token. Returns the token, or nil when another process holds it.
    public func tryAcquire(_ region: String) throws -> Int64? {
        try register()
        let token = try connection.execute("""
            INSERT INTO region_lease AS l (region, owner, token, acquired_at, expires_at)
            VALUES ($1, $2, 1, clock_timestamp(), clock_timestamp() + $3 * interval '1 second')
            ON CONFLICT (region) DO UPDATE SET
                token = CASE WHEN l.owner = excluded.owner AND l.expires_at > clock_timestamp() THEN l.token ELSE l.token + 1 END,
                acquired_at = CASE WHEN l.owner = excluded.owner AND l.expires_at > clock_timestamp() THEN l.acquired_at ELSE clock_timestamp() END,
                owner = excluded.owner, expires_at = excluded.expires_at
            WHERE l.owner = excluded.owner OR l.expires_at <= clock_timestamp()
            RETURNING token
            """, [region, owner, leaseSeconds]).first?.int64("token")
        book.withLock { book in
            if let token {
                let holds = book.held[region]?.token == token ? book.held[region]?.holds ?? 0 : 0
                book.held[region] = (token, holds)
            } else {
                book.held[region] = nil
            }
        }
        return token
    }

    /// Lets go of `region`'s lease (if this process holds it): the row expires now and keeps its token, so whoever takes
    /// the region next gets a greater one.
    public func release(_ region: String) throws {
        book.withLock {
            $0.held[region] = nil
            $0.claimed.remove(region)
        }
        try connection.execute("UPDATE region_lease SET expires_at = clock_timestamp() WHERE region = $1 AND owner = $2 AND expires_at > clock_timestamp()", [region, owner])
    }

    /// The regions this process holds now, with their tokens.
    public var heldRegions: [String: Int64] { book.withLock { $0.held.mapValues(\.token) } }

    /// Owners of live reconcilers of `role` (heartbeat younger than their lease time), this process included if it is one.
    public func liveReconcilers(role: String = "serve") throws -> [String] {
        try connection.execute("""
            SELECT owner FROM reconciler WHERE role = $1 AND heartbeat_at + lease_seconds * interval '1 second' > clock_timestamp() ORDER BY owner
            """, [role]).rows.map { $0.string("owner") }
    }

    /// Every unexpired lease: region → owner.
    public func leaseHolders() throws -> [String: String] {
        var holders: [String: String] = [:]
        for row in try connection.execute("SELECT region, owner FROM region_lease WHERE expires_at > clock_timestamp()").rows {
            holders[row.string("region")] = row.string("owner")
        }
        return holders
    }

    /// The tokens of `regions` as this process holds them; throws when it holds one of them no more.
    func heldTokens(_ regions: [String]) throws -> [String: Int64] {
        try book.withLock { book in
            var tokens: [String: Int64] = [:]
            for region in Set(regions) {
                guard let held = book.held[region] else { throw RegionLeaseLost(region: region, found: "this process does not hold it") }
                tokens[region] = held.token
            }
            return tokens
        }
    }

    /// Checks, inside a write's transaction, that this process still holds each region with the given token; the
    /// lease rows stay locked (`FOR SHARE`) until the write commits, so no takeover can slip in between.
    func fence(_ tx: PostgresTransaction, tokens: [String: Int64]) throws {
        guard !tokens.isEmpty else { return }
        let regions = PostgresValue.textArray(tokens.keys.sorted())
        let rows = try tx.execute("""
            SELECT region, owner, token, expires_at > clock_timestamp() AS live FROM region_lease WHERE region = ANY($1::text[]) FOR SHARE
            """, [regions]).rows
        for (region, token) in tokens {
            guard let row = rows.first(where: { $0.string("region") == region }) else {
                throw RegionLeaseLost(region: region, found: "no lease row: it was released or taken over")
            }
            guard row.string("owner") == owner, row.int64("token") == token, row.bool("live") else {
                let why = row.string("owner") != owner ? "now held by \(row.string("owner")) with token \(row.string("token"))"
                    : row.int64("token") != token ? "taken again with token \(row.string("token")); this run began with \(token)"
                    : "it expired with token \(token)"
                throw RegionLeaseLost(region: region, found: why)
            }
        }
    }

    /// Renews every unexpired lease this process holds and its heartbeat; a lease found expired or gone is dropped from
    /// the book (its runs' writes fail from now on).
    func renew(on connection: PostgresConnection) throws {
        try connection.execute("UPDATE reconciler SET heartbeat_at = clock_timestamp() WHERE owner = $1", [owner])
        let renewed = try connection.execute("""
            UPDATE region_lease SET expires_at = clock_timestamp() + $2 * interval '1 second'
            WHERE owner = $1 AND expires_at > clock_timestamp() RETURNING region, token
            """, [owner, leaseSeconds]).rows
        let live = Dictionary(renewed.map { ($0.string("region"), $0.int64("token") ?? 0) }, uniquingKeysWith: { a, _ in a })
        book.withLock { book in book.held = book.held.filter { live[$0.key] == $0.value.token } }
    }
}

/// The thread that renews a process's leases and heartbeat every third of the lease time, on its own connection, so
/// a long statement on the main connection never lets a lease lapse.
final class Heartbeat: @unchecked Sendable {
    // @unchecked: `stopped` is behind `lock`; the thread only reads the immutable fields.
    private let lock = NSCondition()
    private var stopped = false
    private weak var state: PostgresState?
    private let connection: PostgresConnection
    private let interval: Double

    init(state: PostgresState) throws {
        self.state = state
        connection = try PostgresConnection(url: state.url, statementTimeout: max(1, Int(state.leaseSeconds / 3)))
        interval = state.leaseSeconds / 3
    }

    func start() {
        let thread = Thread { [self] in
            while true {
                lock.lock()
                if !stopped { _ = lock.wait(until: Date().addingTimeInterval(interval)) }
                let done = stopped
                lock.unlock()
                guard !done, let state else { return }
                try? state.renew(on: connection)
            }
        }
        thread.name = "stacklab-lease-heartbeat"
        thread.start()
    }

    func stop() {
        lock.lock()
        stopped = true
        lock.signal()
        lock.unlock()
    }
}

/// `RegionLeases` on the shared database: a run takes its regions' leases (waiting up to its timeout), and lets go
/// of each when the last holder in this process is done. A long-running service claims a fair share of the regions
/// (`claim`) and keeps them between runs.
public struct PostgresRegionLeases: RegionLeases {
    /// The store whose leases these are.
    public let state: PostgresState

    /// Leases of `state`.
    public init(state: PostgresState) {
        self.state = state
    }

    public func acquire(_ region: String, timeout: Double) throws -> AnyObject {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if try state.tryAcquire(region) != nil {
                state.book.withLock { $0.held[region]?.holds += 1 }
                return Holder(state: state, region: region)
            }
            guard Date() < deadline else {
                let holder = (try? state.leaseHolders()[region]) ?? "another reconciler"
                throw RegionLeaseLost(region: region, found: "held by \(holder); wait for it or raise the lock timeout")
            }
            usleep(200_000)
        }
    }

    /// Claims a fair share of `regions` and lets go of regions beyond it (or no longer in the manifests). With N live
    /// serving reconcilers, each holds the region count over N, the first `count % N` of them (by owner) one more;
    /// each prefers its rendezvous-hash favourites, so processes rarely contend and a region stays where it is.
    /// Returns the regions held, sorted.
    public func claim(_ regions: [String]) throws -> [String] {
        try state.register()
        var live = try state.liveReconcilers(role: state.role)
        if !live.contains(state.owner) { live = (live + [state.owner]).sorted() }
        let position = live.firstIndex(of: state.owner) ?? 0
        let share = regions.count / live.count + (position < regions.count % live.count ? 1 : 0)
        let wanted = Set(regions)
        let owner = state.owner
        let ranked = regions.sorted { Self.rank(owner, $0) > Self.rank(owner, $1) || (Self.rank(owner, $0) == Self.rank(owner, $1) && $0 < $1) }
        var held = state.heldRegions
        for region in held.keys where !wanted.contains(region) {
            try state.release(region)
            held[region] = nil
        }
        if held.count > share {
            for region in ranked.reversed() where held[region] != nil && held.count > share {
                try state.release(region)
                held[region] = nil
            }
        }
        for region in ranked where held.count < share && held[region] == nil {
            if let token = try state.tryAcquire(region) { held[region] = token }
        }
        return state.book.withLock { book in
            book.claimed = Set(book.held.keys).intersection(wanted)
            return book.claimed.sorted()
        }
    }

    static func rank(_ owner: String, _ region: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in (owner + "\u{0}" + region).utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        return hash
    }

    /// Releases a region when the last holder in this process lets go of it; a region the service keeps (claimed)
    /// stays held.
    final class Holder {
        let state: PostgresState
        let region: String

        init(state: PostgresState, region: String) {
            self.state = state
            self.region = region
        }

        deinit {
            let last = state.book.withLock { book -> Bool in
                guard var held = book.held[region] else { return false }
                held.holds -= 1
                book.held[region] = held
                return held.holds <= 0 && !book.claimed.contains(region)
            }
            if last { try? state.release(region) }
        }
    }
}
