import ArgumentParser
import Foundation
import ManifestSources
import Manifests
import Planning
import Reconcile
import StackLabCLI
import TestSupport

/// `stacklab-bench firewall`: render and diff the rulesets of a large region.
struct BenchFirewall: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "firewall",
        abstract: "Render and diff the nftables rulesets of a 100-node region with 10,000 instances and 1,000 security-group rules.",
        discussion: """
            The region is generated (100 compute nodes, 10,000 instances of 100 tenants, each tenant's group with 10 \
            rules, two of them from the group itself) and loaded once. Timed in process, median of --runs:
              render   placement, gateways, floating IPs and every node's ruleset (Planner.rulesets)
              diff     every node's ruleset against the installed one with one security-group rule changed
            """)

    @Option(help: "Runs of each measurement (the median is reported).")
    var runs = 5

    @Option(help: "text or json.")
    var format: OutputFormat = .text

    func run() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("stacklab-bench-firewall-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        var deployment = SyntheticDeployment(nodes: 100, instances: 10_000)
        deployment.tenants = 100
        deployment.extraRulesPerGroup = 8
        deployment.instanceStorage = "4TiB"
        _ = try deployment.write(to: root)
        let loaded = try Loader().load(DirectorySource(root: root))
        guard !loaded.hasErrors, let region = loaded.model.regions.first else {
            let renderer = DiagnosticRenderer(files: loaded.files)
            throw fail("the generated region does not validate:\n" + renderer.render(Array(loaded.diagnostics.filter { $0.severity == .error }.prefix(5))))
        }
        let groupRules = loaded.model.securityGroups.reduce(0) { $0 + ($1.spec.rules?.value.count ?? 0) }
        let observed = loaded.model.nodes.map { ObservedNode(address: $0.address, domains: [], networks: []) }

        var renderTimes: [Double] = []
        var rulesets: [Ruleset] = []
        for _ in 0..<runs {
            let start = DispatchTime.now().uptimeNanoseconds
            rulesets = Planner.rulesets(region, model: loaded.model, observed: observed)
            renderTimes.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        // The installed rulesets: as rendered, but with one rule of every node changed (a port moved).
        let installed = rulesets.map { ruleset -> Ruleset in
            var rules = Array(ruleset.rules)
            if let index = rules.firstIndex(where: { $0.source.hasPrefix("securitygroup/") }) {
                rules[index].text = rules[index].text.replacingOccurrences(of: "dport 443", with: "dport 8443")
            }
            return Ruleset(node: ruleset.node, rules: rules, counters: Array(ruleset.counters), recordedDigest: ruleset.recordedDigest)
        }
        var diffTimes: [Double] = []
        var fields = 0
        for _ in 0..<runs {
            let start = DispatchTime.now().uptimeNanoseconds
            fields = zip(rulesets, installed).reduce(0) { $0 + $1.0.diff(from: $1.1).count }
            diffTimes.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        let rules = rulesets.reduce(0) { $0 + $1.rules.count }
        let bytes = rulesets.reduce(0) { $0 + $1.nft.utf8.count }
        let rss = ResidentMemory.peakMB()
        func row(_ name: String, _ times: [Double], _ detail: String) -> BenchRow {
            let sorted = times.sorted()
            return BenchRow(name: name, medianSeconds: sorted[sorted.count / 2], minSeconds: sorted[0], maxSeconds: sorted[sorted.count - 1],
                            peakRSSMB: rss, detail: detail)
        }
        let report = BenchReport(workload: "1 region, \(observed.count) nodes, \(loaded.model.instances.count) instances, \(groupRules) security-group rules", cores: ProcessInfo.processInfo.activeProcessorCount, runs: runs, rows: [
            row("render", renderTimes, "\(rulesets.count) rulesets, \(rules) rules, \(bytes / 1024) KiB of nft"),
            row("diff", diffTimes, "\(fields) rule changes found (one rule changed on each node: a - and a + line)"),
        ])
        Terminal.standardOutput.write(format == .json ? try JSON.encode(report) : report.table)
    }
}
