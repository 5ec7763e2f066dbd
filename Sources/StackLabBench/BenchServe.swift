import ArgumentParser
import Foundation
import StackLabCLI
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Processes
import Reconcile
import Service
import TestSupport

/// `stacklab-bench serve`: a one-file push through the running service.
struct BenchServe: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Time a one-file push through `stacklab serve`: to a ready plan, to a converged region; the service's RSS; dashboard pages.",
        discussion: """
            Generates the size's repository, makes a bare repository of it with StackLab's post-receive hook, and \
            starts `stacklab serve` on it; the service converges every region (timed: initial). Then --runs times a \
            commit changes one instance's flavor in region r0 and is pushed; from the push to the plan of r0 being \
            ready, and to r0 converged at the new revision. The service's resident memory is read from /proc after \
            the pushes. Dashboard rows time the region list and an instance page over HTTP (server time), and the \
            same page loaded in headless Chromium when it is installed (browser start included).
            """)

    @Option(help: "small, medium or large (large converges 100,000 instances first: about 2.5 minutes here).")
    var size: BenchPlan.Size = .medium

    @Option(help: "Pushes timed (the median is reported).")
    var runs = 5

    @Option(help: "text or json.")
    var format: OutputFormat = .text

    @Option(help: ArgumentHelp("Keep the repositories and the converged state under this directory, and start from them when they are there (the initial convergence is then a resync of every region: at large about 20 s here instead of 2.5 minutes, or 90 s when a new build must parse every host again).", valueName: "dir"))
    var dir: String?

    @Option(help: ArgumentHelp("The service's --cache-regions (0: every region's observations and ring builders kept).", valueName: "n"))
    var cacheRegions = ServiceConfiguration.defaultCacheRegions

    func run() throws {
        let root = dir.map { "\($0)/serve-\(size.rawValue)" } ?? FileManager.default.temporaryDirectory.appendingPathComponent("stacklab-bench-serve-\(getpid())").path
        defer { if dir == nil { try? FileManager.default.removeItem(atPath: root) } }
        let work = "\(root)/work", bare = "\(root)/cloud.git", state = "\(root)/state"
        let reused = dir != nil && FileManager.default.fileExists(atPath: "\(bare)/HEAD") && FileManager.default.fileExists(atPath: state)
        if !reused {
            try? FileManager.default.removeItem(atPath: root)
            try size.generate(at: work)
            try Command.check(["git", "-C", work, "branch", "-M", "main"])
            try Command.check(["git", "clone", "-q", "--bare", work, bare])
            try Command.check(["git", "-C", work, "remote", "add", "origin", bare])
        }
        try "\(Self.token)\n".write(toFile: "\(root)/token", atomically: true, encoding: .utf8)
        try "bench-secret\n".write(toFile: "\(root)/secret", atomically: true, encoding: .utf8)
        let port = try LoopbackSSHD.freePort()
        let url = "http://127.0.0.1:\(port)"
        try Command.check([SelfPath.stacklab, "hook", "install", bare, "--url", url, "--webhook-secret-file", "\(root)/secret"])
        let pid = try Command.start([SelfPath.stacklab, "serve", "--repo", bare, "--state-dir", state, "--port", "\(port)", "--token-file", "\(root)/token",
                                     "--webhook-secret-file", "\(root)/secret", "--poll", "3600", "--resync", "3600",
                                     "--cache-regions", "\(cacheRegions)"], output: "\(root)/serve.log")
        defer { Command.stop(pid) }

        let regions = size.shape.regions
        let initialStart = Date()
        guard let initial = Self.wait(url, seconds: 7200, every: 0.5, until: { status in
            status.regions.count == regions && status.regions.allSatisfy { $0.appliedRevision != nil && $0.appliedRevision == $0.desiredRevision }
        }) else { throw fail("the service did not converge the \(regions) regions: \(Self.tail("\(root)/serve.log"))") }
        let initialSeconds = Date().timeIntervalSince(initialStart)
        _ = initial

        var toPlan: [Double] = [], toConverged: [Double] = [], phases: [String] = [], fromNotification: [Double] = []
        let path = "\(work)/manifests/tenants/t0/instances-0.yaml"
        for _ in 0..<runs {
            // Alternates between two flavors, from whichever a kept repository (--dir) ended with.
            let current = try BenchIncremental.field("flavor", of: "vm-0", in: path)
            try BenchIncremental.setField("flavor", of: "vm-0", in: path, to: current == "m1.small" ? "ssd.small" : "m1.small")
            try Command.check(["git", "-C", work, "-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit", "-qam", "resize vm-0"])
            let revision = try Command.check(["git", "-C", work, "rev-parse", "HEAD"]).trimmingCharacters(in: .whitespacesAndNewlines)
            let pushed = Date().timeIntervalSince1970
            try Command.check(["git", "-C", work, "push", "-q", "origin", "HEAD:main"])
            // The times come from the service's own clock (lastDeliveryAt, lastPlanReadyAt, lastRunAt), so polling
            // more often adds nothing to their precision, only load on the two cores being measured.
            guard let status = Self.wait(url, region: "r0", seconds: 600, every: 0.05, until: { $0.regions.first { $0.region == "r0" }?.appliedRevision == revision }),
                  let r0 = status.regions.first(where: { $0.region == "r0" }), let ready = r0.lastPlanReadyAt, let done = r0.lastRunAt else {
                throw fail("r0 did not converge to the push: \(Self.tail("\(root)/serve.log"))")
            }
            toPlan.append(ready - pushed)
            if let delivered = status.lastDeliveryAt, delivered >= pushed { fromNotification.append(ready - delivered) }
            toConverged.append(done - pushed)
            phases.append(r0.lastRunPhases ?? "")
        }
        let rss = ResidentMemory.residentMB(of: pid)

        var rows = [
            Self.row(reused ? "start on the kept state" : "initial convergence", [initialSeconds],
                     "\(regions) regions, \(size.shape.instances) instances, " + (reused ? "converged before (--dir): every region resynced" : "from nothing")),
            Self.row("push → plan of r0 ready", toPlan, "git push, post-receive hook (stacklab notify), HMAC webhook, r0 loaded, observed and planned"),
            Self.row("push → r0 converged", toConverged, "the resize applied and verified; the other regions are not re-run (their documents did not change)"),
        ]
        if !fromNotification.isEmpty {
            rows.insert(Self.row("notification → plan of r0 ready", fromNotification, "from the service receiving the post-receive notification (target ≤ 0.3 s at large)"), at: 2)
        }
        let byTime = zip(toConverged, phases).sorted { $0.0 < $1.0 }
        if !byTime.isEmpty {
            rows[rows.count - 1].detail = (rows[rows.count - 1].detail ?? "") + "\n  median push's run: \(byTime[byTime.count / 2].1)"
        }
        rows.append(BenchRow(name: "service resident memory", medianSeconds: 0, minSeconds: 0, maxSeconds: 0, peakRSSMB: rss, detail: "VmRSS of stacklab serve after the pushes (target ≤ 400 MB at large)"))
        let page = max(1, size.shape.instances / regions / 100 / 2)
        for (name, path) in [("dashboard: region list", "/"), ("dashboard: r0 instances, page \(page)", "/regions/r0?page=\(page)")] {
            var times: [Double] = []
            for _ in 0..<3 {
                let start = Date()
                _ = try Self.get(url + path)
                times.append(Date().timeIntervalSince(start))
            }
            rows.append(Self.row(name, times, "HTTP, server time"))
        }
        if let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) {
            // Logged in once, through the service's own form (the session cookie stays in the profile).
            try "<!doctype html><html><body onload=\"document.forms[0].submit()\"><form method=\"post\" action=\"\(url)/login\"><input name=\"token\" value=\"\(Self.token)\"></form></body></html>"
                .write(toFile: "\(root)/log-in.html", atomically: true, encoding: .utf8)
            _ = try Command.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                                 "--user-data-dir=\(root)/chromium", "--virtual-time-budget=5000", "--dump-dom", "file://\(root)/log-in.html"])
            var times: [Double] = []
            for _ in 0..<3 {
                let start = Date()
                let dom = try Command.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                                           "--user-data-dir=\(root)/chromium", "--dump-dom", url + "/regions/r0?page=\(page)"])
                guard dom.output.contains("class=\"instance\"") else { throw fail("Chromium did not render the instance page") }
                times.append(Date().timeIntervalSince(start))
            }
            rows.append(Self.row("dashboard in Chromium: r0 instances", times, "headless Chromium loading the page, browser start included (target < 1 s)"))
        }
        let report = BenchReport(workload: "stacklab serve, size \(size.rawValue)", cores: ProcessInfo.processInfo.activeProcessorCount, runs: runs, rows: rows)
        Terminal.standardOutput.write(format == .json ? try JSON.encode(report) : report.table)
    }

    static func row(_ name: String, _ times: [Double], _ detail: String) -> BenchRow {
        let sorted = times.sorted()
        return BenchRow(name: name, medianSeconds: sorted[sorted.count / 2], minSeconds: sorted[0], maxSeconds: sorted[sorted.count - 1], peakRSSMB: 0, detail: detail)
    }

    struct Status: Decodable {
        var regions: [Region]
        var lastDeliveryAt: Double?
        struct Region: Decodable {
            var region: String; var appliedRevision: String?; var desiredRevision: String?; var lastPlanReadyAt: Double?; var lastRunAt: Double?
            var holder: String?
            var lastRunSeconds: Double?
            var lastRunPhases: String?
        }
    }

    /// The token the benchmarks' services run with (the status and pages need a credential).
    static let token = "bench-token"

    /// A request to a benchmark's service, with its token.
    static func request(_ target: URL, timeout: Double = 60) -> URLRequest {
        var request = URLRequest(url: target, timeoutInterval: timeout)
        request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        return request
    }

    static func get(_ url: String) throws -> String {
        guard let target = URL(string: url) else { throw fail("bad URL \(url)") }
        let (status, body) = try HTTPCall.send(request(target))
        guard status == 200 else { throw fail("\(url) answered \(status)") }
        return body
    }

    /// Polls the status (of `region` only, when given: cheaper for the service) every `every` seconds until
    /// `condition` holds.
    static func wait(_ url: String, region: String? = nil, seconds: Double, every: Double = 0.01, until condition: (Status) -> Bool) -> Status? {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            // Quietly: the service may not listen yet.
            if let target = URL(string: url + "/api/status" + (region.map { "?region=\($0)" } ?? "")), let (code, text) = try? HTTPCall.quietly(request(target)), code == 200,
               let status = try? JSONDecoder().decode(Status.self, from: Data(text.utf8)), condition(status) { return status }
            usleep(useconds_t(every * 1e6))
        }
        return nil
    }

    static func tail(_ path: String) -> String {
        String(((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").suffix(2000))
    }
}
