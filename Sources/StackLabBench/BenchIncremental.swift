import ArgumentParser
import Foundation
import Git
import ManifestSources
import Manifests
import Processes
import Reconcile
import StackLabCLI
import StateSQLite

/// `stacklab-bench incremental`: a one-file push to a big repository, planned by the long-running planner.
struct BenchIncremental: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "incremental",
        abstract: "Time a one-file commit planned by the incremental (long-running) planner, in process.",
        discussion: """
            Generates the size's repository, converges its first region (stacklab apply --region r0; the other \
            regions stay empty, so their plans create everything), then in one process: plans HEAD once from nothing (prime: every file decoded, every node observed, every region \
            planned), plans HEAD again (nothing changed), and --runs times commits a change to one instance \
            document of region r0 (its flavor: from the applied m1.tiny to m1.small, ssd.small, m1.small…) and plans the new HEAD. In r0 the new plan must \
            hold exactly that one update; the detail lines say what was decoded, observed and planned again.
            The process sets glibc malloc as the service does (Allocator: 2 arenas, large blocks mapped apart) and, as the \
            service does after a pass, gives free pages back once the prime is planned. Peak RSS is this process's \
            high-water mark: the prime's row has the whole start's; each later row's mark is set back to what the process \
            holds when its runs begin (/proc/self/clear_refs), so it is that row's own peak.
            """)

    @Option(help: "small, medium or large.")
    var size: BenchPlan.Size = .large

    @Option(help: "Commits planned (the median is reported).")
    var runs = 5

    @Option(help: "text or json.")
    var format: OutputFormat = .text

    @Option(help: ArgumentHelp("Generate under this directory and keep it (default: a temporary one, removed).", valueName: "dir"))
    var dir: String?

    @Option(help: ArgumentHelp("""
        Also time this size's one-file commits in a second process, in lockstep with this size's (one of its commits, \
        then one of these, the order alternating), and print its median beside this size's with their ratio: both \
        under the same conditions, each process's memory its own.
        """, valueName: "size"))
    var anchor: BenchPlan.Size?

    /// The anchor's side of `--anchor` (a child process): primes, says `ready`, then plans one commit for each `go` read
    /// on its standard input and answers with its seconds, until its input ends.
    @Flag(help: .hidden)
    var lockstep = false

    func run() throws {
        let root = dir.map { "\($0)/incremental-\(size.rawValue)" }
            ?? FileManager.default.temporaryDirectory.appendingPathComponent("stacklab-bench-incremental-\(getpid())").path
        defer { if dir == nil { try? FileManager.default.removeItem(atPath: root) } }
        if anchor == size { throw ValidationError("--anchor names the size measured: give another one (e.g. --size large --anchor medium)") }
        // The anchor primes first, alone, and then waits: this size's own start is not slowed by it.
        let partner = try anchor.map { try Lockstep(size: $0, runs: runs, dir: dir) }
        Allocator.configure()
        try size.generate(at: root)
        let state = "\(root)/.state"
        try Self.convergeFirstRegion(root: root, state: state)

        let planner = IncrementalPlanner(repository: root, stateDirectory: state, state: { try SQLiteState.existing(directory: state) })
        var rows: [BenchRow] = []
        // The prime's outcome (its plan creates 99 regions' instances) is not kept: what stays is what the planner keeps.
        let primeChanges: Int
        do {
            let prime = try planner.plan(revision: "HEAD")
            guard let plan = prime.plan else { throw ValidationError("the generated repository does not validate") }
            primeChanges = plan.changes.count
            rows.append(row("\(size.rawValue) prime", [Summary(prime)]))
        }
        Allocator.trim()
        ResidentMemory.startPeak()
        rows.append(row("\(size.rawValue) same revision", [Summary(try planner.plan(revision: "HEAD"))]))

        let path = "manifests/tenants/t0/instances-0.yaml"
        var outcomes: [Summary] = []
        var anchored: [Double] = []
        if lockstep { Lockstep.say("ready") }
        ResidentMemory.startPeak()
        for run in 0..<runs {
            if lockstep {
                guard Lockstep.hear() else { break }
            } else if let partner, run % 2 == 0 {
                anchored.append(try partner.commit())
            }
            try Self.setField("flavor", of: "vm-0", in: "\(root)/\(path)", to: run % 2 == 0 ? "m1.small" : "ssd.small")
            try Command.check(["git", "-C", root, "-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit", "-qam", "resize vm-0"])
            let outcome = try planner.plan(revision: "HEAD")
            if outcome.load.hasErrors { throw ValidationError("commit \(run) does not validate") }
            // Region r0 is converged: resizing vm-0 is its only change; the other regions' plans are as primed.
            let changes = outcome.plan?.changes ?? []
            let inR0 = Array(changes.lazy.filter { $0.region == "r0" })
            guard inR0.count == 1, inR0[0].address.description == "instance/r0/t0/vm-0", inR0[0].action == .update,
                  changes.count - 1 == primeChanges else {
                throw ValidationError("the plan after resizing vm-0 should update it alone in r0 and keep the other regions' plans; "
                                      + "r0 has \(inR0.count) changes: " + inR0.prefix(5).map { "\($0.action.rawValue) \($0.address)" }.joined(separator: ", "))
            }
            outcomes.append(Summary(outcome))
            if lockstep { Lockstep.say("\(outcome.totalSeconds)") }
            if let partner, run % 2 == 1 { anchored.append(try partner.commit()) }
        }
        if lockstep { return }
        rows.append(row("\(size.rawValue) one-file commit", outcomes))
        if let partner, let anchor, !anchored.isEmpty {
            try partner.finish()
            let sorted = anchored.sorted(), median = sorted[sorted.count / 2]
            let own = outcomes.map(\.totalSeconds).sorted()[outcomes.count / 2]
            rows.append(BenchRow(name: "\(anchor.rawValue) one-file commit (anchor)", medianSeconds: median, minSeconds: sorted[0],
                                 maxSeconds: sorted[sorted.count - 1], peakRSSMB: 0,
                                 detail: String(format: "the anchor's commits, in lockstep with these in a second process: %@ ÷ %@ = %.2f (%.4f s ÷ %.4f s)",
                                                size.rawValue, anchor.rawValue, own / median, own, median)))
        }
        let report = BenchReport(workload: "incremental planner, size \(size.rawValue)", cores: ProcessInfo.processInfo.activeProcessorCount,
                                 runs: runs, rows: rows)
        Terminal.standardOutput.write(format == .json ? try JSON.encode(report) : report.table)
    }

    /// An outcome's figures (an outcome holds the whole model: keeping every run's would be measured as memory).
    struct Summary {
        var loadSeconds, validateSeconds, planSeconds, totalSeconds: Double
        var filesDecoded, filesReused: Int
        var changesApplied: Bool
        var reuse: ReuseStats

        init(_ outcome: IncrementalPlanner.Outcome) {
            loadSeconds = outcome.loadSeconds
            validateSeconds = outcome.validateSeconds
            planSeconds = outcome.planSeconds
            totalSeconds = outcome.totalSeconds
            filesDecoded = outcome.filesDecoded
            filesReused = outcome.filesReused
            changesApplied = outcome.changesApplied
            reuse = outcome.reuse
        }
    }

    private func row(_ name: String, _ outcomes: [Summary]) -> BenchRow {
        let sorted = outcomes.sorted { $0.totalSeconds < $1.totalSeconds }
        let median = sorted[sorted.count / 2]
        let detail = String(format: "median run: read+decode %.4fs, validate %.4fs, observe+plan %.4fs; ",
                            median.loadSeconds, median.validateSeconds, median.planSeconds)
            + "files \(median.filesDecoded) decoded, \(median.filesReused) reused\(median.changesApplied ? " (the tree's changes applied)" : ""); \(median.reuse)"
        return BenchRow(name: name, medianSeconds: median.totalSeconds, minSeconds: sorted[0].totalSeconds,
                        maxSeconds: sorted[sorted.count - 1].totalSeconds, peakRSSMB: ResidentMemory.peakMB(), detail: detail)
    }

    /// Converges region r0 of the repository at `root`, in this process as a long-running planner converges what it plans:
    /// the nodes' observations it saves are this build's, so the prime reads them back (another program's are not
    /// trusted). The model it loads is let go before the planner starts.
    private static func convergeFirstRegion(root: String, state: String) throws {
        let revision = try Repository(at: root).resolveCommit("HEAD")
        let loaded = try Loader().load(GitSource(repository: root, revision: revision))
        var options = ReconcileRun.Options()
        options.regions = ["r0"]
        let converge = ReconcileRun(reconciler: Reconciler(model: loaded.model, revision: revision, stateDirectory: state, state: nil), options: options,
                                   leases: LocalRegionLeases(stateDirectory: state)) {
            try SQLiteState(directory: state)
        }
        let converged = try converge.run()
        guard converged.applied?.succeeded == true else { throw ValidationError("converging region r0 failed: \(converged.applied?.failed ?? 0) changes failed") }
    }

    /// Sets a spec field of `instance` in the manifest at `path` to `value` (YAML text).
    static func setField(_ field: String, of instance: String, in path: String, to value: String) throws {
        var text = try String(contentsOfFile: path, encoding: .utf8)
        let range = try valueRange(field, of: instance, in: text, path: path)
        text.replaceSubrange(range, with: value)
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }

    /// A spec field of `instance` in the manifest at `path` (YAML text).
    static func field(_ field: String, of instance: String, in path: String) throws -> String {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        return String(text[try valueRange(field, of: instance, in: text, path: path)])
    }

    private static func valueRange(_ field: String, of instance: String, in text: String, path: String) throws -> Range<String.Index> {
        guard let name = text.range(of: "name: \(instance)\n"),
              let line = text.range(of: "  \(field): ", range: name.upperBound..<text.endIndex),
              let end = text.range(of: "\n", range: line.upperBound..<text.endIndex) else {
            throw ValidationError("\(path) has no \(field) for \(instance)")
        }
        return line.upperBound..<end.lowerBound
    }
}

