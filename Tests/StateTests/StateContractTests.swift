import Billing
import Foundation
import Drivers
import Manifests
import Planning
import Reconcile
import Rings
import State
import StatePostgres
import StateSQLite
import Synchronization
import TestSupport
import Testing

/// The contract every state backend keeps. Each test runs against every backend: the embedded SQLite store and
/// PostgreSQL (a real server on loopback, one database per scratch directory).
@Suite struct StateContractTests {
    static let backends: [String] = ["sqlite", "postgres"]
    static let databases = Mutex<[String: String]>([:])

    /// Opens `backend`'s store for `scratch` (a second open of the same scratch is a second process on the same store).
    static func open(_ backend: String, in scratch: Scratch, leaseSeconds: Double = 15) throws -> any StateBackend {
        switch backend {
        case "sqlite": return try SQLiteState(directory: scratch.path)
        default: return try PostgresState(url: try database(for: scratch), leaseSeconds: leaseSeconds)
        }
    }

    static func database(for scratch: Scratch) throws -> String {
        if let url = databases.withLock({ $0[scratch.path] }) { return url }
        let url = try LoopbackPostgres.shared().database("contract")
        databases.withLock { $0[scratch.path] = url }
        return url
    }

    /// A run's regions are held while it writes: file locks for the embedded store, leases for PostgreSQL.
    static func hold(_ regions: [String], _ state: any StateBackend, in scratch: Scratch) throws -> [AnyObject] {
        let leases: any RegionLeases = (state as? PostgresState).map { PostgresRegionLeases(state: $0) } ?? LocalRegionLeases(stateDirectory: scratch.path)
        return try regions.map { try leases.acquire($0, timeout: 0) }
    }

    static let ring = Address(kind: .ring, region: "lab", name: "object")

    /// Traffic marks: a reading adds only what lies past its counter's mark in its epoch, so a reading recorded twice
    /// or late adds nothing, a new epoch counts from zero, and the bytes go to the instance's hour.
    @Test(arguments: backends)
    func eachTrafficReadingAddsOnlyWhatLiesPastItsMark(backend: String) throws {
        let scratch = try Scratch()
        let state = try Self.open(backend, in: scratch)
        let held = try Self.hold(["lab"], state, in: scratch)
        defer { withExtendedLifetime(held) {} }
        let node = Address(kind: .node, region: "lab", name: "n1")
        let web = Address(kind: .instance, region: "lab", tenant: "acme", name: "web")
        func sample(_ bytes: Int64, _ scope: TrafficCounter.Scope = .public) -> TrafficSample {
            TrafficSample(counter: TrafficCounter(instance: web, direction: .outbound, scope: scope), tenant: "acme", priceList: "standard", bytes: bytes)
        }
        let hour: Int64 = 1_793_000_000 - 1_793_000_000 % 3_600
        #expect(try state.recordTraffic(region: "lab", node: node, epoch: "boot/1", samples: [sample(1_000), sample(50, .internal)], at: hour + 10) == 1_050)
        #expect(try state.recordTraffic(region: "lab", node: node, epoch: "boot/1", samples: [sample(1_000)], at: hour + 20) == 0, "recorded twice")
        #expect(try state.recordTraffic(region: "lab", node: node, epoch: "boot/1", samples: [sample(1_500)], at: hour + 30) == 500)
        #expect(try state.recordTraffic(region: "lab", node: node, epoch: "boot/1", samples: [sample(1_200)], at: hour + 40) == 0, "an older reading")
        #expect(try state.recordTraffic(region: "lab", node: node, epoch: "boot/2", samples: [sample(300)], at: hour + 3_700) == 300, "a new table counts from zero")
        let usage = try state.trafficUsage(tenant: "acme")
        #expect(usage.map { "\($0.hour - hour) \($0.scope.rawValue) \($0.bytes)" } == ["0 internal 50", "0 public 1500", "3600 public 300"], "\(usage)")
        #expect(try state.trafficUsage(tenant: "other").isEmpty)
    }

