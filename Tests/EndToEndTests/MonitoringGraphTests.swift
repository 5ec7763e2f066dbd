import Foundation
import Libvirt
import Processes
import TestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// An instance's graphs as an operator sees them: a real `stacklab serve` converging the fixture, a real Prometheus
/// (started by the test on loopback with the files `stacklab monitoring config` wrote, scraping the service with its
/// read-only token every second), and the instance page drawn from Prometheus's `query_range` in headless Chromium.
/// A simulated instance's CPU counter is the test driver's clock, so its utilization is not a guest's: the point is
/// that every point drawn is Prometheus's own answer.
@Suite(.serialized) struct MonitoringGraphTests {
    @Test func anInstancePageDrawsThePointsPrometheusAnswers() throws {
        try #require(FileManager.default.isExecutableFile(atPath: "/usr/bin/prometheus"), "prometheus is needed: bash .ci/setup installs it")
        let world = try ServiceTests.World(start: false)
        let monitoring = world.root.file("monitoring")
        let prometheusPort = try LoopbackSSHD.freePort()
        let written = try StackLabBinary.run(["monitoring", "config", "--repo", world.work, "--out", monitoring, "--target", "127.0.0.1:\(world.port)",
                                              "--token-file", world.root.file("read-token"), "--interval", "1", "--alertmanager", "127.0.0.1:9"])
        try #require(written.status == 0, "\(written.output)")
        let prometheus = try Command.start(["prometheus", "--config.file=\(monitoring)/prometheus.yml", "--storage.tsdb.path=\(monitoring)/data",
                                            "--web.listen-address=127.0.0.1:\(prometheusPort)"], output: world.root.file("prometheus.log"))
        defer { Command.stop(prometheus) }
        try Self.serve(world, prometheus: prometheusPort)
        // Prometheus has recorded web-1's utilization for a while (the rule needs two scrapes in its window).
        let query = "stacklab:instance_cpu_utilization:percent{region=\"lab\",tenant=\"acme\",server=\"web-1\"}"
        var recorded = false
        let started = Date()
        while !recorded && Date().timeIntervalSince(started) < 90 {
            let now = Int(Date().timeIntervalSince1970)
            recorded = ((try? Self.points(prometheusPort, query, start: now - 300, end: now, step: 1)) ?? []).count >= 12
            if !recorded { usleep(500_000) }
        }
        try #require(recorded, "no recorded utilization after 90 s:\n\(world.log().suffix(2000))\n\((try? String(contentsOfFile: world.root.file("prometheus.log"), encoding: .utf8))?.suffix(2000) ?? "")")

        // The page, as a logged-in browser renders it, draws the points Prometheus answers.
        _ = try ServiceTests.logIn(world)
        let graph = try Self.cpuGraph(world, "/regions/lab/instances/acme/web-1?range=5m", screenshot: "instance-graphs.png")
        #expect(graph.end - graph.start == 300 && graph.step == 2)
        #expect(try Self.matches(graph, prometheus: prometheusPort, query: query), "\(graph.points)")
        // The test driver's CPU counter is its clock (one second a second): in the rule's first minute the rate rises
        // towards 100 % as the window fills. The first point may be 0: its window can hold just two scrapes that read the
        // same counter value (CI saw 0.0, then 4.8, 8.8, 12.6 … once).
        #expect(graph.points.allSatisfy { $0.1 >= 0 && $0.1 < 150 } && (graph.points.last?.1 ?? 0) > 0, "\(graph.points)")

        // Without a Prometheus the page says so and shows the counters as last read.
        Command.stop(world.pid)
        try Self.serve(world, prometheus: nil, log: "serve2.log")
        var page = ""
        for _ in 0..<100 {
            page = (try? world.http("GET", "/regions/lab/instances/acme/web-1"))?.1 ?? ""
            if page.contains("<table id=\"counters\">") { break }
            usleep(200_000)
        }
        #expect(page.contains("id=\"no-prometheus\"") && page.contains("<table id=\"counters\">") && page.contains("simulated"), "\(page.prefix(2000))")
    }

