import ArgumentParser
import Foundation
import Processes
import StackLabCLI
import TestSupport

/// `stacklab-bench apply`: converge a generated cloud of simulated nodes, then re-plan with nothing to do.
struct BenchApply: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apply",
        abstract: "Time 'stacklab apply' of N instances over simulated nodes, then the no-op 'stacklab plan'.",
        discussion: """
            Generates a deployment (regions of --nodes-per-region simulated nodes, every node a compute node) as a \
            git repository, and for each of --runs fresh state directories measures:
              apply        stacklab apply --auto-approve (plan, create every network and instance, verify)
              replan       stacklab plan afterwards (must find nothing to do; regions verified converged and
                           unchanged are not observed again)
              refresh      stacklab plan --refresh (observes every node; must find nothing to do)
            """)

    @Option(help: "Simulated nodes.")
    var nodes = 30

    @Option(help: "Instances.")
    var instances = 1_000

    @Option(help: "Nodes per region.")
    var nodesPerRegion = 3

    @Option(help: "Runs (the median is reported).")
    var runs = 3

    @Option(help: ArgumentHelp("Generate into this directory (kept, for profiling 'stacklab apply' on it) instead of a temporary one.",
                               valueName: "dir"))
    var dir: String?

    @Option(help: "text or json.")
    var format: OutputFormat = .text

    func run() throws {
        let root = dir ?? FileManager.default.temporaryDirectory.appendingPathComponent("stacklab-bench-apply-\(getpid())").path
        defer { if dir == nil { try? FileManager.default.removeItem(atPath: root) } }
        try? FileManager.default.removeItem(atPath: root)
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        var deployment = SyntheticDeployment(nodes: nodes, instances: instances)
        deployment.nodesPerRegion = nodesPerRegion
        deployment.tenants = 30
        let files = try deployment.write(to: root)
        try Command.check(["git", "init", "-q", root])
        try Command.check(["git", "-C", root, "add", "-A"])
        try Command.check(["git", "-C", root, "-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit", "-qm", "generated"])

        let me = SelfPath.stacklab
        var applies: [Command.Result] = []
        var replans: [Command.Result] = []
        var refreshes: [Command.Result] = []
        for run in 0..<runs {
            let state = "\(root)/state-\(run)"
            let apply = try BenchProgress.step("apply, run \(run + 1) of \(runs)") {
                try Command.run([me, "apply", "--auto-approve", "--repo", root, "--rev", "HEAD", "--state-dir", state])
            }
            guard apply.status == 0 else { throw Command.Failure(description: "apply failed (exit \(apply.status)): \(apply.output.suffix(2000))") }
            let replan = try Command.run([me, "plan", "--repo", root, "--rev", "HEAD", "--state-dir", state])
            guard replan.status == 0 else { throw Command.Failure(description: "re-plan found changes (exit \(replan.status)): \(replan.output.suffix(2000))") }
            let refresh = try Command.run([me, "plan", "--refresh", "--repo", root, "--rev", "HEAD", "--state-dir", state])
            guard refresh.status == 0 else { throw Command.Failure(description: "plan --refresh found changes (exit \(refresh.status)): \(refresh.output.suffix(2000))") }
            applies.append(apply)
            replans.append(replan)
            refreshes.append(refresh)
        }
        let report = BenchReport(
            workload: "\(instances) instances over \(nodes) simulated nodes (\(deployment.regions) regions), \(files) files",
            cores: ProcessInfo.processInfo.activeProcessorCount, runs: runs,
            rows: [BenchRow(name: "apply", outcomes: applies), BenchRow(name: "replan (no-op)", outcomes: replans),
                   BenchRow(name: "refresh (no-op)", outcomes: refreshes)])
        Terminal.standardOutput.write(format == .json ? try JSON.encode(report) : report.table)
    }
}

extension BenchRow {
    /// Median, min, max of the outcomes' wall times and their largest peak RSS.
    init(name: String, outcomes: [Command.Result]) {
        let times = outcomes.map(\.seconds).sorted()
        self.init(name: name, medianSeconds: times[times.count / 2], minSeconds: times[0], maxSeconds: times[times.count - 1],
                  peakRSSMB: Double(outcomes.map(\.peakRSS).max() ?? 0) / 1_048_576)
    }
}
