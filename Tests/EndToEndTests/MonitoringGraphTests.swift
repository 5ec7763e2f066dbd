import Foundation
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

        // The page, as a logged-in browser renders it, with a screenshot among the test's artifacts.
        _ = try ServiceTests.logIn(world)
        let dom = try ServiceTests.browse(world, "/regions/lab/instances/acme/web-1?range=5m", screenshot: world.shots + "/instance-graphs.png")
        let figures = dom.components(separatedBy: "<figure class=\"graph\">").dropFirst()
        #expect(figures.count == 5, "CPU, disk read and write, network in and out: \(dom.prefix(3000))")
        let cpu = try #require(figures.first { $0.contains("CPU (%)") }, "\(dom.prefix(3000))")
        func attribute(_ name: String) -> String? {
            guard let range = cpu.range(of: "\(name)=\"") else { return nil }
            return String(cpu[range.upperBound...].prefix { $0 != "\"" })
        }
        let start = try #require(attribute("data-start").flatMap(Int.init)), end = try #require(attribute("data-end").flatMap(Int.init))
        let step = try #require(attribute("data-step").flatMap(Int.init))
        #expect(end - start == 300 && step == 2)
        let drawn = (attribute("data-values") ?? "").split(separator: " ").compactMap { pair -> (Int, Double)? in
            let parts = pair.split(separator: ":")
            return parts.count == 2 ? Int(parts[0]).flatMap { time in Double(parts[1]).map { (time, $0) } } : nil
        }
        // Asked again with the page's own range and step, Prometheus answers the same points (the last few seconds
        // aside: a recording made after the page asked may still land in them).
        let answered = try Self.points(prometheusPort, query, start: start, end: end, step: step)
        let settled = { (points: [(Int, Double)]) in points.filter { $0.0 <= end - 5 } }
        #expect(settled(drawn).count >= 3, "\(drawn)")
        #expect(settled(drawn).map(\.0) == settled(answered).map(\.0) && zip(settled(drawn), settled(answered)).allSatisfy { abs($0.1 - $1.1) < 1e-6 },
                "drawn \(drawn)\nanswered \(answered)")
        // The test driver's CPU counter is its clock (one second a second): in the rule's first minute the rate rises
        // towards 100 % as the window fills.
        #expect(settled(drawn).allSatisfy { $0.1 > 0 && $0.1 < 150 }, "\(drawn)")
        #expect(cpu.contains("<polyline") && cpu.contains("points=\""), "\(cpu.prefix(1500))")

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

    /// A tenant's alarm end to end: `monitoring config` of the manifests, a real Prometheus evaluating the rule and a
    /// real Alertmanager routing it to the tenant's webhook (a receiver on loopback, listed by the region), the alert
    /// firing with its labels and manifest line, `show alarm --live` saying so, and the alert resolving once the
    /// threshold is raised and Prometheus reloaded. The simulated CPU counter only drives the rule over its
    /// threshold; a guest's counters are what an operator's alarms watch.
    @Test func anAlarmFiresAtTheTenantsWebhookAndResolves() throws {
        try #require(FileManager.default.isExecutableFile(atPath: "/usr/bin/prometheus-alertmanager"), "alertmanager is needed: bash .ci/setup installs it")
        let world = try ServiceTests.World(start: false)
        let (prometheusPort, alertmanagerPort, hookPort) = (try LoopbackSSHD.freePort(), try LoopbackSSHD.freePort(), try LoopbackSSHD.freePort())
        let region = try String(contentsOfFile: world.work + "/regions/lab/region.yaml", encoding: .utf8)
        try (region + "  alarmWebhooks: [localhost]\n").write(toFile: world.work + "/regions/lab/region.yaml", atomically: true, encoding: .utf8)
        func alarm(above: String) -> String {
            "kind: Alarm\nname: hot\nregion: lab\ntenant: acme\nspec: {instances: [web-1], metric: cpu, above: \(above), for: 1s, notify: \"http://localhost:\(hookPort)/hook\"}\n"
        }
        try alarm(above: "5").write(toFile: world.work + "/manifests/tenants/acme-alarm.yaml", atomically: true, encoding: .utf8)
        try GitCLI.commitAll(in: world.work)
        try GitCLI.run(["push", "-q", "origin", "HEAD:main"], in: world.work)
        let monitoring = world.root.file("monitoring")
        func configure() throws {
            let written = try StackLabBinary.run(["monitoring", "config", "--repo", world.work, "--out", monitoring, "--target", "127.0.0.1:\(world.port)",
                                                  "--token-file", world.root.file("read-token"), "--interval", "1", "--alertmanager", "127.0.0.1:\(alertmanagerPort)"])
            try #require(written.status == 0, "\(written.output)")
        }
        try configure()
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
                                            "--web.listen-address=127.0.0.1:\(prometheusPort)", "--web.enable-lifecycle"], output: world.root.file("prometheus.log"))
        defer { Command.stop(prometheus) }
        try Self.serve(world, prometheus: prometheusPort)
        func delivered(_ status: String, within seconds: Double) -> String? {
            let start = Date()
            while Date().timeIntervalSince(start) < seconds {
                let lines = ((try? String(contentsOfFile: hooks, encoding: .utf8)) ?? "").split(separator: "\n")
                if let line = lines.first(where: { $0.contains("\"status\":\"\(status)\"") && $0.contains("\"alarm\":\"acme/hot\"") }) { return String(line) }
                usleep(250_000)
            }
            return nil
        }
        let logs = { "\(world.log().suffix(1500))\n\((try? String(contentsOfFile: world.root.file("alertmanager.log"), encoding: .utf8))?.suffix(1500) ?? "")" }
        let firing = try #require(delivered("firing", within: 120), "no firing alert reached the webhook: \(logs())")
        #expect(firing.contains("\"server\":\"web-1\"") && firing.contains("\"tenant\":\"acme\"") && firing.contains("manifests/tenants/acme-alarm.yaml:1:1"), "\(firing)")
        let shown = try StackLabBinary.run(["show", "alarm", "hot", "--live", "--prometheus", "http://127.0.0.1:\(prometheusPort)", "--repo", world.work])
        #expect(shown.status == 0 && shown.output.contains("alarm/lab/acme/hot  1 of 1 firing") && shown.output.contains("web-1: firing"), "\(shown.output)")

        // Raise the threshold, write the files again, reload Prometheus: the alert resolves at the webhook.
        try alarm(above: "100000").write(toFile: world.work + "/manifests/tenants/acme-alarm.yaml", atomically: true, encoding: .utf8)
        try configure()
        _ = try Command.check(["curl", "-sf", "-X", "POST", "http://127.0.0.1:\(prometheusPort)/-/reload"])
        let resolved = delivered("resolved", within: 90)
        #expect(resolved != nil, "no resolved notification: \(logs())\n--- hooks\n\((try? String(contentsOfFile: hooks, encoding: .utf8)) ?? "")\n--- alerts\n\((try? Command.run(["curl", "-s", "http://127.0.0.1:\(alertmanagerPort)/api/v2/alerts"]).output) ?? "")")
        let after = try StackLabBinary.run(["show", "alarm", "hot", "--live", "--prometheus", "http://127.0.0.1:\(prometheusPort)", "--repo", world.work])
        #expect(after.output.contains("1 of 1 OK"), "\(after.output)")
    }

    /// Starts `stacklab serve` on the world's repository, reading counters every second, with the Prometheus on
    /// `prometheus` (nil: none).
    static func serve(_ world: ServiceTests.World, prometheus: UInt16?, log: String = "serve.log") throws {
        world.pid = try Command.start([StackLabBinary.path, "serve", "--repo", world.bare, "--state-dir", world.state, "--port", "\(world.port)",
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
