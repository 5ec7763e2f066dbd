import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Manifests
import Postgres
import Processes
import TestSupport
import Testing
@testable import Reconcile

/// Several reconcilers on one real PostgreSQL server (on loopback, started by the test and stopped by PID): `stacklab
/// serve` twice on the same database and simulated nodes, pushes converged with never two runs on one region at once
/// (checked from the journal's runs), a SIGKILLed service's regions taken over by the survivor, and an apply stopped
/// (SIGSTOP) past its lease fenced out for good.
@Suite(.serialized) struct SharedStateTests {
    /// A synthetic cloud in a git repository: `regions` regions of 3 nodes, 4 instances each.
    final class Cloud {
        let root: Scratch
        let regions: Int
        var work: String { root.file("work") }
        var bare: String { root.file("cloud.git") }
        var state: String { root.file("state") }
        let database: String
        private var pushes = 0

        init(regions: Int) throws {
            self.regions = regions
            root = try Scratch("share")
            database = try LoopbackPostgres.shared().database("share")
            var deployment = SyntheticDeployment(nodes: regions * 3, instances: regions * 4)
            deployment.nodesPerRegion = 3
            deployment.tenants = 4
            _ = try deployment.write(to: work)
            try Command.check(["git", "init", "-q", "-b", "main", work])
            try GitCLI.commitAll(in: work)
            try Command.check(["git", "clone", "-q", "--bare", work, bare])
            try Command.check(["git", "-C", work, "remote", "add", "origin", bare])
            let valid = try StackLabBinary.run(["validate", "--repo", work])
            guard valid.status == 0 else { throw Command.Failure(description: "the synthetic cloud does not validate: \(valid.output)") }
            try "t0ken\n".write(toFile: root.file("token"), atomically: true, encoding: .utf8)
            try "s3cret\n".write(toFile: root.file("secret"), atomically: true, encoding: .utf8)
        }

        /// Commits and pushes one new instance in every region; the new revision.
        @discardableResult
        func pushTouchingEveryRegion() throws -> String {
            pushes += 1
            let text = (0..<regions).map { r in
                "kind: Instance\nname: push\(pushes)-\(r)\nregion: \(SyntheticDeployment.regionName(r))\ntenant: t0\nspec: {flavor: m1.small, image: ubuntu-24.04, network: private}\n"
            }.joined(separator: "---\n")
            try text.write(toFile: "\(work)/manifests/tenants/t0/push-\(pushes).yaml", atomically: true, encoding: .utf8)
            let revision = try GitCLI.commitAll(in: work, message: "push \(pushes)")
            try Command.check(["git", "-C", work, "push", "-q", "origin", "HEAD:main"])
            return revision
        }

        /// Commits and pushes one new instance in region `r`; the new revision.
        @discardableResult
        func pushTouching(region r: Int) throws -> String {
            pushes += 1
            try "kind: Instance\nname: push\(pushes)-\(r)\nregion: \(SyntheticDeployment.regionName(r))\ntenant: t0\nspec: {flavor: m1.small, image: ubuntu-24.04, network: private}\n"
                .write(toFile: "\(work)/manifests/tenants/t0/push-\(pushes).yaml", atomically: true, encoding: .utf8)
            let revision = try GitCLI.commitAll(in: work, message: "push \(pushes): region \(r) only")
            try Command.check(["git", "-C", work, "push", "-q", "origin", "HEAD:main"])
            return revision
        }

        var head: String { (try? GitCLI.run(["rev-parse", "HEAD"], in: work)) ?? "" }

        /// What `stacklab plan` says now, against the shared database.
        func plan() throws -> Command.Result {
            try StackLabBinary.run(["plan", "--repo", work, "--state-dir", state, "--database", database])
        }

