import ArgumentParser
import Foundation
import SimulatedNodes
import Processes
import StackLabCLI
import TestSupport

/// `stacklab-bench plan`: the performance issue's size matrix for loading and planning.
struct BenchPlan: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Load, plan from empty state, apply, and plan again (no-op) at the small, medium and large sizes.",
        discussion: """
            Sizes: small (5 regions × 3 nodes, 100 instances), medium (50 × 20, 10,000), large (100 × 100, 100,000),
            each generated as a git repository. For every size, whole stacklab processes are timed (median of --runs):
              validate       load + validate from the revision
              plan-empty     plan against nodes with nothing on them (creates every network, instance and ring)
              apply          converge (once; skipped for large unless --apply-large, which takes many minutes), then
                             verify: observe through the open connections, plan, remember converged regions
              plan-noop      plan against the converged nodes: must find nothing to do (regions whose documents,
                             node host files and ring builders are unchanged since verified are not observed again)
              plan-refresh   the same with --refresh: every region planned again and every node's state read again
                             (a simulated node whose files kept their stamps gives the observation saved beside its
                             host, as the apply left it)
              plan-reparse   plan-refresh with the saved observations removed first: libvirt's test driver parses
                             every host (what the first plan after an upgrade pays)
            """)

    enum Size: String, ExpressibleByArgument, CaseIterable {
        case small, medium, large

        var shape: (regions: Int, nodesPerRegion: Int, instances: Int) {
            switch self {
            case .small: (5, 3, 100)
            case .medium: (50, 20, 10_000)
            case .large: (100, 100, 100_000)
            }
        }

        /// Writes this size's deployment at `root` (emptied first) as a git repository with one commit.
        func generate(at root: String) throws {
            try? FileManager.default.removeItem(atPath: root)
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
            var deployment = SyntheticDeployment(nodes: shape.regions * shape.nodesPerRegion, instances: shape.instances)
            deployment.nodesPerRegion = shape.nodesPerRegion
            deployment.tenants = min(300, max(10, shape.instances / 30))
            _ = try deployment.write(to: root)
            try Command.check(["git", "init", "-q", root])
            try Command.check(["git", "-C", root, "add", "-A"])
            try Command.check(["git", "-C", root, "-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit", "-qm", "generated"])
        }
    }

    @Option(help: "Sizes to run (repeatable; default: small and medium).")
    var size: [Size] = [.small, .medium]

    @Option(help: "Runs of each measurement (the median is reported).")
    var runs = 3

    @Flag(help: "Also converge the large size (100,000 instances) to measure its no-op plan.")
    var applyLarge = false

    @Option(help: "text or json.")
    var format: OutputFormat = .text

    @Option(help: ArgumentHelp("Generate under this directory and keep it (default: a temporary one, removed).", valueName: "dir"))
    var dir: String?

    @Flag(help: "Only generate the repositories (under --dir), measure nothing.")
    var generateOnly = false

    func run() throws {
        let me = SelfPath.stacklab
        var rows: [BenchRow] = []
        for size in size {
            let root = dir.map { "\($0)/\(size.rawValue)" }
                ?? FileManager.default.temporaryDirectory.appendingPathComponent("stacklab-bench-plan-\(size.rawValue)-\(getpid())").path
            defer { if dir == nil { try? FileManager.default.removeItem(atPath: root) } }
            try size.generate(at: root)
            let repo = ["--repo", root, "--rev", "HEAD"]
            if generateOnly { continue }

            rows.append(try measure("\(size.rawValue) validate", [me, "validate"] + repo, expect: [0]))
            var outcomes: [Command.Result] = []
            for run in 0..<runs {
                outcomes.append(try checked("plan-empty", [me, "plan"] + repo + ["--state-dir", "\(root)/empty-\(run)"], expect: [2]))
            }
            rows.append(BenchRow(name: "\(size.rawValue) plan-empty", outcomes: outcomes))
            guard size != .large || applyLarge else { continue }
            let state = "\(root)/converged"
            rows.append(BenchRow(name: "\(size.rawValue) apply", outcomes: [try checked("apply", [me, "apply", "--auto-approve"] + repo + ["--state-dir", state], expect: [0])]))
            rows.append(try measure("\(size.rawValue) plan-noop", [me, "plan"] + repo + ["--state-dir", state], expect: [0]))
            rows.append(try measure("\(size.rawValue) plan-refresh", [me, "plan", "--refresh"] + repo + ["--state-dir", state], expect: [0]))
            rows.append(BenchRow(name: "\(size.rawValue) plan-reparse", outcomes: try (0..<runs).map { _ in
                guard SimulatedNode.removeSavedObservations(stateDirectory: state) > 0 else {
                    throw Command.Failure(description: "plan-reparse: no saved observation under \(state)/nodes: the apply saves one per node")
                }
                return try checked("plan-reparse", [me, "plan", "--refresh"] + repo + ["--state-dir", state], expect: [0])
            }))
        }
        let report = BenchReport(workload: "sizes: " + size.map(\.rawValue).joined(separator: ", "),
                                 cores: ProcessInfo.processInfo.activeProcessorCount, runs: runs, rows: rows)
        Terminal.standardOutput.write(format == .json ? try JSON.encode(report) : report.table)
    }

    private func measure(_ name: String, _ arguments: [String], expect: [Int32]) throws -> BenchRow {
        BenchRow(name: name, outcomes: try (0..<runs).map { run in
            try BenchProgress.step("\(name), run \(run + 1) of \(runs)") { try checked(name, arguments, expect: expect) }
        })
    }

    private func checked(_ name: String, _ arguments: [String], expect: [Int32]) throws -> Command.Result {
        let outcome = try Command.run(arguments)
        guard expect.contains(outcome.status) else {
            throw Command.Failure(description: "\(name) exited \(outcome.status): \(outcome.output.suffix(2000))")
        }
        return outcome
    }
}