    /// Stored bytes: the first sample of an account's hour is kept, a second of the same hour (a repeated round, a second
    /// service) adds nothing, and the next hour is its own.
    @Test(arguments: backends)
    func eachAccountsHourOfStoredBytesIsRecordedOnce(backend: String) throws {
        let scratch = try Scratch()
        let state = try Self.open(backend, in: scratch)
        let held = try Self.hold(["lab"], state, in: scratch)
        defer { withExtendedLifetime(held) {} }
        let hour: Int64 = 1_793_000_000 - 1_793_000_000 % 3_600
        func sample(_ tenant: String, _ hour: Int64, _ bytes: Int64) -> StorageUsage { StorageUsage(tenant: tenant, region: "lab", priceList: "standard", hour: hour, bytes: bytes) }
        #expect(try state.recordStorage(region: "lab", samples: [sample("acme", hour, 1_000), sample("beta", hour, 5)]) == 2)
        #expect(try state.recordStorage(region: "lab", samples: [sample("acme", hour, 9_999)]) == 0, "the hour was sampled")
        #expect(try state.recordStorage(region: "lab", samples: [sample("acme", hour + 3_600, 2_000)]) == 1)
        #expect(try state.storageUsage(tenant: "acme").map { "\($0.hour - hour) \($0.bytes)" } == ["0 1000", "3600 2000"])
        #expect(try state.storageUsage(tenant: nil).count == 3)
    }

    /// A builder saved with compressed tables reads back as it was saved; one whose tables are damaged is an error
    /// naming the ring and what to do, not a ring built from scratch.
    @Test(arguments: backends)
    func ringBuildersReadBackAndADamagedOneIsNamed(backend: String) throws {
        let scratch = try Scratch()
        let state = try Self.open(backend, in: scratch)
        let held = try Self.hold(["lab"], state, in: scratch)
        defer { withExtendedLifetime(held) {} }
        var builder = try RingBuilder(partPower: 8, replicas: 3, minPartHours: 1)
        for server in 1...3 { try builder.add(BuilderDevice(region: 1, zone: server, ip: "10.0.0.\(server)", port: 6200, device: "sdb", weight: 100)) }
        _ = try builder.rebalance(hour: 0)
        let saved = try StoredRing(builder: builder).encoded()
        try state.saveRing(address: Self.ring, state: saved, checksum: "aaa", previous: nil)
        #expect(try state.rings(nil)[Self.ring]?.builder.ring().assignments == builder.ring().assignments)

        var damaged = try #require(try JSONSerialization.jsonObject(with: saved) as? [String: Any])
        var damagedBuilder = try #require(damaged["builder"] as? [String: Any])
        damagedBuilder["tables"] = Data("not zlib".utf8).base64EncodedString()
        damaged["builder"] = damagedBuilder
        try state.saveRing(address: Self.ring, state: try JSONSerialization.data(withJSONObject: damaged), checksum: "bbb", previous: "aaa")
        do {
            _ = try state.rings(nil)
            Issue.record("a damaged builder was read")
        } catch {
            let message = "\(error)"
            #expect(message.contains("ring/lab/object") && message.contains("cannot be read") && message.contains("restore the state store"), "\(message)")
        }
    }

    /// A region's convergence is one record per region, the last mark winning; a region never marked is absent.
    @Test(arguments: backends)
    func eachRegionKeepsTheLastRevisionItWasFoundConvergedAt(backend: String) throws {
        let scratch = try Scratch()
        let state = try Self.open(backend, in: scratch)
        #expect(try state.convergence(regions: ["lab"]).isEmpty)
        try state.markConverged(region: "lab", revision: "aaa", at: 1_000.5)
        try state.markConverged(region: "edge", revision: "aaa", at: 1_001)
        try state.markConverged(region: "lab", revision: "bbb", at: 1_002.25)
        let found = try Self.open(backend, in: scratch).convergence(regions: ["lab", "edge", "gone"])
        #expect(found == ["lab": Convergence(revision: "bbb", at: 1_002.25), "edge": Convergence(revision: "aaa", at: 1_001)])
    }