        /// Every run the reconcilers recorded: (owner, regions, started, finished).
        func runs() throws -> [(owner: String, regions: [String], started: Double, finished: Double?, status: String)] {
            try PostgresConnection(url: database).execute("SELECT owner, regions, started_at, finished_at, status FROM run ORDER BY id").rows.map {
                ($0.string("owner"), $0.string("regions").split(separator: ",").map(String.init), $0.double("started_at") ?? 0, $0.double("finished_at"),
                 $0.string("status"))
            }
        }
    }

    /// One `stacklab serve` on the shared database.
    final class Server {
        let port: UInt16
        let pid: pid_t
        let log: String
        /// The operator token (the status needs a credential).
        let token: String

        init(_ cloud: Cloud, name: String, leaseSeconds: Double) throws {
            port = try LoopbackSSHD.freePort()
            log = cloud.root.file("\(name).log")
            token = try String(contentsOfFile: cloud.root.file("token"), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            pid = try Command.start([StackLabBinary.path, "serve", "--repo", cloud.bare, "--state-dir", cloud.state, "--port", "\(port)",
                                     "--token-file", cloud.root.file("token"), "--webhook-secret-file", cloud.root.file("secret"),
                                     "--poll", "0.5", "--resync", "3", "--database", cloud.database, "--lease-seconds", "\(leaseSeconds)"], output: log)
        }

        struct Status: Decodable {
            var regions: [Region]
            var deploy: Deploy?
            struct Region: Decodable { var region: String; var appliedRevision: String?; var holder: String?; var lastError: String? }
            struct Deploy: Decodable { var revision: String; var state: String; var runner: String; var steps: [Step] }
            struct Step: Decodable { var name: String; var status: String; var message: String }
        }

        func status() -> Status? {
            var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)/api/status")!, timeoutInterval: 5)
            request.httpMethod = "GET"
            request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
            final class Box: @unchecked Sendable { var data: Data? }
            let box = Box()
            let done = DispatchSemaphore(value: 0)
            URLSession.shared.dataTask(with: request) { data, _, _ in
                box.data = data
                done.signal()
            }.resume()
            done.wait()
            return box.data.flatMap { try? JSONDecoder().decode(Status.self, from: $0) }
        }

        /// The regions this service holds and has converged at `revision`.
        func converged(at revision: String) -> Set<String> {
            Set((status()?.regions ?? []).filter { $0.holder == "this reconciler" && $0.appliedRevision == revision }.map(\.region))
        }

        var output: String {
            let log = (try? String(contentsOfFile: self.log, encoding: .utf8)) ?? ""
            let regions = (status()?.regions ?? []).map { "\($0.region) \($0.holder ?? "-") \($0.appliedRevision?.prefix(8) ?? "-") \($0.lastError ?? "")" }
            return log.suffix(3000) + "\nregions: " + regions.joined(separator: "; ")
        }
    }

    /// Waits until the servers between them hold and converged every region at `revision`; the seconds it took.
    static func waitConverged(_ servers: [Server], _ cloud: Cloud, at revision: String, within seconds: Double) -> Double? {
        let start = Date()
        let all = Set((0..<cloud.regions).map(SyntheticDeployment.regionName))
        while Date().timeIntervalSince(start) < seconds {
            let held = servers.map { $0.converged(at: revision) }
            if held.reduce(Set<String>(), { $0.union($1) }) == all && held.map(\.count).reduce(0, +) == all.count { return Date().timeIntervalSince(start) }
            usleep(100_000)
        }
        return nil
    }

    /// No two runs on one region overlap in time, whichever process made them.
    static func overlaps(_ runs: [(owner: String, regions: [String], started: Double, finished: Double?, status: String)]) -> [String] {
        var byRegion: [String: [(Double, Double, String)]] = [:]
        for run in runs {
            for region in run.regions { byRegion[region, default: []].append((run.started, run.finished ?? .infinity, run.owner)) }
        }
        var found: [String] = []
        for (region, intervals) in byRegion {
            let sorted = intervals.sorted { $0.0 < $1.0 }
            for (a, b) in zip(sorted, sorted.dropFirst()) where b.0 < a.1 {
                found.append("\(region): a run by \(b.2) began at \(b.0) before a run by \(a.2) ended at \(a.1)")
            }
        }
        return found
    }

