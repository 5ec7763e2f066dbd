import Billing
import Foundation
import Manifests
import Planning
import Postgres
import State
import StatePostgres
import Synchronization
import Testing
import TestSupport

/// Region leases on a real PostgreSQL server: one holder at a time, fencing tokens that stop a holder that lost its
/// lease from writing, and regions shared out evenly among serving reconcilers.
@Suite struct PostgresLeaseTests {
    static let node = Address(kind: .node, region: "lab", name: "n1")
    static let change = Change(address: Address(kind: .network, region: "lab", name: "private"), target: .node(node), action: .create, reason: .new,
                               operation: .ensureNetwork(network: "private", bridge: "br100"))

    @Test func oneHolderAtATimeAndEachHandoverTakesTheNextToken() throws {
        let url = try LoopbackPostgres.shared().database("lease")
        let a = try PostgresState(url: url, leaseSeconds: 5)
        let b = try PostgresState(url: url, leaseSeconds: 5)
        #expect(try a.tryAcquire("lab") == 1)
        #expect(try a.tryAcquire("lab") == 1)  // extending keeps the token
        #expect(try b.tryAcquire("lab") == nil)
        #expect(try b.leaseHolders()["lab"] == a.owner)
        a.close()
        #expect(try b.tryAcquire("lab") == 2)
        #expect(try a.tryAcquire("lab") == nil)
    }

    /// Two services on one database: only the holder of a region's lease meters its traffic, and the one that takes
    /// the region over finds the marks where the first left them, so the same counters are never billed twice.
    @Test func twoServicesMeterARegionsTrafficOnce() throws {
        let url = try LoopbackPostgres.shared().database("traffic")
        let a = try PostgresState(url: url, leaseSeconds: 5)
        let b = try PostgresState(url: url, leaseSeconds: 5)
        let web = Address(kind: .instance, region: "lab", tenant: "acme", name: "web")
        let reading = { (bytes: Int64) in
            [TrafficSample(counter: TrafficCounter(instance: web, direction: .outbound, scope: .public), tenant: "acme", priceList: "standard", bytes: bytes)]
        }
        let held = try PostgresRegionLeases(state: a).acquire("lab", timeout: 0)
        #expect(try a.recordTraffic(region: "lab", node: Self.node, epoch: "e", samples: reading(1_000), at: 100) == 1_000)
        #expect(throws: RegionLeaseLost.self) { try b.recordTraffic(region: "lab", node: Self.node, epoch: "e", samples: reading(1_000), at: 100) }
        try a.release("lab")
        let taken = try PostgresRegionLeases(state: b).acquire("lab", timeout: 0)
        #expect(throws: RegionLeaseLost.self) { try a.recordTraffic(region: "lab", node: Self.node, epoch: "e", samples: reading(1_400), at: 110) }
        #expect(try b.recordTraffic(region: "lab", node: Self.node, epoch: "e", samples: reading(1_000), at: 120) == 0)
        #expect(try b.recordTraffic(region: "lab", node: Self.node, epoch: "e", samples: reading(1_400), at: 130) == 400)
        #expect(try a.trafficUsage(tenant: nil).reduce(0) { $0 + $1.bytes } == 1_400)
        // Stored bytes likewise: only the holder samples, and an hour both sample is billed once.
        let stored = [StorageUsage(tenant: "acme", region: "lab", priceList: "standard", hour: 3_600, bytes: 5_000)]
        #expect(throws: RegionLeaseLost.self) { try a.recordStorage(region: "lab", samples: stored) }
        #expect(try b.recordStorage(region: "lab", samples: stored) == 1 && (try b.recordStorage(region: "lab", samples: stored)) == 0)
        #expect(try a.storageUsage(tenant: "acme").map(\.bytes) == [5_000])
        withExtendedLifetime((held, taken)) {}
    }

