import ArgumentParser
import Foundation
import Processes
import StackLabCLI
import TestSupport

/// `stacklab-bench manifests`: load + validate from a git revision, against the libgit2 + libyaml floor.
struct BenchManifests: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "manifests",
        abstract: "Time 'stacklab validate --rev HEAD' on a generated repository, with the floor for comparison.",
        discussion: """
            Generates a valid deployment (regions of 100 nodes, 300 tenants, instances 60 to a file) as a real git \
            repository, then runs, --runs times each:
              validate     stacklab validate --repo R --rev HEAD (all cores)
              floor-1      read every manifest blob with libgit2 + libyaml event parse, one thread
              floor-N      the same on all cores
            and reports the median wall time and the largest peak RSS of each.
            """)

    @Option(help: "Nodes in the generated deployment.")
    var nodes = 10_000

    @Option(help: "Instances in the generated deployment.")
    var instances = 100_000

    @Option(help: "Runs of each measurement (the median is reported).")
    var runs = 5

    @Option(help: ArgumentHelp("Generate into this directory (kept) instead of a temporary one.", valueName: "dir"))
    var dir: String?

    @Option(help: "text or json.")
    var format: OutputFormat = .text

    func run() throws {
        let root = dir ?? FileManager.default.temporaryDirectory.appendingPathComponent("stacklab-bench-\(getpid())").path
        defer { if dir == nil { try? FileManager.default.removeItem(atPath: root) } }
        try? FileManager.default.removeItem(atPath: root)
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        let deployment = SyntheticDeployment(nodes: nodes, instances: instances)
        let files = try deployment.write(to: root)
        try Command.check(["git", "init", "-q", root])
        try Command.check(["git", "-C", root, "add", "-A"])
        try Command.check(["git", "-C", root, "-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit", "-qm", "generated"])
        try Command.check(["git", "-C", root, "gc", "-q"])
        let bytes = try Self.treeBytes(root)

        let me = SelfPath.stacklab
        let cores = ProcessInfo.processInfo.activeProcessorCount
        var rows: [BenchRow] = []
        rows.append(try measure("validate", [me, "validate", "--repo", root, "--rev", "HEAD", "--format", "json"]))
        rows.append(try measure("floor-1", [SelfPath.current, "floor", "--repo", root, "--rev", "HEAD", "--threads", "1"]))
        rows.append(try measure("floor-\(cores)", [SelfPath.current, "floor", "--repo", root, "--rev", "HEAD", "--threads", "\(cores)"]))
        let report = BenchReport(
            workload: "\(nodes) nodes, \(instances) instances, \(deployment.regions) regions, \(files) files, \(bytes / 1_000_000) MB",
            cores: cores, runs: runs, rows: rows)
        Terminal.standardOutput.write(format == .json ? try JSON.encode(report) : report.table)
    }

    private func measure(_ name: String, _ arguments: [String]) throws -> BenchRow {
        var outcomes: [Command.Result] = []
        for run in 0..<runs {
            let outcome = try BenchProgress.step("\(name), run \(run + 1) of \(runs)") { try Command.run(arguments) }
            guard outcome.status == 0 else {
                throw Command.Failure(description: "\(name) failed (exit \(outcome.status)): \(outcome.output.prefix(2000))")
            }
            outcomes.append(outcome)
        }
        return BenchRow(name: name, outcomes: outcomes)
    }

    private static func treeBytes(_ root: String) throws -> Int {
        var total = 0
        for top in ["manifests", "regions"] {
            let base = (root as NSString).appendingPathComponent(top)
            guard let walker = FileManager.default.enumerator(atPath: base) else { continue }
            while let path = walker.nextObject() as? String {
                let attributes = try FileManager.default.attributesOfItem(atPath: (base as NSString).appendingPathComponent(path))
                if attributes[.type] as? FileAttributeType == .typeRegular { total += (attributes[.size] as? Int) ?? 0 }
            }
        }
        return total
    }
}

/// One measurement.
struct BenchRow: Codable {
    var name: String
    var medianSeconds: Double
    var minSeconds: Double
    var maxSeconds: Double
    var peakRSSMB: Double
    /// What the measurement did, when there is more to say (printed under the row).
    var detail: String? = nil
}

/// A benchmark's results, printable as a table or JSON.
struct BenchReport: Codable {
    var workload: String
    var cores: Int
    var runs: Int
    var rows: [BenchRow]

    var table: String {
        var out = "workload: \(workload); \(cores) cores; median of \(runs) runs\n"
        out += "measurement              median s    min s    max s   peak RSS MB\n"
        for row in rows {
            out += row.name.padding(toLength: max(24, row.name.count + 1), withPad: " ", startingAt: 0)
            out += String(format: "%10.3f %8.3f %8.3f %13.1f\n", row.medianSeconds, row.minSeconds, row.maxSeconds, row.peakRSSMB)
            if let detail = row.detail { out += "  \(detail)\n" }
        }
        return out
    }
}
