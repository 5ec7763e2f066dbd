import ArgumentParser
import Foundation
import Processes
import StackLabCLI

/// `stacklab-bench all`: every benchmark, at every size it has, in one table to compare across commits.
struct BenchAll: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "all",
        abstract: "Run every benchmark (each at the small, medium and large sizes where it has sizes) and print one table.",
        discussion: """
            Each benchmark runs as its own `stacklab-bench … --format json` process, one after the other; a benchmark
            that cannot run here (no sshd, no Swift, no PostgreSQL) is reported with its error and the rest go on.
            The table names the commit, the machine and its cores; each figure comes with its floor or anchor when the
            benchmark measures one in the same run (load + validate against libgit2 + libyaml on 2 threads; ring builds
            against Swift's own RingBuilder; the large incremental commit against the medium one, timed in lockstep by
            `incremental --anchor medium`), the ratio, and the target it is held to.
              sized:  plan (validate, plan-empty, apply, plan-noop, plan-refresh), manifests, incremental, serve
              once:   apply, rings, firewall, loadbalancer, monitoring, billing, bootstrap, snapshot, share
            The whole run at all three sizes takes about 25 minutes here (large: converging 100,000 instances twice). The
            rings' anchor (Swift's RingBuilder) and the snapshot need $STACKLAB_SWIFT_PYTHON (.ci/run makes .build/swift-venv).
            """)

    @Option(help: "Sizes (repeatable; default: small, medium and large).")
    var size: [BenchPlan.Size] = BenchPlan.Size.allCases

    @Option(help: ArgumentHelp("Only these benchmarks (repeatable: plan, manifests, incremental, serve, apply, rings, firewall, loadbalancer, monitoring, billing, bootstrap, snapshot, share).", valueName: "name"))
    var only: [String] = []

    @Option(help: ArgumentHelp("Leave these benchmarks out (repeatable).", valueName: "name"))
    var skip: [String] = []

    @Option(help: "Runs of each measurement (the median is reported).")
    var runs = 3

    @Option(help: "text, json or markdown (the table in docs/bench/README.md).")
    var format: Format = .text

    @Option(help: ArgumentHelp("Measure nothing: print a report saved with --format json again, in --format.", valueName: "file"))
    var from: String?

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case text, json, markdown
    }

    @Option(help: ArgumentHelp("Keep generated repositories and converged states under this directory (serve starts from them).", valueName: "dir"))
    var dir: String?

    static let sized = ["plan", "manifests", "incremental", "serve"]
    static let once = ["apply", "rings", "firewall", "loadbalancer", "monitoring", "billing", "bootstrap", "snapshot", "share"]

    /// One figure of the combined table.
    struct Row: Codable {
        var bench: String
        var size: String?
        var name: String
        var medianSeconds: Double?
        var minSeconds: Double?
        var maxSeconds: Double?
        var peakRSSMB: Double?
        var detail: String?
        /// What the figure is compared with, measured in the same run: the floor or an anchor.
        var anchor: String?
        var anchorSeconds: Double?
        /// The figure over its floor, or the anchor over the figure (a speedup), as `ratioMeaning` says.
        var ratio: Double?
        var ratioMeaning: String?
        var target: String?
        var error: String?
        /// Whether the figure meets its target (nil: no target, or one no figure of the report can decide). Made again
        /// from the figures whenever a report is rendered, so a saved report (`--from`) gets it too.
        var met: Bool?
        /// A ring workload's replicas moved and the least that had to move (W4).
        var moved: Int?
        var minimum: Int?
    }

    struct Report: Codable {
        var commit: String
        var machine: String
        var cores: Int
        var date: String
        var runs: Int
        var rows: [Row]
    }

    func run() throws {
        if let from {
            guard let data = FileManager.default.contents(atPath: from) else { throw fail("cannot read \(from)") }
            let report: Report
            do {
                report = try JSONDecoder().decode(Report.self, from: data)
            } catch {
                throw fail("\(from) is not a report of `stacklab-bench all --format json`: \(error)")
            }
            Terminal.standardOutput.write(try Self.render(report, as: format))
            return
        }
        let wanted = (only.isEmpty ? Self.sized + Self.once : only).filter { !skip.contains($0) }
        for name in wanted where !(Self.sized + Self.once).contains(name) {
            throw ValidationError("unknown benchmark '\(name)'; one of: \((Self.sized + Self.once).joined(separator: ", "))")
        }
        // The commit as the run starts: the working tree may be edited while it runs, which does not change the binary.
        let commit = Self.commit()
        var rows: [Row] = []
        for size in size {
            for bench in Self.sized where wanted.contains(bench) {
                rows += measure(bench, size: size, arguments: arguments(bench, size: size))
            }
        }
        for bench in Self.once where wanted.contains(bench) {
            // A snapshot is one measurement of each kind (a first snapshot of 1 GiB is a minute): it takes no --runs.
            rows += measure(bench, size: nil, arguments: bench == "snapshot" ? [] : ["--runs", "\(runs)"])
        }
        let report = Report(commit: commit, machine: Self.machine(), cores: ProcessInfo.processInfo.activeProcessorCount,
                            date: ISO8601DateFormatter().string(from: Date()), runs: runs, rows: rows)
        Terminal.standardOutput.write(try Self.render(report, as: format))
    }

    static func render(_ report: Report, as format: Format) throws -> String {
        switch format {
        case .text: table(report)
        case .json: try JSON.encode(judged(report))
        case .markdown: markdown(report)
        }
    }

    private func arguments(_ bench: String, size: BenchPlan.Size) -> [String] {
        let shape = size.shape
        let kept = dir.map { ["--dir", "\($0)/\(bench)"] } ?? []
        switch bench {
        case "plan": return ["--size", size.rawValue, "--runs", "\(runs)"] + (size == .large ? ["--apply-large"] : []) + kept
        case "manifests": return ["--nodes", "\(shape.regions * shape.nodesPerRegion)", "--instances", "\(shape.instances)", "--runs", "\(runs)"] + kept
        case "incremental":
            // The large commit is held to the medium one's time: measured in lockstep, under the same conditions.
            return ["--size", size.rawValue, "--runs", "\(max(runs, 3))"] + (size == .large ? ["--anchor", "medium"] : []) + kept
        default: return ["--size", size.rawValue, "--runs", "\(max(runs, 3))"] + kept
        }
    }

    /// Runs one benchmark process and turns its JSON into rows (one row with the error when it fails).
    private func measure(_ bench: String, size: BenchPlan.Size?, arguments: [String]) -> [Row] {
        let label = size.map { "\(bench) (\($0.rawValue))" } ?? bench
        Terminal.standardError.write("bench all: \(label)…\n")
        do {
            let result = try Command.run([SelfPath.current, bench, "--format", "json"] + arguments, stderr: .captured)
            let output = Data(result.output.utf8)
            guard result.status == 0, let start = output.firstIndex(where: { $0 == UInt8(ascii: "{") || $0 == UInt8(ascii: "[") }) else {
                return [Row(bench: bench, size: size?.rawValue, name: "-", error: "exited \(result.status): \(result.output.suffix(400))")]
            }
            let json = output[start...]
            if bench == "rings" { return try Self.ringRows(JSONDecoder().decode([BenchRings.Row].self, from: json)) }
            let report = try JSONDecoder().decode(BenchReport.self, from: json)
            return Self.rows(bench, size: size, report.rows)
        } catch {
            return [Row(bench: bench, size: size?.rawValue, name: "-", error: "\(error)")]
        }
    }

    /// Rows of a `BenchReport`, with the floor of load + validate (`floor-2`, two threads) and the targets.
    static func rows(_ bench: String, size: BenchPlan.Size?, _ rows: [BenchRow]) -> [Row] {
        let floor = rows.first { $0.name == "floor-2" }
        let check = rows.first { $0.name == "haproxy -c" }
        return rows.map { row in
            var out = Row(bench: bench, size: size?.rawValue, name: row.name, medianSeconds: row.medianSeconds, minSeconds: row.minSeconds,
                          maxSeconds: row.maxSeconds, peakRSSMB: row.peakRSSMB, detail: row.detail)
            if bench == "manifests", row.name == "validate", let floor {
                out.anchor = "floor: libgit2 reads + libyaml events, 2 threads"
                out.anchorSeconds = floor.medianSeconds
                out.ratio = row.medianSeconds / max(floor.medianSeconds, 1e-9)
                out.ratioMeaning = "× the floor"
            }
            if bench == "loadbalancer", row.name == "render + check", let check {
                out.anchor = "floor: haproxy -c alone on the same file"
                out.anchorSeconds = check.medianSeconds
                out.ratio = row.medianSeconds / max(check.medianSeconds, 1e-9)
                out.ratioMeaning = "× the floor"
            }
            out.target = target(bench, size: size, name: row.name)?.text
            return out
        }
    }

    static func ringRows(_ rings: [BenchRings.Row]) -> [Row] {
        rings.map { ring in
            var row = Row(bench: "rings", name: ring.workload, medianSeconds: ring.medianSeconds,
                          detail: String(format: "balance %.2f %%, dispersion %d", ring.balance, ring.dispersion)
                              + (ring.moved.map { ", moved \($0) (minimum \(ring.minimum ?? 0))" } ?? ""))
            if let swift = ring.swift {
                row.anchor = String(format: "Swift 2.38 RingBuilder (balance %.2f %%, dispersion %.0f)", swift.balance, swift.dispersion)
                row.anchorSeconds = swift.seconds
                row.ratio = ring.speedup
                row.ratioMeaning = "× faster than the anchor"
            }
            row.moved = ring.moved
            row.minimum = ring.minimum
            row.target = target("rings", size: nil, name: ring.workload)?.text
            return row
        }
    }

    /// A target a figure is held to: its words, and the limits that decide whether it is met.
    struct Target {
        var text: String
        var maxSeconds: Double?
        var maxMB: Double?
        /// At most this many times the floor (`ratio`, "× the floor").
        var maxRatio: Double?
        /// At least this many times faster than the anchor (`ratio`, "× faster than the anchor").
        var minRatio: Double?
        /// At most `factor` × another row's time plus `plus` seconds (that row found by bench, size and name).
        var relative: (bench: String, size: String?, name: String, factor: Double, plus: Double)?
        /// Rings' W4: no more replicas moved than had to.
        var movesAtMinimum = false

        /// Whether `row` meets it: nil when no limit applies or a figure it needs is missing.
        func met(_ row: Row, in rows: [Row]) -> Bool? {
            guard row.error == nil else { return false }
            var checks: [Bool] = []
            if let maxSeconds, let seconds = row.medianSeconds { checks.append(seconds <= maxSeconds) }
            if let maxMB, let mb = row.peakRSSMB { checks.append(mb <= maxMB) }
            if let maxRatio, let ratio = row.ratio { checks.append(ratio <= maxRatio) }
            if let minRatio, let ratio = row.ratio { checks.append(ratio >= minRatio) }
            if let relative {
                // The other figure measured in lockstep with this one (`incremental --anchor`), else the other run's.
                let lockstep = rows.first { $0.bench == relative.bench && $0.size == row.size && $0.name == relative.name + " (anchor)" }
                guard let other = lockstep ?? rows.first(where: { $0.bench == relative.bench && $0.size == relative.size && $0.name == relative.name }),
                      let theirs = other.medianSeconds, other.error == nil, let ours = row.medianSeconds else { return nil }
                checks.append(ours <= relative.factor * theirs + relative.plus)
            }
            if movesAtMinimum {
                guard let moved = row.moved, let minimum = row.minimum else { return nil }
                checks.append(moved <= minimum)
            }
            return checks.isEmpty ? nil : !checks.contains(false)
        }
    }

    /// The targets of the performance issues and the issues before them, by benchmark, size and row.
    static func target(_ bench: String, size: BenchPlan.Size?, name: String) -> Target? {
        let large = size == .large
        switch (bench, name) {
        case ("manifests", "validate") where large: return Target(text: "≤ 1.5× the floor", maxRatio: 1.5)
        case ("plan", "large apply"): return Target(text: "≤ 100 s, ≤ 800 MB", maxSeconds: 100, maxMB: 800)
        case ("plan", "large plan-refresh"): return Target(text: "≤ 15 s", maxSeconds: 15)
        case ("plan", "large plan-noop"):
            return Target(text: "≤ 1 s beyond loading (validate)", relative: ("plan", "large", "large validate", 1, 1))
        case ("incremental", "large one-file commit"):
            return Target(text: "≤ 0.03 s, ≤ 400 MB; ≤ 1.5× medium", maxSeconds: 0.03, maxMB: 400,
                          relative: ("incremental", "medium", "medium one-file commit", 1.5, 0))
        case ("serve", let row) where large && row.contains("notification"): return Target(text: "≤ 0.3 s", maxSeconds: 0.3)
        case ("serve", let row) where row.contains("Chromium"): return Target(text: "< 1 s", maxSeconds: 1)
        case ("serve", let row) where large && row.contains("resident memory"): return Target(text: "≤ 400 MB", maxMB: 400)
        case ("apply", let row) where row.contains("apply"): return Target(text: "≤ 15 s", maxSeconds: 15)
        case ("billing", let row) where row.hasPrefix("rate"): return Target(text: "≤ 2 s, ≤ 500 MB", maxSeconds: 2, maxMB: 500)
        case ("rings", "W3"): return Target(text: "≥ 150× Swift, balance and dispersion equal", minRatio: 150)
        case ("rings", "W4"): return Target(text: "moves ≤ the minimum", movesAtMinimum: true)
        case ("bootstrap", "stacklab first"): return Target(text: "≤ 1 s", maxSeconds: 1)
        case ("bootstrap", "stacklab no-op"): return Target(text: "≤ 0.5 s", maxSeconds: 0.5)
        case ("snapshot", "first"): return Target(text: "≤ python-swiftclient's upload", relative: ("snapshot", nil, "swift upload", 1, 0))
        case ("snapshot", "incremental"):
            return Target(text: "≤ python-swiftclient's upload of the changed volume", relative: ("snapshot", nil, "swift upload again", 1, 0))
        case ("snapshot", "restore"): return Target(text: "≤ python-swiftclient's download", relative: ("snapshot", nil, "swift download", 1, 0))
        default: return nil
        }
    }

    /// `report` with each row's `met` decided from its figures (and the report's other rows).
    static func judged(_ report: Report) -> Report {
        var report = report
        let rows = report.rows
        for index in report.rows.indices {
            let row = rows[index]
            guard let target = target(row.bench, size: row.size.flatMap(BenchPlan.Size.init(rawValue:)), name: row.name) else { continue }
            report.rows[index].target = target.text
            report.rows[index].met = target.met(row, in: rows)
        }
        return report
    }

    /// "met", "missed" or nothing.
    static func verdict(_ row: Row) -> String {
        row.met.map { $0 ? "met" : "missed" } ?? ""
    }

    /// The commit this binary was built from: its package's git HEAD (`-dirty` with uncommitted changes), when the
    /// binary sits in its build directory.
    static func commit() -> String {
        var directory = (SelfPath.current as NSString).deletingLastPathComponent
        while directory != "/" && !directory.isEmpty {
            if FileManager.default.fileExists(atPath: directory + "/.git") {
                guard let head = try? Command.run(["git", "-C", directory, "rev-parse", "--short=12", "HEAD"]), head.status == 0 else { break }
                let dirty = (try? Command.run(["git", "-C", directory, "status", "--porcelain", "--untracked-files=no"]))?.output.isEmpty == false
                return head.output.trimmingCharacters(in: .whitespacesAndNewlines) + (dirty ? "-dirty" : "")
            }
            directory = (directory as NSString).deletingLastPathComponent
        }
        return "unknown"
    }

    /// The CPU model and memory, from /proc.
    static func machine() -> String {
        let cpu = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?.split(separator: "\n")
            .first { $0.hasPrefix("model name") }.map { $0.split(separator: ":", maxSplits: 1).last.map { $0.trimmingCharacters(in: .whitespaces) } ?? "" } ?? "?"
        let memory = (try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8))?.split(separator: "\n").first { $0.hasPrefix("MemTotal") }
            .flatMap { $0.split(separator: " ").dropFirst().first.flatMap { Double($0) } }.map { String(format: "%.0f GiB", $0 / 1_048_576) } ?? "?"
        return "\(cpu), \(memory)"
    }

    static func table(_ report: Report) -> String {
        let report = judged(report)
        var out = "commit \(report.commit); \(report.machine); \(report.cores) cores; \(report.date); median of \(report.runs)\n"
        out += "bench        size    measurement                          median s    peak MB   floor / anchor s   ratio      met     target\n"
        for row in report.rows {
            out += row.bench.padding(toLength: 13, withPad: " ", startingAt: 0) + (row.size ?? "-").padding(toLength: 8, withPad: " ", startingAt: 0)
            out += row.name.padding(toLength: max(36, row.name.count + 1), withPad: " ", startingAt: 0)
            if let error = row.error {
                out += "error: \(error.replacingOccurrences(of: "\n", with: " ").prefix(200))\n"
                continue
            }
            out += (row.medianSeconds.map { String(format: "%9.3f", $0) } ?? "        -") + "  "
            out += (row.peakRSSMB.map { String(format: "%8.0f", $0) } ?? "       -") + "   "
            out += (row.anchorSeconds.map { String(format: "%16.3f", $0) } ?? "               -") + "   "
            out += (row.ratio.map { String(format: "%6.2f×", $0) } ?? "      -") + "    " + verdict(row).padding(toLength: 8, withPad: " ", startingAt: 0)
                + (row.target ?? "") + "\n"
            if let anchor = row.anchor { out += "    vs \(anchor)\n" }
            if let detail = row.detail { out += "    \(detail)\n" }
        }
        return out
    }

    /// The report in Markdown (docs/bench/README.md): the sized benchmarks as one table with a column per
    /// size, the others as a second table with their anchors, then each row's details (the large size's and the
    /// others'). Minimum and maximum stay in the JSON.
    static func markdown(_ report: Report) -> String {
        let report = judged(report)
        func seconds(_ value: Double) -> String {
            value >= 100 ? String(format: "%.0f s", value) : value >= 1 ? String(format: "%.2f s", value)
                : value >= 0.01 ? String(format: "%.3f s", value) : String(format: "%.4f s", value)
        }
        func cell(_ text: String) -> String { text.replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: " ") }
        /// Time, memory and ratio of a row; a memory row (no time) shows its memory alone.
        func figures(_ row: Row) -> String {
            if let error = row.error { return "error: " + cell(String(error.prefix(200))) }
            var parts: [String] = []
            if let median = row.medianSeconds, median > 0 || (row.maxSeconds ?? 0) > 0 { parts.append(seconds(median)) }
            if let rss = row.peakRSSMB, rss > 0 { parts.append(String(format: "%.0f MB", rss)) }
            if let ratio = row.ratio {
                let anchor = seconds(row.anchorSeconds ?? 0)
                parts.append(row.ratioMeaning == "× faster than the anchor" ? String(format: "%.0f", ratio) + "× faster than \(anchor)"
                                                                           : String(format: "%.2f", ratio) + "\(row.ratioMeaning ?? "×") (\(anchor))")
            }
            return parts.joined(separator: ", ")
        }
        var out = "`stacklab-bench all`: commit \(report.commit), \(report.machine), \(report.cores) cores, \(report.date), median of \(report.runs) runs.\n\n"
        let sizes = ["small", "medium", "large"]
        // Sized rows by measurement (plan's rows carry their size in their name), in the order first seen.
        var keys: [String] = []
        var sized: [String: [String: Row]] = [:]
        var targets: [String: String] = [:]
        var verdicts: [String: [String]] = [:]
        for row in report.rows {
            guard let size = row.size else { continue }
            let name = row.name.hasPrefix(size + " ") ? String(row.name.dropFirst(size.count + 1)) : row.name
            let key = "\(row.bench) · \(name)"
            if sized[key] == nil { keys.append(key) }
            sized[key, default: [:]][size] = row
            if let target = row.target { targets[key] = target }
            if row.met != nil { verdicts[key, default: []].append(verdict(row)) }
        }
        if !keys.isEmpty {
            out += "| measurement | small | medium | large | target | met |\n|---|---|---|---|---|---|\n"
            for key in keys {
                out += "| \(cell(key)) | " + sizes.map { sized[key]?[$0].map(figures) ?? "" }.joined(separator: " | ")
                    + " | \(cell(targets[key] ?? "")) | \((verdicts[key] ?? []).contains("missed") ? "missed" : verdicts[key]?.first ?? "") |\n"
            }
            out += "\n"
        }
        let once = report.rows.filter { $0.size == nil }
        if !once.isEmpty {
            out += "| measurement | result | target | met |\n|---|---|---|---|\n"
            for row in once { out += "| \(cell("\(row.bench) · \(row.name)")) | \(figures(row)) | \(cell(row.target ?? "")) | \(verdict(row)) |\n" }
            out += "\n"
        }
        for row in report.rows where row.size == nil || row.size == "large" {
            let about = [row.anchor.map { "vs \($0)" }, row.detail].compactMap { $0 }.joined(separator: "; ")
            if !about.isEmpty { out += "- \(row.bench)\(row.size.map { " (\($0))" } ?? "") · \(row.name): \(about.replacingOccurrences(of: "\n", with: " "))\n" }
        }
        return out
    }
}