    /// Each region's last successful run, found among runs of several regions, keeps what a rollback took it back from.
    @Test(arguments: backends)
    func theLastAppliedRunOfEachRegionKeepsWhatARollbackUndid(backend: String) throws {
        let scratch = try Scratch()
        let state = try Self.open(backend, in: scratch)
        let held = try Self.hold(["lab", "lab-2", "edge"], state, in: scratch)
        defer { withExtendedLifetime(held) {} }
        #expect(try state.lastApplied(regions: ["lab"]).isEmpty)
        let both = try state.beginRun(regions: ["lab-2", "lab"], revision: "b")
        try state.finishRun(both, succeeded: true)
        let back = try state.beginRun(regions: ["lab"], revision: "a", undoes: ["lab": "b"])
        try state.finishRun(back, succeeded: true)
        let failed = try state.beginRun(regions: ["lab", "edge"], revision: "c")
        try state.finishRun(failed, succeeded: false)
        let last = try state.lastApplied(regions: ["lab", "lab-2", "edge", "la"])
        #expect(last["lab"]?.id == back && last["lab"]?.revision == "a" && last["lab"]?.undoes == ["lab": "b"])
        #expect(last["lab-2"]?.id == both && last["lab-2"]?.undoes == [:])
        #expect(last["edge"] == nil && last["la"] == nil, "a failed run applied nothing; a prefix of a name is not the name")
    }