/// `--anchor`: the other size's planner in a child process (`incremental --lockstep`), asked for one commit at a time.
/// Lines on its standard output that are not the protocol's (`lockstep …`) are passed on to standard error.
final class Lockstep {
    private let process = Process()
    private let input = Pipe(), output = Pipe()

    init(size: BenchPlan.Size, runs: Int, dir: String?) throws {
        process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
        process.arguments = ["incremental", "--size", size.rawValue, "--runs", "\(runs)", "--lockstep"] + (dir.map { ["--dir", $0] } ?? [])
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        guard try answer() == "ready" else { throw ValidationError("the anchor process did not start") }
    }

    /// The anchor plans its next commit; its seconds.
    func commit() throws -> Double {
        input.fileHandleForWriting.write(Data("go\n".utf8))
        let line = try answer()
        guard let seconds = Double(line) else { throw ValidationError("the anchor process answered '\(line)'") }
        return seconds
    }

    /// Ends the anchor's input and waits for it.
    func finish() throws {
        try input.fileHandleForWriting.close()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw ValidationError("the anchor process exited with \(process.terminationStatus)") }
    }

    /// The next protocol line from the anchor.
    private func answer() throws -> String {
        while let line = Self.line(from: output.fileHandleForReading.fileDescriptor) {
            if line.hasPrefix("lockstep ") { return String(line.dropFirst("lockstep ".count)) }
            FileHandle.standardError.write(Data((line + "\n").utf8))
        }
        throw ValidationError("the anchor process ended early (exit \(process.isRunning ? "-" : "\(process.terminationStatus)"))")
    }

    /// The next line read from `descriptor` (one byte at a time: nothing past it is taken), nil once it ends.
    static func line(from descriptor: Int32) -> String? {
        var bytes: [UInt8] = []
        var byte: UInt8 = 0
        while true {
            let count = read(descriptor, &byte, 1)
            if count < 0 && errno == EINTR { continue }
            guard count == 1 else { return nil }
            if byte == UInt8(ascii: "\n") { return String(decoding: bytes, as: UTF8.self) }
            bytes.append(byte)
        }
    }

    /// The child's side: one protocol line to the parent.
    static func say(_ text: String) {
        FileHandle.standardOutput.write(Data("lockstep \(text)\n".utf8))
    }

    /// The child's side: whether the parent asked for another commit (false once its input ended).
    static func hear() -> Bool {
        line(from: 0) == "go"
    }
}