    @Test func aRunWhoseLeaseWasTakenOverCanNeverWriteAgain() throws {
        let url = try LoopbackPostgres.shared().database("fence")
        let a = try PostgresState(url: url, leaseSeconds: 5)
        let b = try PostgresState(url: url, leaseSeconds: 5)
        let held = try PostgresRegionLeases(state: a).acquire("lab", timeout: 0)
        let run = try a.beginRun(regions: ["lab"], revision: "r1")
        try a.journalPlanned([Self.change], run: run)
        // The region changes hands while a's run is in flight (as after a's lease ran out).
        try a.release("lab")
        let taken = try PostgresRegionLeases(state: b).acquire("lab", timeout: 0)
        #expect(b.heldRegions["lab"] == 2)
        #expect(throws: RegionLeaseLost.self) { try a.journal(Self.change, run: run, status: .started, error: nil) }
        #expect(throws: RegionLeaseLost.self) { try a.journal(Self.change, run: run, status: .done, error: nil) }
        #expect(throws: RegionLeaseLost.self) { try a.beginRun(regions: ["lab"], revision: "r1") }
        #expect(throws: RegionLeaseLost.self) {
            try a.saveRing(address: Address(kind: .ring, region: "lab", name: "object"), state: Data("{}".utf8), checksum: "x", previous: nil)
        }
        #expect(throws: RegionLeaseLost.self) { try a.finishRun(run, succeeded: true) }
        // Nothing a wrote after losing the lease is there; its run is closed as interrupted.
        #expect(try a.journalEntries(run: run).map(\.status) == [.planned])
        #expect(try a.runs().first { $0.id == run }?.status == .interrupted)
        #expect(try a.rings(nil).isEmpty)
        // The new holder writes.
        let other = try b.beginRun(regions: ["lab"], revision: "r1")
        try b.journalPlanned([Self.change], run: other)
        try b.journal(Self.change, run: other, status: .done, error: nil)
        try b.finishRun(other, succeeded: true)
        #expect(try b.journalEntries(run: other).map(\.status) == [.done])
        withExtendedLifetime((held, taken)) {}
    }

    @Test func aRunEndingLetsGoOfItsLeaseUnlessTheServiceKeepsTheRegion() throws {
        let url = try LoopbackPostgres.shared().database("hold")
        let a = try PostgresState(url: url, leaseSeconds: 5, role: "serve")
        let leases = PostgresRegionLeases(state: a)
        do {
            let held = try leases.acquire("lab", timeout: 0)
            withExtendedLifetime(held) {}
        }
        #expect(try a.leaseHolders()["lab"] == nil)
        #expect(try leases.claim(["lab"]) == ["lab"])
        do {
            let held = try leases.acquire("lab", timeout: 0)
            withExtendedLifetime(held) {}
        }
        #expect(try a.leaseHolders()["lab"] == a.owner)
    }

    @Test func servingReconcilersShareRegionsEvenlyAndSurvivorsTakeOverAClosedOnesRegions() throws {
        let url = try LoopbackPostgres.shared().database("spread")
        let regions = (0..<10).map { "r\($0)" }
        let processes = try (0..<3).map { _ in PostgresRegionLeases(state: try PostgresState(url: url, leaseSeconds: 5, role: "serve")) }
        for process in processes { try process.state.register() }
        var claimed: [[String]] = []
        for _ in 0..<3 { claimed = try processes.map { try $0.claim(regions) } }
        #expect(claimed.map(\.count).sorted() == [3, 3, 4])
        #expect(Set(claimed.flatMap { $0 }) == Set(regions))
        #expect(claimed.flatMap { $0 }.count == regions.count)
        processes[0].state.close()
        for _ in 0..<2 { claimed = try processes.dropFirst().map { try $0.claim(regions) } }
        #expect(claimed.map(\.count) == [5, 5])
        #expect(Set(claimed.flatMap { $0 }) == Set(regions))
    }

    /// A process frozen (SIGSTOP, a paused VM) between two statements of a transaction holds its row locks only until
    /// the server ends the idle transaction; the waiting writer then goes ahead, and the frozen one, woken, runs its
    /// transaction again on a new connection that keeps the session settings.
    @Test func aTransactionFrozenBetweenStatementsDoesNotBlockOthersAndIsRunAgainWhenItWakes() throws {
        let url = try LoopbackPostgres.shared().database("frozen")
        let setup = try PostgresConnection(url: url)
        try setup.execute("CREATE TABLE lease (region text PRIMARY KEY, token bigint NOT NULL)")
        try setup.execute("INSERT INTO lease VALUES ('lab', 1)")
        let frozen = try PostgresConnection(url: url, idleTransactionTimeout: 1)
        let events = Mutex<[String]>([])
        let attempts = Mutex(0)
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            let tokens = try? frozen.transaction { tx in
                let attempt = attempts.withLock { $0 += 1; return $0 }
                let token = try tx.execute("SELECT token FROM lease WHERE region = 'lab' FOR SHARE").first?.int64("token")
                if attempt == 1 {
                    events.withLock { $0.append("locked") }
                    sleep(4)  // frozen, holding the row
                    events.withLock { $0.append("woke") }
                }
                try tx.execute("SELECT 1")
                return token
            }
            events.withLock { $0.append("committed token \(tokens.map { "\($0)" } ?? "none")") }
            done.signal()
        }
        while !events.withLock({ $0.contains("locked") }) { usleep(10_000) }
        // A takeover waits for the row lock: the server ends the frozen transaction after its idle timeout (1 s).
        try PostgresConnection(url: url).execute("UPDATE lease SET token = 2 WHERE region = 'lab'")
        events.withLock { $0.append("taken over") }
        done.wait()
        #expect(events.withLock { $0 } == ["locked", "taken over", "woke", "committed token 2"])
        #expect(attempts.withLock { $0 } == 2, "the frozen transaction ran again on a new connection")
        #expect(try frozen.execute("SHOW idle_in_transaction_session_timeout").first?.string("idle_in_transaction_session_timeout") == "1s")
    }

    @Test func aBadURLOrAnUnreachableServerIsAClearError() throws {
        do {
            _ = try PostgresState(url: "postgres://nobody:secret@127.0.0.1:1/none")
            Issue.record("connected to nothing")
        } catch {
            #expect("\(error)".contains("127.0.0.1"), "\(error)")
            #expect(!"\(error)".contains("secret"), "\(error)")
        }
    }
}
