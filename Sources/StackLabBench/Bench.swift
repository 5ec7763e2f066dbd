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
            swift build -c release. On a terminal, each run is announced on standard error as it starts and ends. \
            Every benchmark is listed below; 'stacklab-bench all' runs them all into one table (or JSON).
            """,
        subcommands: [BenchManifests.self, BenchApply.self, BenchRings.self, BenchPlan.self, BenchIncremental.self, BenchBootstrap.self, BenchFloor.self, BenchFirewall.self, BenchLoadBalancer.self, BenchSnapshot.self, BenchBilling.self, BenchMonitoring.self, BenchServe.self, BenchShare.self, BenchAll.self, SwiftClusterCommand.self])
}
