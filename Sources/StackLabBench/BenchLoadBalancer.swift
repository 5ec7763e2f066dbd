import ArgumentParser
import Foundation
import ManifestSources
import Manifests
import Planning
import Processes
import Reconcile
import StackLabCLI
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// `stacklab-bench loadbalancer`: plan, render and check the HAProxy configuration of a large region, and reload it
/// under load, beside `haproxy -c` alone on the same file.
struct BenchLoadBalancer: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "loadbalancer",
        abstract: "Plan, render and check the HAProxy configuration of a region with 1,000 public domains and 200 tenant load balancers; reload it under load.",
        discussion: """
            The region is generated (10 compute nodes and a load-balancer node, 1,000 instances of 100 tenants whose \
            group opens port 22, so each has a public domain; 200 load balancers with an http listener, half with a \
            tcp listener too, three members each) and loaded once. Timed, median of --runs:
              plan        the region's whole plan (placement, networking, port allocation, the HAProxy change)
              render      the configuration's text from its value
              read back   the installed file parsed for its ports and holds, and its digest checked (every plan does it)
              haproxy -c  HAProxy's check run alone on the same file: the floor
              render + check   render, write, haproxy -c: what an HAProxy change costs before it is installed
              reload      as root: HAProxy runs the file in a network namespace of the bench's own while 500
                          connections through public domains are held open; USR2 to the master until the new worker
                          runs, and every held connection still answers after it (skipped when not root)
            """)

    @Option(help: "Runs of each measurement (the median is reported).")
    var runs = 5

    @Option(help: "text or json.")
    var format: OutputFormat = .text

    func run() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("stacklab-bench-lb-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        var deployment = SyntheticDeployment(nodes: 10, instances: 1_000)
        deployment.tenants = 100
        deployment.instanceStorage = "4TiB"
        _ = try deployment.write(to: root)
        let region = SyntheticDeployment.regionName(0)
        try Self.addBalancers(root: root, region: region, tenants: deployment.tenants, instances: deployment.instances)
        let loaded = try Loader().load(DirectorySource(root: root))
        guard !loaded.hasErrors else {
            throw fail("the generated region does not validate:\n" + DiagnosticRenderer(files: loaded.files).render(Array(loaded.diagnostics.filter { $0.severity == .error }.prefix(5))))
        }
        let observed = loaded.model.nodes.map { node in
            var seen = ObservedNode(address: node.address, domains: [], networks: [])
            seen.cpus = node.spec.cpus.value
            seen.memoryKiB = node.spec.memory.value.bytes >> 10
            return seen
        }
        var plan = Plan(revision: nil, regions: [], observed: [:], changes: [], unmanaged: [], errors: [])
        let planTimes = Self.time(runs) { plan = Planner.plan(model: loaded.model, observed: observed, regions: [region], hour: 500_000) }
        guard plan.errors.isEmpty, var config = plan.changes.lazy.compactMap({ change -> ProxyConfig? in
            if case .node(.loadProxy(let config)) = change.operation { return config } else { return nil }
        }).first else { throw fail("the plan has no HAProxy change: \(plan.errors.prefix(3))") }
        config.runDirectory = root  // the pid file and stats socket where the bench may write
        var text = ""
        let renderTimes = Self.time(runs) { text = config.text }
        var installed: ProxyConfig.Installed?
        let readTimes = Self.time(runs) { installed = ProxyConfig.Installed(parsing: text) }
        let file = root + "/haproxy.cfg"
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        var checkStatus: Int32 = 0
        let checkTimes = try Self.time(runs) { checkStatus = try Command.run(["haproxy", "-c", "-q", "-f", file]).status }
        guard checkStatus == 0 else { throw fail("haproxy -c refuses the rendered configuration: \(try Command.run(["haproxy", "-c", "-f", file]).output)") }
        // What StackLab does before an install: render the value, write it, have HAProxy check it.
        let installTimes = try Self.time(runs) {
            try config.text.write(toFile: file, atomically: true, encoding: .utf8)
            checkStatus = try Command.run(["haproxy", "-c", "-q", "-f", file]).status
        }
        let publicDomains = config.services.filter { $0.owner.address.kind == .instance }
        let balancers = Set(config.services.map(\.owner.address).filter { $0.kind == .loadBalancer }).count
        let rss = ResidentMemory.peakMB()
        func row(_ name: String, _ times: [Double], _ detail: String) -> BenchRow {
            let sorted = times.sorted()
            return BenchRow(name: name, medianSeconds: sorted[sorted.count / 2], minSeconds: sorted[0], maxSeconds: sorted[sorted.count - 1],
                            peakRSSMB: rss, detail: detail)
        }
        var rows = [
            row("plan", planTimes, "\(plan.changes.count) changes, the HAProxy one among them"),
            row("render", renderTimes, "\(config.services.count) services, \(text.utf8.count / 1024) KiB"),
            row("read back", readTimes, "\(installed?.ports.count ?? 0) ports, digest \(installed?.intact == true ? "intact" : "BROKEN")"),
            row("haproxy -c", checkTimes, "the floor: HAProxy's own parse and check of the same file"),
            row("render + check", installTimes, "render, write and haproxy -c: what every HAProxy change costs before its install"),
        ]
        if geteuid() == 0 {
            let (times, detail) = try Self.reload(file: file, config: config, publicDomains: publicDomains, runs: runs)
            rows.append(row("reload under load", times, detail))
        } else {
            rows.append(BenchRow(name: "reload under load", medianSeconds: 0, minSeconds: 0, maxSeconds: 0, peakRSSMB: rss, detail: "skipped: needs root for a network namespace"))
        }
        let report = BenchReport(workload: "1 region, \(publicDomains.count) public domains, \(balancers) load balancers", cores: ProcessInfo.processInfo.activeProcessorCount,
                                 runs: runs, rows: rows)
        Terminal.standardOutput.write(format == .json ? try JSON.encode(report) : report.table)
    }

    static func time(_ runs: Int, _ body: () throws -> Void) rethrows -> [Double] {
        var times: [Double] = []
        for _ in 0..<runs {
            let start = DispatchTime.now().uptimeNanoseconds
            try body()
            times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        return times
    }

    /// Gives the first region public domains and a load-balancer node, and each tenant two load balancers.
    static func addBalancers(root: String, region: String, tenants: Int, instances: Int) throws {
        let regionFile = root + "/regions/\(region)/region.yaml"
        try (try String(contentsOfFile: regionFile, encoding: .utf8) + "  publicDomains: {suffix: bench.example.org, ports: 11000-12999}\n")
            .write(toFile: regionFile, atomically: true, encoding: .utf8)
        try """
            kind: Node
            name: \(region)-lb
            spec: {address: 10.250.0.1, libvirt: simulated, roles: [loadbalancer], cpus: 8, memory: 16GiB}

            """.write(toFile: root + "/regions/\(region)/balancer.yaml", atomically: true, encoding: .utf8)
        var text = ""
        for tenant in 0..<tenants {
            // Instance i belongs to tenant i % tenants (one region): three of the tenant's own.
            let members = (0..<3).map { "vm-\(tenant + tenants * $0)" }.joined(separator: ", ")
            for index in 0..<2 {
                let tcp = index == 0 && tenant % 2 == 0 ? ", {protocol: tcp, port: 443}" : ""
                text += """
                    ---
                    kind: LoadBalancer
                    name: lb-\(index)
                    region: \(region)
                    tenant: \(SyntheticDeployment.tenantName(tenant))
                    spec:
                      listeners: [{protocol: http, port: 80}\(tcp)]
                      members: [\(members)]
                      healthCheck: {type: http, path: /health, interval: 2s}

                    """
            }
        }
        try text.write(toFile: root + "/manifests/balancers.yaml", atomically: true, encoding: .utf8)
    }

    /// HAProxy running `file` in a namespace of its own, with a server answering every backend and 500 connections held
    /// open through public domains; each run sends USR2 and waits for the master's new worker; then checks the held
    /// connections still answer.
    static func reload(file: String, config: ProxyConfig, publicDomains: [ProxyConfig.Service], runs: Int) throws -> ([Double], String) {
        let namespace = "slbench-\(getpid())"
        let directory = (file as NSString).deletingLastPathComponent
        try Command.check(["ip", "netns", "add", namespace])
        var helpers: [pid_t] = []
        defer {
            for pid in helpers { Command.stop(pid) }
            if let master = try? String(contentsOfFile: directory + "/haproxy.pid", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines), let pid = pid_t(master) {
                kill(pid, SIGTERM)
                for _ in 0..<200 where kill(pid, 0) == 0 { usleep(10_000) }
            }
            _ = try? Command.run(["ip", "netns", "delete", namespace])
        }
        func inside(_ command: String) throws -> String { try Command.check(["ip", "netns", "exec", namespace, "sh", "-c", command]) }
        // Every backend address is local in the namespace (a /8 on lo), and one server holds whatever connects to 22.
        _ = try inside("ip link set lo up && ip addr add 10.0.0.1/8 dev lo")
        try """
            import socket, threading, sys
            s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('0.0.0.0', 22)); s.listen(1024)
            def hold(c):
                while True:
                    data = c.recv(64)
                    if not data: break
                    c.sendall(data)
            open(sys.argv[1], 'w').close()
            while True:
                c, _ = s.accept(); threading.Thread(target=hold, args=(c,), daemon=True).start()
            """.write(toFile: directory + "/echo.py", atomically: true, encoding: .utf8)
        helpers.append(try Command.start(["ip", "netns", "exec", namespace, "python3", directory + "/echo.py", directory + "/echo.ready"]))
        for _ in 0..<200 where !FileManager.default.fileExists(atPath: directory + "/echo.ready") { usleep(10_000) }
        let pidFile = config.pidFile
        _ = try inside("haproxy -W -D -f \(file)")
        guard let master = pid_t(try String(contentsOfFile: pidFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw fail("haproxy wrote no pid file")
        }
        // 500 connections through public domains, held open by a client that echoes a byte on each when asked.
        let ports = publicDomains.prefix(500).map { String($0.port) }.joined(separator: ",")
        try """
            import socket, sys, time
            ports = [int(p) for p in sys.argv[1].split(',')]
            conns = [socket.create_connection(('10.0.0.1', p), timeout=5, source_address=('10.0.0.2', 0)) for p in ports]
            for c in conns: c.sendall(b'x'); assert c.recv(1) == b'x'
            open(sys.argv[2], 'w').close()
            while not __import__('os').path.exists(sys.argv[3]): time.sleep(0.05)
            alive = 0
            for c in conns:
                try:
                    c.sendall(b'y'); alive += c.recv(1) == b'y'
                except OSError: pass
            open(sys.argv[4], 'w').write(str(alive))
            """.write(toFile: directory + "/hold.py", atomically: true, encoding: .utf8)
        helpers.append(try Command.start(["ip", "netns", "exec", namespace, "python3", directory + "/hold.py", ports, directory + "/held", directory + "/check", directory + "/alive"]))
        for _ in 0..<500 where !FileManager.default.fileExists(atPath: directory + "/held") { usleep(10_000) }
        guard FileManager.default.fileExists(atPath: directory + "/held") else { throw fail("the 500 connections through public domains were not established") }
        func workers() -> Set<String> {
            let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(master)/task")) ?? []
            return Set(tasks.flatMap { task in
                ((try? String(contentsOfFile: "/proc/\(master)/task/\(task)/children", encoding: .utf8)) ?? "").split(separator: " ").map(String.init)
            })
        }
        var times: [Double] = []
        for _ in 0..<runs {
            usleep(500_000)  // the previous reload settled (a master takes one reload at a time)
            let before = workers()
            let start = DispatchTime.now().uptimeNanoseconds
            kill(master, SIGUSR2)
            while workers().subtracting(before).isEmpty, DispatchTime.now().uptimeNanoseconds - start < 30_000_000_000 { usleep(1_000) }
            times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        _ = FileManager.default.createFile(atPath: directory + "/check", contents: nil)
        for _ in 0..<500 where !FileManager.default.fileExists(atPath: directory + "/alive") { usleep(10_000) }
        let alive = (try? String(contentsOfFile: directory + "/alive", encoding: .utf8)) ?? "?"
        return (times, "USR2 → the new worker runs; \(alive) of \(min(500, publicDomains.count)) held connections still answer after \(runs) reloads")
    }
}