    @Test func twoServicesNeverApplyARegionAtOnceAndTheSurvivorOfASIGKILLTakesOverItsRegions() throws {
        let cloud = try Cloud(regions: 6)
        let lease = 3.0
        let a = try Server(cloud, name: "a", leaseSeconds: lease)
        var b: Server? = try Server(cloud, name: "b", leaseSeconds: lease)
        defer {
            Command.stop(a.pid)
            if let b { Command.stop(b.pid) }
        }
        let servers = [a, b!]
        try #require(Self.waitConverged(servers, cloud, at: cloud.head, within: 90) != nil,
                     "both converged the regions between them: \(a.output)\n\(b!.output)")
        // Pushes touching every region, each converged by the two between them.
        for _ in 0..<3 {
            let revision = try cloud.pushTouchingEveryRegion()
            try #require(Self.waitConverged(servers, cloud, at: revision, within: 60) != nil, "a push converged: \(a.output)\n\(b!.output)")
        }
        let spread = servers.map { $0.converged(at: cloud.head).count }
        #expect(spread.sorted() == [3, 3], "the regions are shared out evenly: \(spread)")
        let runs = try cloud.runs()
        #expect(Set(runs.map(\.owner)).count == 2, "both applied regions")
        #expect(Self.overlaps(runs).isEmpty, "\(Self.overlaps(runs))")
        #expect(runs.count >= 6 * 4, "every region ran for the start and for each push: \(runs.count)")

        // b dies without a word; a takes over its regions once their leases run out.
        let orphaned = b!.converged(at: cloud.head)
        kill(b!.pid, SIGKILL)
        var status: Int32 = 0
        waitpid(b!.pid, &status, 0)
        b = nil
        let killedAt = Date()
        var handover: Double?
        while handover == nil && Date().timeIntervalSince(killedAt) < 30 {
            if Set((a.status()?.regions ?? []).filter { $0.holder == "this reconciler" }.map(\.region)).count == cloud.regions {
                handover = Date().timeIntervalSince(killedAt)
            }
            usleep(50_000)
        }
        let took = try #require(handover, "the survivor took every region: \(a.output)")
        #expect(took < lease + 2, "the survivor took \(orphaned.sorted()) over within the lease time and a poll: \(took) s")
        let revision = try cloud.pushTouchingEveryRegion()
        let converged = Self.waitConverged([a], cloud, at: revision, within: 60)
        try #require(converged != nil, "the survivor converged every region: \(a.output)")
        print("handover of \(orphaned.count) regions after SIGKILL: \(String(format: "%.2f", took)) s (lease \(lease) s); the next push converged in \(String(format: "%.2f", converged ?? 0)) s")

