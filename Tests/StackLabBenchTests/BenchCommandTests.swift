import Foundation
import Processes
import TestSupport
import Testing
@testable import StackLabBench

/// `stacklab-bench`: its command line, and a saved report printed as the README's table.
@Suite struct BenchCommandTests {
    @Test func theCommandLineParsesEveryDocumentedForm() throws {
        for arguments in [["manifests", "--runs", "1", "--nodes", "300", "--instances", "3000"], ["rings", "--workload", "W3"],
                          ["plan", "--size", "large", "--apply-large"], ["apply", "--runs", "1"],
                          ["incremental", "--size", "medium", "--runs", "2", "--dir", "/tmp/x"], ["incremental", "--size", "large", "--anchor", "medium"],
                          ["floor", "--threads", "2"],
                          ["all", "--from", "/tmp/report.json", "--format", "markdown"], ["serve", "--cache-regions", "0"]] {
            _ = try StackLabBench.parseAsRoot(arguments)
        }
        #expect(throws: (any Error).self) { try StackLabBench.parseAsRoot(["plan", "--size", "huge"]) }
    }

    /// A figure held to another size's is judged against the one measured in lockstep with it when there is one.
    @Test func aLockstepAnchorDecidesARelativeTarget() throws {
        func judged(_ anchor: Double?) throws -> Bool? {
            let rows = """
                {"bench": "incremental", "size": "medium", "name": "medium one-file commit", "medianSeconds": 0.015, "peakRSSMB": 170},
                {"bench": "incremental", "size": "large", "name": "large one-file commit", "medianSeconds": 0.028, "peakRSSMB": 390}
                """ + (anchor.map { ", {\"bench\": \"incremental\", \"size\": \"large\", \"name\": \"medium one-file commit (anchor)\", \"medianSeconds\": \($0)}" } ?? "")
            let json = "{\"commit\": \"abc\", \"cores\": 2, \"date\": \"d\", \"machine\": \"m\", \"runs\": 3, \"rows\": [\(rows)]}"
            let report = BenchAll.judged(try JSONDecoder().decode(BenchAll.Report.self, from: Data(json.utf8)))
            return report.rows.first { $0.name == "large one-file commit" }?.met
        }
        #expect(try judged(nil) == false, "0.028 s against the medium run's 0.015 s: more than 1.5×")
        #expect(try judged(0.020) == true, "0.028 s against 0.020 s measured in lockstep")
        #expect(try judged(0.018) == false, "0.028 s against 0.018 s: more than 1.5×")
    }

    @Test func theHelpListsEveryBenchmark() throws {
        let help = StackLabBench.helpMessage()
        for command in StackLabBench.configuration.subcommands {
            #expect(help.contains("  \(command._commandName) "), "\(command._commandName) is missing from --help")
        }
        // No hand-written list beside the parser's own, which would fall behind it.
        #expect(help.components(separatedBy: "  plan ").count == 2, "\(help)")
    }

