import ArgumentParser
import Pipelines
import StackLabCLI

/// `stacklab-bench`: measurements that speed and memory targets are judged by. Tooling, not product: it starts
/// loopback servers from TestSupport and times the `stacklab` program beside it.
@main
struct StackLabBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stacklab-bench",
        abstract: "Run benchmarks on generated workloads and print a table (text or JSON).",
        discussion: """
            Benchmarks run whole stacklab processes (the `stacklab` beside this program, or $STACKLAB_BINARY), so the \
            times include start-up and the peak RSS is the process's own. Build in release mode first: \
            swift build -c release.

              stacklab-bench manifests     load + validate a generated 10,000-node, 100,000-instance repository from git
              stacklab-bench apply         apply 1,000 instances over 30 simulated nodes, then re-plan (no-op)
              stacklab-bench rings         build and rebalance Swift rings W1–W4 (the ring issue's workloads)
              stacklab-bench plan          validate, plan (empty and converged) and apply at small/medium/large sizes
              stacklab-bench incremental   a one-file commit planned by the long-running planner (large by default)
              stacklab-bench serve         push → plan → converged through a running `stacklab serve`, and its RSS
              stacklab-bench share         3 `stacklab serve` processes sharing 100 regions on PostgreSQL: push → all converged, spread, SIGKILL handover
              stacklab-bench all           every benchmark at the three sizes, one table (or JSON) with commit, machine, floors, anchors, ratios
            """,
        subcommands: [BenchManifests.self, BenchApply.self, BenchRings.self, BenchPlan.self, BenchIncremental.self, BenchBootstrap.self, BenchFloor.self, BenchFirewall.self, BenchSnapshot.self, BenchBilling.self, BenchServe.self, BenchShare.self, BenchAll.self])
}