        // Nothing lost, nothing applied twice: the plan is empty, and every instance was created exactly once.
        let plan = try cloud.plan()
        #expect(plan.status == 0 && plan.output.contains("No changes"), "\(plan.output)")
        let creates = try PostgresConnection(url: cloud.database).execute("""
            SELECT address, count(*) AS n FROM journal WHERE action = 'create' AND status = 'done' AND address LIKE 'instance/%' GROUP BY address
            """).rows
        #expect(creates.count == 6 * 4 + 6 * 4, "every instance created: \(creates.count)")
        #expect(creates.allSatisfy { $0.int("n") == 1 }, "\(creates.filter { $0.int("n") != 1 }.map { $0.string("address") })")
        #expect(Self.overlaps(try cloud.runs()).isEmpty)
    }

    @Test func anApplyStoppedPastItsLeaseCannotWriteAgainAndTheNextApplyFinishesItsWork() throws {
        let cloud = try Cloud(regions: 1)
        let log = cloud.root.file("stopped.log")
        // A node's changes are applied, then saved together (the save is a driver call too): ten calls are past the
        // first node's save (at most eight changes and its save), whatever the schedule.
        let stopped = try Command.start(["env", "STACKLAB_FAULT_STOP_AFTER_DRIVER_CALLS=10", StackLabBinary.faults, "apply", "--auto-approve", "--parallelism", "1",
                                         "--repo", cloud.work, "--state-dir", cloud.state, "--database", cloud.database, "--lease-seconds", "2"], output: log)
        var stat = ""
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            stat = (try? String(contentsOfFile: "/proc/\(stopped)/stat", encoding: .utf8)) ?? ""
            if stat.split(separator: " ").dropFirst(2).first == "T" { break }
            usleep(50_000)
        }
        try #require(stat.split(separator: " ").dropFirst(2).first == "T", "the apply stopped itself after 10 driver calls: \(stat)")
        // Past its lease (2 s), another apply takes the region, closes the stopped run and finishes the work.
        usleep(3_000_000)
        let next = try StackLabBinary.run(["apply", "--auto-approve", "--repo", cloud.work, "--state-dir", cloud.state, "--database", cloud.database])
        #expect(next.status == 0 && next.output.contains("Verified"), "\(next.output)")
        let database = try PostgresConnection(url: cloud.database)
        let firstRun = try #require(database.execute("SELECT id FROM run ORDER BY id LIMIT 1").first?.int64("id"))
        let before = try database.execute("SELECT change_id, status, error, updated_at FROM journal WHERE run_id = $1 ORDER BY id", [firstRun]).values
        #expect(try database.execute("SELECT status FROM run WHERE id = $1", [firstRun]).first?.string("status") == "interrupted")

        // The stopped apply wakes up: its next write is refused, it stops, and it wrote nothing.
        kill(stopped, SIGCONT)
        var status: Int32 = 0
        waitpid(stopped, &status, 0)
        let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(status != 0, "the fenced apply failed: \(output)")
        #expect(output.contains("lease on region 'r0' was lost"), "\(output)")
        let after = try database.execute("SELECT change_id, status, error, updated_at FROM journal WHERE run_id = $1 ORDER BY id", [firstRun]).values
        #expect(before == after, "the fenced run wrote nothing after waking")
        // What it finished before it stopped stays done (at least the first node's saved batch; region-target ring saves
        // run beside them, so the exact count depends on the schedule); the rest was closed as interrupted.
        let finished = try database.execute("SELECT count(*) AS n FROM journal WHERE run_id = $1 AND status = 'done'", [firstRun]).first?.int("n") ?? 0
        #expect(finished >= 2 && finished < before.count, "\(before)")
        let plan = try cloud.plan()
        #expect(plan.status == 0 && plan.output.contains("No changes"), "\(plan.output)")
        let creates = try database.execute("""
            SELECT address, count(*) AS n FROM journal WHERE action = 'create' AND status = 'done' AND address LIKE 'instance/%' GROUP BY address
            """).rows
        #expect(creates.count == 4 && creates.allSatisfy { $0.int("n") == 1 }, "each instance created once: \(creates.map { "\($0.string("address")) \($0.string("n"))" })")
    }

    @Test func aDeployIsRolledOutAcrossTwoServicesEachApplyingTheRegionsItHolds() throws {
        let cloud = try Cloud(regions: 4)
        try FileManager.default.createDirectory(atPath: "\(cloud.work)/ci", withIntermediateDirectories: true)
        try """
            kind: Pipeline
            name: deploy
            spec:
              trigger: {event: push, branch: main}
              steps: [validate, {apply: {region: r0}}, {apply: {region: r1}}, {apply: {region: r2}}, {apply: {region: r3}}]

            """.write(toFile: "\(cloud.work)/ci/deploy.yaml", atomically: true, encoding: .utf8)
        try GitCLI.commitAll(in: cloud.work, message: "deploy pipeline")
        try Command.check(["git", "-C", cloud.work, "push", "-q", "origin", "HEAD:main"])
        let a = try Server(cloud, name: "a", leaseSeconds: 3)
        let b = try Server(cloud, name: "b", leaseSeconds: 3)
        defer {
            Command.stop(a.pid)
            Command.stop(b.pid)
        }
        let servers = [a, b]
        try #require(Self.waitConverged(servers, cloud, at: cloud.head, within: 90) != nil, "the first rollout: \(a.output)\n\(b.output)")

        let revision = try cloud.pushTouchingEveryRegion()
        var deploy: Server.Status.Deploy?
        let deadline = Date().addingTimeInterval(90)
        while Date() < deadline {
            deploy = servers.compactMap { $0.status()?.deploy }.first { $0.revision == revision && $0.runner == "this reconciler" }
            if deploy?.state == "passed" && Self.waitConverged(servers, cloud, at: revision, within: 0.2) != nil { break }
            usleep(100_000)
        }
        let passed = try #require(deploy, "a deploy of the push: \(a.output)\n\(b.output)")
        #expect(passed.state == "passed", "\(passed.steps)")
        #expect(passed.steps.map(\.status) == Array(repeating: "passed", count: 5), "\(passed.steps)")
        // Both services held regions; the runner converged its own inline and read the others' outcome from their runs.
        let spread = servers.map { $0.converged(at: revision).count }
        #expect(spread.sorted() == [2, 2], "\(spread)")
        #expect(passed.steps.contains { $0.message == "converged" }, "\(passed.steps)")
        #expect(passed.steps.contains { $0.message.hasPrefix("converged by its holder (run ") }, "\(passed.steps)")
        // Regions were released in the pipeline's order: each region's first run at the revision began after the one before it.
        let runs = try cloud.runs()
        let starts = try PostgresConnection(url: cloud.database).execute(
            "SELECT regions, min(started_at) AS at FROM run WHERE revision = $1 GROUP BY regions ORDER BY at", [revision]).rows.map { $0.string("regions") }
        #expect(starts == ["r0", "r1", "r2", "r3"], "regions converged in the pipeline's order: \(starts)")
        #expect(Self.overlaps(runs).isEmpty, "\(Self.overlaps(runs))")

        // A push that changes one region only: the steps of the regions with nothing to change, held by either service,
        // pass on their holder's record that they are converged at the revision (an empty plan writes no run). It
        // used to stop at the first such region held by the other service, for good.
        let runner = try #require(servers.first { $0.status()?.deploy?.runner == "this reconciler" })
        let held = Set(runner.status()?.regions.filter { $0.holder == "this reconciler" }.map(\.region) ?? [])
        let other = try #require((0..<4).first { !held.contains(SyntheticDeployment.regionName($0)) }, "the runner holds every region: \(held)")
        let touched = (0..<4).first { $0 != other } ?? 0
        let single = try cloud.pushTouching(region: touched)
        var rollout: Server.Status.Deploy?
        let until = Date().addingTimeInterval(90)
        while Date() < until {
            rollout = servers.compactMap { $0.status()?.deploy }.first { $0.revision == single && $0.runner == "this reconciler" }
            if rollout?.state == "passed" { break }
            usleep(100_000)
        }
        let singlePassed = try #require(rollout, "a deploy of the one-region push: \(a.output)\n\(b.output)")
        #expect(singlePassed.state == "passed", "the rollout went past the regions with nothing to change: \(singlePassed.steps)")
        #expect(singlePassed.steps.contains { $0.message == "converged by its holder (nothing to change)" }, "\(singlePassed.steps)")

        let history = try StackLabBinary.run(["ci", "history", "--state-dir", cloud.state, "--database", cloud.database])
        #expect(history.output.split(separator: "\n").contains { $0.contains(String(revision.prefix(12))) && $0.contains("deploy deploy") && $0.contains(" +1 ") },
                "\(history.output)")
    }
}