    @Test func aSavedBenchReportPrintsAsTheREADMEsTable() throws {
        let json = """
            {"commit": "abc123", "cores": 2, "date": "2026-12-03T12:00:00Z", "machine": "Some CPU, 24 GiB", "runs": 3, "rows": [
             {"bench": "plan", "size": "small", "name": "small validate", "medianSeconds": 0.048, "minSeconds": 0.04, "maxSeconds": 0.05, "peakRSSMB": 44.3},
             {"bench": "plan", "size": "large", "name": "large validate", "medianSeconds": 1.571, "minSeconds": 1.4, "maxSeconds": 1.82, "peakRSSMB": 195.5},
             {"bench": "manifests", "size": "large", "name": "validate", "medianSeconds": 1.6, "minSeconds": 1.4, "maxSeconds": 1.82,
              "peakRSSMB": 195.5, "anchor": "floor: libgit2 + libyaml", "anchorSeconds": 0.64, "ratio": 2.5, "ratioMeaning": "× the floor",
              "target": "≤ 1.5× the floor"},
             {"bench": "serve", "size": "large", "name": "service resident memory", "medianSeconds": 0, "minSeconds": 0, "maxSeconds": 0, "peakRSSMB": 436.8},
             {"bench": "rings", "name": "W1", "medianSeconds": 0.000747, "detail": "balance 0.78 %", "anchorSeconds": 0.068, "ratio": 91.0,
              "ratioMeaning": "× faster than the anchor"},
             {"bench": "rings", "name": "W3", "medianSeconds": 0.2, "anchorSeconds": 32, "ratio": 160, "ratioMeaning": "× faster than the anchor"},
             {"bench": "rings", "name": "W4", "medianSeconds": 0.05, "moved": 23410, "minimum": 23406},
             {"bench": "incremental", "size": "medium", "name": "medium one-file commit", "medianSeconds": 0.015, "peakRSSMB": 170},
             {"bench": "incremental", "size": "large", "name": "large one-file commit", "medianSeconds": 0.028, "peakRSSMB": 390},
             {"bench": "snapshot", "name": "-", "error": "exited 64: a | b\\nc"}]}
            """
        let report = try JSONDecoder().decode(BenchAll.Report.self, from: Data(json.utf8))
        let lines = BenchAll.markdown(report).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines[0] == "`stacklab-bench all`: commit abc123, Some CPU, 24 GiB, 2 cores, 2026-12-03T12:00:00Z, median of 3 runs.")
        #expect(lines.contains("| plan · validate | 0.048 s, 44 MB |  | 1.57 s, 196 MB |  |  |"), "a column per size, the size left out of the name")
        // Each target is judged from the figures, whatever the saved report said: met, missed, or nothing to decide.
        #expect(lines.contains("| manifests · validate |  |  | 1.60 s, 196 MB, 2.50× the floor (0.640 s) | ≤ 1.5× the floor | missed |"))
        #expect(lines.contains("| serve · service resident memory |  |  | 437 MB | ≤ 400 MB | missed |"), "a memory row shows no time")
        #expect(lines.contains("| rings · W1 | 0.0007 s, 91× faster than 0.068 s |  |  |"))
        #expect(lines.contains("| rings · W3 | 0.200 s, 160× faster than 32.00 s | ≥ 150× Swift, balance and dispersion equal | met |"))
        #expect(lines.contains("| rings · W4 | 0.050 s | moves ≤ the minimum | missed |"), "23,410 moved where 23,406 had to")
        // Held to its own limits and to the medium size's time: 0.028 s ≤ 0.03 s, but more than 1.5 × 0.015 s.
        #expect(lines.contains("| incremental · one-file commit |  | 0.015 s, 170 MB | 0.028 s, 390 MB | ≤ 0.03 s, ≤ 400 MB; ≤ 1.5× medium | missed |"))
        #expect(lines.contains("| snapshot · - | error: exited 64: a \\| b c |  |  |"), "a pipe and a newline kept out of the table's cells")
        #expect(lines.contains("- manifests (large) · validate: vs floor: libgit2 + libyaml"))
        #expect(lines.contains("- rings · W1: balance 0.78 %"))
    }
}

/// `stacklab-bench` as built: a benchmark that runs `stacklab` and itself (the floor) end to end, at a tiny size.
@Suite struct BenchRunTests {
    @Test func theManifestsBenchmarkRunsStacklabAndItsOwnFloor() throws {
        let bench = ((StackLabBinary.path as NSString).deletingLastPathComponent as NSString).appendingPathComponent("stacklab-bench")
        let result = try Command.run([bench, "manifests", "--runs", "1", "--nodes", "30", "--instances", "300", "--format", "json"])
        #expect(result.status == 0, "\(result.output.suffix(1500))")
        #expect(result.output.contains("\"floor-1\"") && result.output.contains("\"validate\""), "\(result.output.suffix(1500))")
        #expect(!result.output.contains("stacklab-bench: validate, run"), "no progress lines off a terminal")
    }

    @Test func theMonitoringBenchmarkReadsEveryGuestBesideItsFloor() throws {
        let bench = ((StackLabBinary.path as NSString).deletingLastPathComponent as NSString).appendingPathComponent("stacklab-bench")
        let result = try Command.run([bench, "monitoring", "--runs", "1", "--nodes", "4", "--instances", "40", "--format", "json"])
        #expect(result.status == 0, "\(result.output.suffix(1500))")
        for row in ["\"collection\"", "\"libvirt floor\"", "\"exposition\"", "\"ledger write\"", "\"ledger again\""] {
            #expect(result.output.contains(row), "\(row): \(result.output.suffix(1500))")
        }
        #expect(result.output.contains("40 guests read") && result.output.contains("160 counters, 160 of them new"), "\(result.output.suffix(1500))")
    }

    @Test func onATerminalEachRunIsAnnouncedAsItGoes() throws {
        let bench = ((StackLabBinary.path as NSString).deletingLastPathComponent as NSString).appendingPathComponent("stacklab-bench")
        // `script` gives the benchmark a terminal, as an operator's shell would.
        let result = try Command.run(["script", "-qec", "'\(bench)' manifests --runs 2 --nodes 30 --instances 300", "/dev/null"])
        #expect(result.status == 0, "\(result.output.suffix(1500))")
        #expect(result.output.contains("stacklab-bench: validate, run 1 of 2…") && result.output.contains("stacklab-bench: validate, run 2 of 2…"),
                "\(result.output.prefix(1500))")
    }
}
