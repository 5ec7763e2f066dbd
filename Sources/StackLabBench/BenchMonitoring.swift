import ArgumentParser
import Drivers
import Foundation
import Libvirt
import ManifestSources
import Manifests
import Planning
import Processes
import Reconcile
import Service
import StackLabCLI
import State
import StateSQLite
import TestSupport

/// `stacklab-bench monitoring`: what the service's usage round costs over a large region, beside libvirt's own calls
/// for the same counters, and what `/metrics` and the traffic ledger cost at that size.
struct BenchMonitoring: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "monitoring",
        abstract: "One usage round over 10,000 simulated instances on 100 nodes; /metrics size and render time; a traffic ledger write of 40,000 counters.",
        discussion: """
            The region is generated and applied (simulated nodes), then, in this process, median of --runs:
              collection   one round as the service makes it: every node's running guests and their counters
                           (NodeDriver.usage: one bulk call per node, then the test driver's guests one at a time,
                           since it keeps no counters in the bulk call)
              libvirt      the floor: the same nodes' bulk call and one virDomainGetInfo per guest, nothing else
              exposition   the /metrics text of every instance's counters (UsageBook.exposition)
              ledger       40,000 traffic counters (4 per instance) recorded in the SQLite ledger in one
                           transaction, as a meter round does (TrafficLedger.recordTraffic), then again (no-op)
            Peak RSS is the bench process's.
            """)

    @Option(help: "Simulated nodes.")
    var nodes = 100

    @Option(help: "Instances.")
    var instances = 10_000

    @Option(help: "Runs of each measurement (the median is reported).")
    var runs = 3

    @Option(help: "text or json.")
    var format: OutputFormat = .text

    func run() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("stacklab-bench-monitoring-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        var deployment = SyntheticDeployment(nodes: nodes, instances: instances)
        deployment.nodesPerRegion = nodes
        deployment.tenants = 100
        deployment.instanceStorage = "4TiB"
        let repo = root + "/repo", stateDirectory = root + "/state"
        _ = try deployment.write(to: repo)
        try Command.check(["git", "init", "-q", repo])
        try Command.check(["git", "-C", repo, "add", "-A"])
        try Command.check(["git", "-C", repo, "-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit", "-qm", "generated"])
        let applied = try BenchProgress.step("apply \(instances) instances on \(nodes) simulated nodes") {
            try Command.run([SelfPath.stacklab, "apply", "--auto-approve", "--repo", repo, "--rev", "HEAD", "--state-dir", stateDirectory])
        }
        guard applied.status == 0 else { throw fail("apply failed (exit \(applied.status)): \(applied.output.suffix(2000))") }
        let loaded = try Loader().load(DirectorySource(root: repo))
        let region = SyntheticDeployment.regionName(0)
        let store = try SQLiteState(directory: stateDirectory)
        let reconciler = Reconciler(model: loaded.model, revision: nil, stateDirectory: stateDirectory, state: store, environment: RunEnvironment([:]))
        let drivers = try reconciler.drivers(for: try reconciler.endpoints(for: [region])).sorted { $0.key < $1.key }

        var read: [String: [InstanceUsage]] = [:]
        let collection = try BenchLoadBalancer.time(runs) {
            read = [:]
            for (node, driver) in drivers {
                read[node.name] = try driver.usage()
                driver.disconnect()
            }
        }
        let guests = read.values.reduce(0) { $0 + $1.count }
        guard guests == instances else { throw fail("a round read \(guests) guests, not \(instances)") }
        var floorGuests = 0
        let floor = try BenchLoadBalancer.time(runs) {
            floorGuests = 0
            for (_, driver) in drivers {
                guard let node = (driver as? any LibvirtBacked)?.libvirtNode else { continue }
                for (domain, _) in try node.connection.runningDomainCounters() {
                    _ = try domain.info()
                    floorGuests += 1
                }
                driver.disconnect()
            }
        }
        let book = UsageBook()
        book.record(region, nodes: read)
        var text = ""
        let exposition = BenchLoadBalancer.time(max(runs, 5)) { text = book.exposition() }

        var samples: [TrafficSample] = []
        for usage in read.values.joined() {
            for direction in TrafficCounter.Direction.allCases {
                for scope in TrafficCounter.Scope.allCases {
                    samples.append(TrafficSample(counter: TrafficCounter(instance: usage.instance, direction: direction, scope: scope), tenant: usage.instance.tenant ?? "",
                                                 priceList: "standard", bytes: 1_000_000))
                }
            }
        }
        let node = Address(kind: .node, region: region, name: "bench")
        var added: Int64 = 0
        let first = try BenchLoadBalancer.time(1) { added = try store.recordTraffic(region: region, node: node, epoch: "bench/1", samples: samples, at: 1_800_000_000) }
        let again = try BenchLoadBalancer.time(runs) { _ = try store.recordTraffic(region: region, node: node, epoch: "bench/1", samples: samples, at: 1_800_000_060) }

        let rss = ResidentMemory.peakMB()
        func row(_ name: String, _ times: [Double], _ detail: String) -> BenchRow {
            let sorted = times.sorted()
            return BenchRow(name: name, medianSeconds: sorted[sorted.count / 2], minSeconds: sorted[0], maxSeconds: sorted[sorted.count - 1], peakRSSMB: rss, detail: detail)
        }
        let median = { (times: [Double]) in times.sorted()[times.count / 2] }
        let report = BenchReport(
            workload: "1 region, \(instances) running instances on \(nodes) simulated nodes", cores: ProcessInfo.processInfo.activeProcessorCount, runs: runs,
            rows: [
                row("collection", collection, String(format: "%d guests read, %.0f µs each; %.2f× the floor", guests, median(collection) / Double(guests) * 1e6,
                                                      median(collection) / median(floor))),
                row("libvirt floor", floor, "\(floorGuests) guests: one bulk call per node and virDomainGetInfo per guest"),
                row("exposition", exposition, "\(text.utf8.count / 1024) KiB, \(text.split(separator: "\n").count) lines"),
                row("ledger write", first, "\(samples.count) counters, \(added / 1_000_000) of them new, one transaction"),
                row("ledger again", again, "the same reading again: nothing added (every mark already there)"),
            ])
        Terminal.standardOutput.write(format == .json ? try JSON.encode(report) : report.table)
    }
}