    /// A tenant's alarm end to end, driven by a real guest's work: a region whose node is a real libvirtd with QEMU
    /// (behind a real sshd, reached with `qemu+ssh://`), two guests of tenant acme, `busy` (its boot sector keeps its CPU
    /// busy for 50 s, then halts) and `quiet` (halts at once), and an alarm on both at 30 % CPU. The service reads both
    /// guests' counters in one libvirt call per node; Prometheus (with the files `monitoring config` wrote) records the
    /// utilization and evaluates the rule, Alertmanager routes it to the tenant's webhook (a receiver on loopback,
    /// listed by the region). The busy guest's alert fires with its labels and manifest line, the quiet one's never does,
    /// `show alarm --live` and the instance page say so, and when the guest's work ends the alert resolves at the webhook.
    @Test func aBusyGuestFiresItsTenantsAlarmAtTheWebhookAndItResolvesWhenTheWorkEnds() throws {
        try #require(FileManager.default.isExecutableFile(atPath: "/usr/bin/prometheus-alertmanager"), "alertmanager is needed: bash .ci/setup installs it")
        try #require(LoopbackLibvirtd.isInstalled, "libvirtd, QEMU, qemu-img and nc are needed: bash .ci/setup installs them")
        let world = try ServiceTests.World(start: false)
        let libvirtd = try LoopbackLibvirtd()
        defer { libvirtd.stop() }
        let sshd = try LoopbackSSHD(address: "127.0.0.2")
        let nodeRoot = try Scratch("guest-root")
        try LoopbackLibvirtd.addBusyImage("busy", busySeconds: 50, to: nodeRoot.path)
        try LoopbackLibvirtd.addBusyImage("quiet", busySeconds: 0, to: nodeRoot.path)
        let (prometheusPort, alertmanagerPort, hookPort) = (try LoopbackSSHD.freePort(), try LoopbackSSHD.freePort(), try LoopbackSSHD.freePort())
        func write(_ relative: String, _ text: String) throws {
            let path = world.work + "/" + relative
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try text.write(toFile: path, atomically: true, encoding: .utf8)
        }
        try write("regions/guests/region.yaml", "kind: Region\nname: guests\nspec:\n  sponsor: guests test\n  alarmWebhooks: [localhost]\n")
        try write("regions/guests/network.yaml", "kind: Network\nname: private\nspec: {bridge: br100, fixedRange: 10.31.0.0/24, gateway: 10.31.0.1, dns: [10.31.0.2]}\n")
        try write("regions/guests/nodes.yaml", try RealNodeManifests.node("guests-1", server: sshd, root: nodeRoot, roles: "controller, compute")
                  + "---\n" + RealNodeManifests.storageNode("guests-2", address: "172.16.98.2") + "---\n" + RealNodeManifests.storageNode("guests-3", address: "172.16.98.3"))
        try write("regions/guests/rings.yaml", "kind: Ring\nname: object\nspec:\n  partPower: 6\n  replicas: 2\n")
        var guests = "kind: Flavor\nname: m1.tiny\nspec: {vcpus: 1, ram: 128MiB, disk: 1GiB}\n"
        for name in ["busy", "quiet"] {
            guests += "---\nkind: Image\nname: \(name)\nspec: {format: qcow2, source: images/\(name).qcow2, minDisk: 1GiB}\n"
            guests += "---\nkind: Instance\nname: \(name)\nregion: guests\ntenant: acme\nspec: {flavor: m1.tiny, image: \(name), network: private}\n"
        }
        try write("manifests/guests.yaml", guests)
        try write("manifests/tenants/acme-alarm.yaml",
                  "kind: Alarm\nname: hot\nregion: guests\ntenant: acme\nspec: {instances: [busy, quiet], metric: cpu, above: 30, for: 5s, notify: \"http://localhost:\(hookPort)/hook\"}\n")
        try GitCLI.commitAll(in: world.work)
        try GitCLI.run(["push", "-q", "origin", "HEAD:main"], in: world.work)
        let monitoring = world.root.file("monitoring")
        let written = try StackLabBinary.run(["monitoring", "config", "--repo", world.work, "--out", monitoring, "--target", "127.0.0.1:\(world.port)",
                                              "--token-file", world.root.file("read-token"), "--interval", "1", "--alertmanager", "127.0.0.1:\(alertmanagerPort)"])
        try #require(written.status == 0, "\(written.output)")
        // The tenant's webhook: every POST body, one per line.
        let hooks = world.root.file("hooks.log")
        try "import http.server, sys\nclass H(http.server.BaseHTTPRequestHandler):\n    def do_POST(self):\n        body = self.rfile.read(int(self.headers['Content-Length']))\n        open(sys.argv[2], 'ab').write(body.replace(b'\\n', b' ') + b'\\n')\n        self.send_response(200); self.end_headers()\n    def log_message(self, *a): pass\nhttp.server.HTTPServer(('127.0.0.1', int(sys.argv[1])), H).serve_forever()\n"
            .write(toFile: world.root.file("hook.py"), atomically: true, encoding: .utf8)
        let receiver = try Command.start(["python3", world.root.file("hook.py"), "\(hookPort)", hooks])
        defer { Command.stop(receiver) }
        let alertmanager = try Command.start(["prometheus-alertmanager", "--config.file=\(monitoring)/alertmanager.yml", "--storage.path=\(monitoring)/am",
                                              "--web.listen-address=127.0.0.1:\(alertmanagerPort)", "--cluster.listen-address="], output: world.root.file("alertmanager.log"))
        defer { Command.stop(alertmanager) }
        let prometheus = try Command.start(["prometheus", "--config.file=\(monitoring)/prometheus.yml", "--storage.tsdb.path=\(monitoring)/data",
                                            "--web.listen-address=127.0.0.1:\(prometheusPort)"], output: world.root.file("prometheus.log"))
        defer { Command.stop(prometheus) }
        try Self.serve(world, prometheus: prometheusPort, environment: ["STACKLAB_SSH_IDENTITY=\(sshd.userKey)", "STACKLAB_LIBVIRT_SOCKET=\(libvirtd.socket)"])
        func delivered(_ status: String, within seconds: Double) -> String? {
            let start = Date()
            while Date().timeIntervalSince(start) < seconds {
                let lines = ((try? String(contentsOfFile: hooks, encoding: .utf8)) ?? "").split(separator: "\n")
                if let line = lines.first(where: { $0.contains("\"status\":\"\(status)\"") && $0.contains("\"alarm\":\"acme/hot\"") }) { return String(line) }
                usleep(250_000)
            }
            return nil
        }
        let logs = { "\(world.log().suffix(2500))\n\((try? String(contentsOfFile: world.root.file("alertmanager.log"), encoding: .utf8))?.suffix(1000) ?? "")" }
        let firing = try #require(delivered("firing", within: 180), "no firing alert reached the webhook: \(logs())")
        #expect(try libvirtd.runningDomains() == ["acme:busy", "acme:quiet"], "the guests really run")
        // QEMU keeps every counter the service reads in the one bulk call (nothing read a domain at a time).
        let bulk = try Connection(uri: libvirtd.localURI).runningDomainCounters()
        #expect(bulk.map(\.domain.name).sorted() == ["acme:busy", "acme:quiet"])
        #expect(bulk.allSatisfy { $0.counters.map { $0.cpuTimeNanoseconds > 0 && $0.disks["vda"]?.readBytes ?? 0 > 0 && $0.interfaces.count == 1 } == true },
                "\(bulk.map { "\($0.domain.name): \(String(describing: $0.counters))" })")
        #expect(firing.contains("\"server\":\"busy\"") && !firing.contains("\"server\":\"quiet\"") && firing.contains("\"tenant\":\"acme\"")
                && firing.contains("manifests/tenants/acme-alarm.yaml:1:1"), "\(firing)")
        let prometheusURL = "http://127.0.0.1:\(prometheusPort)"
        let shown = try StackLabBinary.run(["show", "alarm", "hot", "--live", "--prometheus", prometheusURL, "--repo", world.work])
        #expect(shown.status == 0 && shown.output.contains("alarm/guests/acme/hot  1 of 2 firing") && shown.output.contains("busy: firing")
                && shown.output.contains("quiet: ok"), "\(shown.output)")

        // The busy guest's page draws what Prometheus answers, over the threshold; the quiet one's stays under it.
        _ = try ServiceTests.logIn(world)
        let busy = try Self.cpuGraph(world, "/regions/guests/instances/acme/busy?range=5m", screenshot: "busy-guest.png")
        #expect(try Self.matches(busy, prometheus: prometheusPort, query: "stacklab:instance_cpu_utilization:percent{region=\"guests\",tenant=\"acme\",server=\"busy\"}"))
        #expect((busy.points.map(\.1).max() ?? 0) > 30, "the guest's own work: \(busy.points)")
        let quiet = try Self.cpuGraph(world, "/regions/guests/instances/acme/quiet?range=5m", screenshot: "quiet-guest.png")
        #expect(!quiet.points.isEmpty && quiet.points.allSatisfy { $0.1 < 30 }, "a halted guest: \(quiet.points)")

        // The busy guest halts after 50 s; once its utilization falls under 30 % the alert resolves at the webhook.
        let resolved = delivered("resolved", within: 150)
        #expect(resolved.map { $0.contains("\"server\":\"busy\"") } == true,
                "no resolved notification: \(logs())\n--- hooks\n\((try? String(contentsOfFile: hooks, encoding: .utf8)) ?? "")")
        let after = try StackLabBinary.run(["show", "alarm", "hot", "--live", "--prometheus", prometheusURL, "--repo", world.work])
        #expect(after.output.contains("2 of 2 OK"), "\(after.output)")
    }

    /// The CPU graph of an instance page as a logged-in browser renders it (a screenshot among the test's artifacts):
    /// its range and the points it drew.
    static func cpuGraph(_ world: ServiceTests.World, _ path: String, screenshot: String) throws -> (start: Int, end: Int, step: Int, points: [(Int, Double)]) {
        let dom = try ServiceTests.browse(world, path, screenshot: world.shots + "/" + screenshot)
        let figures = dom.components(separatedBy: "<figure class=\"graph\">").dropFirst()
        #expect(figures.count == 5, "CPU, disk read and write, network in and out: \(dom.prefix(3000))")
        let cpu = try #require(figures.first { $0.contains("CPU (%)") }, "\(dom.prefix(3000))")
        #expect(cpu.contains("<polyline") && cpu.contains("points=\""), "\(cpu.prefix(1500))")
        func attribute(_ name: String) -> String? {
            guard let range = cpu.range(of: "\(name)=\"") else { return nil }
            return String(cpu[range.upperBound...].prefix { $0 != "\"" })
        }
        let start = try #require(attribute("data-start").flatMap(Int.init)), end = try #require(attribute("data-end").flatMap(Int.init))
        let step = try #require(attribute("data-step").flatMap(Int.init))
        let points = (attribute("data-values") ?? "").split(separator: " ").compactMap { pair -> (Int, Double)? in
            let parts = pair.split(separator: ":")
            return parts.count == 2 ? Int(parts[0]).flatMap { time in Double(parts[1]).map { (time, $0) } } : nil
        }
        return (start, end, step, points)
    }

    /// Whether Prometheus, asked again with the page's own range and step, answers the points the page drew (the last
    /// few seconds aside: a recording made after the page asked may still land in them).
    static func matches(_ graph: (start: Int, end: Int, step: Int, points: [(Int, Double)]), prometheus port: UInt16, query: String) throws -> Bool {
        let answered = try points(port, query, start: graph.start, end: graph.end, step: graph.step)
        let settled = { (points: [(Int, Double)]) in points.filter { $0.0 <= graph.end - 5 } }
        let drawn = settled(graph.points)
        #expect(drawn.count >= 3, "\(graph.points)")
        return drawn.map(\.0) == settled(answered).map(\.0) && zip(drawn, settled(answered)).allSatisfy { abs($0.1 - $1.1) < 1e-6 }
    }

    /// Starts `stacklab serve` on the world's repository, reading counters every second, with the Prometheus on
    /// `prometheus` (nil: none), with `environment` (`NAME=value`) added to its own.
    static func serve(_ world: ServiceTests.World, prometheus: UInt16?, log: String = "serve.log", environment: [String] = []) throws {
        world.pid = try Command.start(["env"] + environment + [StackLabBinary.path, "serve", "--repo", world.bare, "--state-dir", world.state, "--port", "\(world.port)",
                                       "--token-file", world.root.file("token"), "--read-token-file", world.root.file("read-token"),
                                       "--webhook-secret-file", world.root.file("secret"), "--poll", "60", "--resync", "30", "--usage-interval", "1"]
                                      + (prometheus.map { ["--prometheus", "http://127.0.0.1:\($0)"] } ?? []), output: world.root.file(log))
    }

    /// `query_range` straight from Prometheus.
    static func points(_ port: UInt16, _ query: String, start: Int, end: Int, step: Int) throws -> [(Int, Double)] {
        var components = URLComponents(string: "http://127.0.0.1:\(port)/api/v1/query_range")!
        components.queryItems = [.init(name: "query", value: query), .init(name: "start", value: "\(start)"), .init(name: "end", value: "\(end)"),
                                 .init(name: "step", value: "\(step)")]
        let output = try Command.check(["curl", "-sf", "-m", "5", components.url!.absoluteString])
        let json = try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any]
        let result = ((json?["data"] as? [String: Any])?["result"] as? [[String: Any]])?.first
        return ((result?["values"] as? [[Any]]) ?? []).compactMap { pair in
            guard pair.count == 2, let time = pair[0] as? Double, let text = pair[1] as? String, let value = Double(text) else { return nil }
            return (Int(time), value)
        }
    }
}
