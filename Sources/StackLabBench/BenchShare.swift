import ArgumentParser
import Foundation
import StackLabCLI
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Processes
import Reconcile
import TestSupport

/// `stacklab-bench share`: several `stacklab serve` processes sharing regions on one PostgreSQL database.
struct BenchShare: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "share",
        abstract: "Time reconcilers sharing regions on PostgreSQL: all regions converged after a push touching every region, the spread, a SIGKILL handover.",
        discussion: """
            Starts a PostgreSQL server on loopback (initdb into a temporary directory, stopped by PID at the end) and \
            --reconcilers `stacklab serve` processes on one synthetic cloud of --regions regions (3 simulated nodes and \
            10 instances each), all following one bare repository by polling every 0.5 s. Rows: the initial \
            convergence; --runs pushes that each add an instance to every region, from the push to every region \
            converged at it (the regions each process holds are its spread); then one process is SIGKILLed and the \
            time until the survivors hold all its regions (lease 5 s), and until they converged the next push.
            """)

    @Option(help: "Regions.")
    var regions = 100

    @Option(help: "stacklab serve processes.")
    var reconcilers = 3

    @Option(help: "Pushes timed (the median is reported).")
    var runs = 3

    @Option(help: "text or json.")
    var format: OutputFormat = .text

    func run() throws {
        guard reconcilers >= 2, regions >= reconcilers else { throw ValidationError("--reconcilers must be at least 2 and at most --regions") }
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("stacklab-bench-share-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let postgres = try LoopbackPostgres()
        defer { postgres.stop() }
        let database = try postgres.database("bench")
        let work = "\(root)/work", bare = "\(root)/cloud.git", state = "\(root)/state"
        var deployment = SyntheticDeployment(nodes: regions * 3, instances: regions * 10)
        deployment.nodesPerRegion = 3
        deployment.tenants = 10
        _ = try deployment.write(to: work)
        try Command.check(["git", "init", "-q", "-b", "main", work])
        try Self.commit(work, "synthetic cloud")
        try Command.check(["git", "clone", "-q", "--bare", work, bare])
        try Command.check(["git", "-C", work, "remote", "add", "origin", bare])
        try "\(BenchServe.token)\n".write(toFile: "\(root)/token", atomically: true, encoding: .utf8)
        try "bench-secret\n".write(toFile: "\(root)/secret", atomically: true, encoding: .utf8)
        let lease = 5.0
        var servers: [(pid: pid_t, url: String)] = []
        defer { for server in servers { Command.stop(server.pid) } }
        for index in 0..<reconcilers {
            let port = try LoopbackSSHD.freePort()
            let pid = try Command.start([SelfPath.stacklab, "serve", "--repo", bare, "--state-dir", state, "--port", "\(port)", "--token-file", "\(root)/token",
                                         "--webhook-secret-file", "\(root)/secret", "--poll", "0.5", "--resync", "3600", "--database", database,
                                         "--lease-seconds", "\(lease)"], output: "\(root)/serve-\(index).log")
            servers.append((pid, "http://127.0.0.1:\(port)"))
        }
        let names = Set((0..<regions).map(SyntheticDeployment.regionName))
        func head() throws -> String { try Command.check(["git", "-C", work, "rev-parse", "HEAD"]).trimmingCharacters(in: .whitespacesAndNewlines) }
        /// Waits until the servers hold and converged every region at `revision` between them; the regions each holds.
        func converged(_ servers: [(pid: pid_t, url: String)], at revision: String, within seconds: Double) throws -> [Int] {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                let held = servers.map { server in
                    Set((Self.status(server.url)?.regions ?? []).filter { $0.holder == "this reconciler" && $0.appliedRevision == revision }.map(\.region))
                }
                if held.reduce(Set<String>(), { $0.union($1) }) == names && held.map(\.count).reduce(0, +) == names.count { return held.map(\.count) }
                usleep(50_000)
            }
            throw fail("the reconcilers did not converge every region at \(revision.prefix(12)): \(BenchServe.tail("\(root)/serve-0.log"))")
        }

        let initialStart = Date()
        var spread = try converged(servers, at: try head(), within: 3600)
        let initial = Date().timeIntervalSince(initialStart)
        var pushes: [Double] = []
        for run in 0..<runs {
            let revision = try Self.pushTouchingEveryRegion(work, regions: regions, tag: "p\(run)")
            let start = Date()
            spread = try converged(servers, at: revision, within: 600)
            pushes.append(Date().timeIntervalSince(start))
        }
        let regionRuns = servers.flatMap { server in
            (Self.status(server.url)?.regions ?? []).filter { $0.holder == "this reconciler" }.compactMap(\.lastRunSeconds)
        }
        let resident = servers.map { ResidentMemory.residentMB(of: $0.pid) }.max() ?? 0
        let victim = servers.removeLast()
        kill(victim.pid, SIGKILL)
        var status: Int32 = 0
        waitpid(victim.pid, &status, 0)
        let killed = Date()
        var handover: Double?
        while handover == nil && Date().timeIntervalSince(killed) < 120 {
            let held = servers.map { Set((Self.status($0.url)?.regions ?? []).filter { $0.holder == "this reconciler" }.map(\.region)) }
            if held.reduce(Set<String>(), { $0.union($1) }) == names { handover = Date().timeIntervalSince(killed) }
            usleep(50_000)
        }
        guard let handover else { throw fail("the survivors did not take the killed reconciler's regions over") }
        let revision = try Self.pushTouchingEveryRegion(work, regions: regions, tag: "after-kill")
        let start = Date()
        let survivorSpread = try converged(servers, at: revision, within: 600)
        let afterKill = Date().timeIntervalSince(start)

        let spreadText = spread.map(String.init).joined(separator: "/")
        let rows = [
            BenchServe.row("initial convergence", [initial], "\(regions) regions, \(regions * 10) instances over \(regions * 3) simulated nodes, by \(reconcilers) reconcilers"),
            BenchServe.row("push touching every region → all converged", pushes, "one new instance in each of \(regions) regions; regions per reconciler \(spreadText)"),
            BenchServe.row("one region's run (last push)", regionRuns, "observe its 3 nodes, plan, apply one create, verify; runs of one reconciler are sequential"),
            BenchServe.row("SIGKILL → survivors hold its regions", [handover], "lease \(Int(lease)) s, regions claimed between runs"),
            BenchServe.row("next push → all converged by the survivors", [afterKill], "regions per survivor \(survivorSpread.map(String.init).joined(separator: "/"))"),
            BenchRow(name: "largest reconciler's resident memory", medianSeconds: 0, minSeconds: 0, maxSeconds: 0, peakRSSMB: resident,
                     detail: "VmRSS of the largest stacklab serve after the pushes; the other rows time several processes, so their RSS column is 0"),
        ]
        let report = BenchReport(workload: "\(reconcilers) × stacklab serve on one PostgreSQL, \(regions) regions", cores: ProcessInfo.processInfo.activeProcessorCount,
                                 runs: runs, rows: rows)
        Terminal.standardOutput.write(format == .json ? try JSON.encode(report) : report.table)
    }

    static func status(_ url: String) -> BenchServe.Status? {
        guard let target = URL(string: url + "/api/status"), let (code, text) = try? HTTPCall.quietly(BenchServe.request(target, timeout: 30)), code == 200 else {
            return nil
        }
        return try? JSONDecoder().decode(BenchServe.Status.self, from: Data(text.utf8))
    }

    static func commit(_ work: String, _ message: String) throws {
        try Command.check(["git", "-C", work, "add", "-A"])
        try Command.check(["git", "-C", work, "-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit", "-qm", message])
    }

    /// Commits and pushes one new instance in every region; the new revision.
    static func pushTouchingEveryRegion(_ work: String, regions: Int, tag: String) throws -> String {
        let text = (0..<regions).map { r in
            "kind: Instance\nname: \(tag)-\(r)\nregion: \(SyntheticDeployment.regionName(r))\ntenant: t0\nspec: {flavor: m1.small, image: ubuntu-24.04, network: private}\n"
        }.joined(separator: "---\n")
        try text.write(toFile: "\(work)/manifests/tenants/t0/\(tag).yaml", atomically: true, encoding: .utf8)
        try commit(work, tag)
        try Command.check(["git", "-C", work, "push", "-q", "origin", "HEAD:main"])
        return try Command.check(["git", "-C", work, "rev-parse", "HEAD"]).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