    @Test(arguments: backends)
    func ringBuildersSaveByCompareAndSwap(backend: String) throws {
        let scratch = try Scratch()
        let state = try Self.open(backend, in: scratch)
        let held = try Self.hold(["lab"], state, in: scratch)
        defer { withExtendedLifetime(held) {} }
        try state.saveRing(address: Self.ring, state: Data("{}".utf8), checksum: "aaa", previous: nil)
        // Saving the same state again succeeds (an interrupted apply repeats it) and is not a new generation.
        let stamp = try state.ringStamps()[Self.ring]
        try state.saveRing(address: Self.ring, state: Data("{}".utf8), checksum: "aaa", previous: nil)
        #expect(try state.ringStamps()[Self.ring] == stamp)
        // A save planned from a state that is no longer current loses.
        #expect(throws: StateConflict.self) {
            try state.saveRing(address: Self.ring, state: Data("{}".utf8), checksum: "ccc", previous: "bbb")
        }
        try state.saveRing(address: Self.ring, state: Data("{}".utf8), checksum: "ccc", previous: "aaa")
        #expect(try state.ringStamps()[Self.ring] != stamp)
    }

    @Test(arguments: backends)
    func nodeInventoryRemembersAndForgets(backend: String) throws {
        let scratch = try Scratch()
        let state = try Self.open(backend, in: scratch)
        let a = NodeEndpoint(address: Address(kind: .node, region: "lab", name: "n1"), libvirt: "simulated", cpus: 4, memoryKiB: 1 << 20)
        // A production node keeps its pinned host key and file root: it is reached the same way after it leaves the manifests.
        let b = NodeEndpoint(address: Address(kind: .node, region: "edge", name: "n1"), libvirt: "qemu+ssh://root@192.0.2.1/system", cpus: 8, memoryKiB: 1 << 21,
                             hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostKeyOfEdgeN1", fileRoot: "/srv/test-host")
        // The revision moves with every change and only then: a caller keeps the nodes while it is the same.
        var revisions = [try state.inventoryRevision()]
        func changed() throws -> Bool {
            revisions.append(try state.inventoryRevision())
            return revisions[revisions.count - 1] != revisions[revisions.count - 2]
        }
        try state.rememberNodes([a, b])
        #expect(try changed(), "two nodes recorded")
        try state.rememberNodes([a])
        #expect(try !changed(), "a node recorded as it already is")
        #expect(try state.knownNodes() == [b, a])  // by address: node/edge/n1 before node/lab/n1, same name in two regions kept apart
        #expect(try state.knownNodes(in: ["lab"]) == [a])
        #expect(try state.knownNodes(in: ["edge", "lab", "nowhere"]) == [b, a])
        #expect(try state.knownNodes(in: []) == [])
        for moved in [NodeEndpoint(address: a.address, libvirt: "simulated", cpus: 8, memoryKiB: 1 << 20),
                      NodeEndpoint(address: a.address, libvirt: "simulated", cpus: 8, memoryKiB: 1 << 20, hostKey: "ssh-ed25519 AAAAnother"),
                      NodeEndpoint(address: a.address, libvirt: "simulated", cpus: 8, memoryKiB: 1 << 20, hostKey: "ssh-ed25519 AAAAnother", fileRoot: "/srv/x"),
                      NodeEndpoint(address: a.address, libvirt: "simulated", cpus: 8, memoryKiB: 1 << 20), a] {
            try state.rememberNodes([b, moved])
            #expect(try changed(), "a node recorded with another endpoint: \(moved)")
            #expect(try state.knownNodes(in: ["lab"]) == [moved])
        }
        try state.forgetNodes([a.address])
        #expect(try changed(), "a node forgotten")
        #expect(try state.knownNodes() == [b])
        try state.forgetNodes([a.address, Address(kind: .node, region: "lab", name: "never")])
        #expect(try !changed(), "nodes not recorded forgotten")
        #expect(Set(revisions).count == 8, "every revision another number: \(revisions)")
    }

    /// The last change done to each resource (the console's link to its run): a later run's done change wins, a failed
    /// or merely planned one does not count, and a resource never changed is absent.
    @Test(arguments: backends)
    func eachResourcesLastDoneChangeNamesItsRunAndRevision(backend: String) throws {
        let scratch = try Scratch()
        let state = try Self.open(backend, in: scratch)
        let held = try Self.hold(["lab"], state, in: scratch)
        defer { withExtendedLifetime(held) {} }
        let node = Address(kind: .node, region: "lab", name: "n1")
        func change(_ name: String, _ action: Change.Action) -> Change {
            Change(address: Address(kind: .network, region: "lab", name: name), target: .node(node), action: action, reason: .new,
                   operation: .ensureNetwork(network: name, bridge: "br100"))
        }
        let first = try state.beginRun(regions: ["lab"], revision: "aaa")
        try state.journalPlanned([change("a", .create), change("b", .create)], run: first)
        try state.journal([change("a", .create), change("b", .create)], run: first, status: .done, error: nil)
        try state.finishRun(first, succeeded: true)
        let second = try state.beginRun(regions: ["lab"], revision: "bbb")
        try state.journalPlanned([change("a", .update), change("b", .update), change("c", .create)], run: second)
        try state.journal(change("a", .update), run: second, status: .done, error: nil)
        try state.journal(change("b", .update), run: second, status: .failed, error: "refused")
        try state.finishRun(second, succeeded: false)
        let addresses = ["a", "b", "c", "never"].map { Address(kind: .network, region: "lab", name: $0) }
        let last = try state.lastChanges(addresses)
        #expect(last[addresses[0]]?.run == second && last[addresses[0]]?.action == .update && last[addresses[0]]?.revision == "bbb")
        #expect(last[addresses[1]]?.run == first && last[addresses[1]]?.action == .create && last[addresses[1]]?.revision == "aaa", "a failed change changed nothing")
        #expect(last[addresses[2]] == nil && last[addresses[3]] == nil, "planned only, and never changed")
        #expect((last[addresses[0]]?.at ?? 0) > 1_700_000_000)
        #expect(try state.lastChanges([]).isEmpty)
    }

    @Test(arguments: backends)
    func journalFollowsEachChange(backend: String) throws {
        let scratch = try Scratch()
        let state = try Self.open(backend, in: scratch)
        let node = Address(kind: .node, region: "lab", name: "n1")
        let change = Change(address: Address(kind: .network, region: "lab", name: "private"), target: .node(node), action: .create, reason: .new,
                            operation: .ensureNetwork(network: "private", bridge: "br100"))
        let held = try Self.hold(["lab"], state, in: scratch)
        defer { withExtendedLifetime(held) {} }
        let run = try state.beginRun(regions: ["lab"], revision: "abc")
        try state.journalPlanned([change], run: run)
        try state.journal(change, run: run, status: .started, error: nil)
        try state.journal(change, run: run, status: .done, error: nil)
        try state.finishRun(run, succeeded: true)
        let entries = try state.journalEntries(run: run)
        #expect(entries.map(\.status) == [.done])
        #expect(entries.first?.changeID.description == "network/lab/private@node/lab/n1")
        #expect(entries.first?.target == .node(Address(kind: .node, region: "lab", name: "n1")))
        #expect(entries.first?.action == .create && entries.first?.address.kind == .network)
        #expect(entries.first?.attempts == 1)
        #expect(try state.runs().map(\.status) == [.succeeded])
        // A region's runs at a revision: what a deploy pipeline reads to learn what the region's holder made of it.
        let other = try state.beginRun(regions: ["lab"], revision: "def")
        try state.finishRun(other, succeeded: false)
        #expect(try state.runs(region: "lab", revision: "abc").map(\.status) == [.succeeded])
        #expect(try state.runs(region: "lab", revision: "def").map(\.status) == [.failed])
        #expect(try state.runs(region: "lab", revision: "def").first?.revision == "def")
        #expect(try state.runs(region: "edge", revision: "abc").isEmpty)
    }

    @Test(arguments: backends)
    func aBatchOfChangesIsJournaledInOneStep(backend: String) throws {
        let scratch = try Scratch()
        let state = try Self.open(backend, in: scratch)
        let node = Address(kind: .node, region: "lab", name: "n1")
        // More than one statement's worth (a hundred) of changes of one node, as an applier's batch journals them.
        let changes = (0..<130).map { index in
            Change(address: Address(kind: .network, region: "lab", name: "net\(index)"), target: .node(node), action: .create, reason: .new,
                   operation: .ensureNetwork(network: "net\(index)", bridge: "br\(index)"))
        }
        let held = try Self.hold(["lab"], state, in: scratch)
        defer { withExtendedLifetime(held) {} }
        let run = try state.beginRun(regions: ["lab"], revision: "abc")
        try state.journalPlanned(ChangeList(changes), run: run)
        try state.journal(Array(changes.prefix(120)), run: run, status: .started, error: nil)
        try state.journal(Array(changes.prefix(119)), run: run, status: .done, error: nil)
        try state.journal([changes[119]], run: run, status: .failed, error: "refused")
        try state.journal([], run: run, status: .done, error: nil)
        let entries = try state.journalEntries(run: run)
        #expect(entries.count == 130)
        #expect(entries.prefix(119).allSatisfy { $0.status == .done && $0.attempts == 1 })
        #expect(entries[119].status == .failed && entries[119].error == "refused" && entries[119].attempts == 1)
        #expect(entries.suffix(10).allSatisfy { $0.status == .planned && $0.attempts == 0 }, "changes outside the batch are untouched")
    }

    @Test(arguments: backends)
    func aPipelineRunIsKeptThenUpdatedInPlace(backend: String) throws {
        let scratch = try Scratch()
        let state = try Self.open(backend, in: scratch)
        var record = PipelineRunRecord(kind: .deploy, pipeline: "deploy", subject: "main", commit: "abc", verdict: .running, startedAt: 100, seconds: 0, steps: [])
        let id = try state.recordPipelineRun(record)
        record.id = id
        record.verdict = .passed
        record.seconds = 2.5
        record.steps = [PipelineStep(name: "apply: {region: lab}", status: .passed, seconds: 1, message: "converged", log: "", region: "lab")]
        #expect(try state.recordPipelineRun(record) == id)
        let second = try state.recordPipelineRun(PipelineRunRecord(kind: .gate, pipeline: "gate", subject: "c/1", commit: "def", verdict: .failed, startedAt: 200,
                                                                   seconds: 1, steps: []))
        #expect(second != id)
        let kept = try state.pipelineRuns(limit: 10)
        #expect(kept.map(\.id) == [second, id], "newest first, the updated one still one row")
        #expect(kept.last == record)
        record.id = 9_999
        #expect(throws: (any Error).self) { try state.recordPipelineRun(record) }
    }

    @Test(arguments: backends)
    func planMemosAreKeptAndForgotten(backend: String) throws {
        let scratch = try Scratch()
        let state = try Self.open(backend, in: scratch)
        try state.saveRegionMemos([("lab", "k1", Data("p".utf8)), ("edge", "k2", Data("q".utf8))])
        try state.saveRegionMemos([("edge", "k3", nil)])
        let memos = try state.regionMemos()
        #expect(memos.keys.sorted() == ["lab"])
        #expect(memos["lab"]?.key == "k1")
    }

    @Test func firstOpensAtOnceMigrateOneAfterTheOther() throws {
        for _ in 0..<5 {
            let scratch = try Scratch("race")
            let path = scratch.path
            let failures = Mutex<[String]>([])
            DispatchQueue.concurrentPerform(iterations: 8) { _ in
                do {
                    let store = try SQLiteState(directory: path)
                    let run = try store.beginRun(regions: ["lab"], revision: nil)
                    try store.finishRun(run, succeeded: true)
                } catch {
                    failures.withLock { $0.append("\(error)") }
                }
            }
            #expect(failures.withLock { $0 }.isEmpty)
            #expect(try SQLiteState(directory: path).runs().count == 8)
        }
    }

    @Test(arguments: backends)
    func aLiveRunIsNeverClosedByAnotherStart(backend: String) throws {
        let scratch = try Scratch("live")
        let owner = try Self.open(backend, in: scratch)
        let lab = try Self.hold(["lab"], owner, in: scratch)
        let run = try owner.beginRun(regions: ["lab"], revision: nil)
        let other = try Self.open(backend, in: scratch)
        #expect(try other.recoverDeadRuns().isEmpty)
        let edge = try Self.hold(["edge"], other, in: scratch)
        defer { withExtendedLifetime((lab, edge)) {} }
        _ = try other.beginRun(regions: ["edge"], revision: nil)
        #expect(try other.runs().first { $0.id == run }?.status == .running)
        try owner.finishRun(run, succeeded: true)
        #expect(try other.runs().first { $0.id == run }?.status == .succeeded)
    }

    @Test func theEmbeddedStoreCommitsThroughAWriteAheadLogThatOutlivesItsConnections() throws {
        let scratch = try Scratch("wal")
        do {
            let store = try SQLiteState(directory: scratch.path)
            try store.finishRun(try store.beginRun(regions: ["lab"], revision: nil), succeeded: true)
        }
        // The header's format versions (bytes 18 and 19) are 2 in write-ahead-log mode, 1 with a rollback journal.
        let header = try #require(FileManager.default.contents(atPath: scratch.file("stacklab.sqlite")))
        #expect(header.count > 20 && header[18] == 2 && header[19] == 2, "WAL mode")
        // Every connection is closed: the log and its index stay, so a process that may not write the directory can
        // still open the store (SQLite needs them present for that); and what was committed is there.
        #expect(FileManager.default.fileExists(atPath: scratch.file("stacklab.sqlite-wal")))
        #expect(FileManager.default.fileExists(atPath: scratch.file("stacklab.sqlite-shm")))
        #expect(try SQLiteState(directory: scratch.path).runs().map(\.status) == [.succeeded])
    }

    @Test func aDamagedStoreIsAnErrorNamingItsFile() throws {
        let scratch = try Scratch("damaged")
        try scratch.write("stacklab.sqlite", String(repeating: "not a database ", count: 100))
        do {
            _ = try SQLiteState(directory: scratch.path)
            Issue.record("a damaged store opened")
        } catch {
            #expect("\(error)".contains(scratch.file("stacklab.sqlite")), "\(error)")
        }
    }
}
