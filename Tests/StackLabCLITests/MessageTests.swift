import Foundation
import Manifests
import Planning
import Reconcile
import Testing
@testable import StackLabCLI

/// What the commands say, said so that it reads right and never contradicts itself.
@Suite struct MessageTests {
    static let instance = Address(kind: .instance, region: "sina", tenant: "devops", name: "gitorious")

    @Test func aPlanWithErrorsNeverSaysNoChanges() {
        let shrink = Plan.Problem(address: Self.instance, message: "disk vda would shrink from 80GiB to 40GiB")
        let plan = Plan(revision: nil, regions: ["sina"], observed: [:], changes: [], unmanaged: [], errors: [shrink])
        let summary = PlanRenderer(colors: false).summary(plan)
        #expect(!summary.contains("No changes"), "\(summary)")
        #expect(summary.contains("The plan has 1 error (above): nothing will be applied until it is fixed."), "\(summary)")
        let clean = Plan(revision: nil, regions: ["sina"], observed: [:], changes: [], unmanaged: [], errors: [])
        #expect(PlanRenderer(colors: false).summary(clean).hasPrefix("No changes: 0 resources up to date."))
    }

    @Test func countsAgreeWithTheirNouns() {
        #expect(1.counted("change") == "1 change" && 2.counted("change") == "2 changes" && 0.counted("resource") == "0 resources")
        #expect(1.counted("entry", plural: "entries") == "1 entry" && 3.counted("entry", plural: "entries") == "3 entries")
    }

    @Test func outcomesReadAsWordsInLogs() {
        #expect("\(Applier.Outcome.done(seconds: 0.0023417))" == "done in 0.00 s")
        #expect("\(Applier.Outcome.failed("node refused", retryable: false))" == "failed (refused: not retried): node refused")
        #expect("\(Applier.Outcome.skipped(because: "its dependency failed"))" == "skipped: its dependency failed")
    }

    @Test func hostMemoryReadsInTheLargestUnitItFills() {
        #expect(ByteSize(bytes: 24_683_792 * 1024).readable == "23.5 GiB")
        #expect(ByteSize(bytes: 512 << 20).readable == "512 MiB")
        #expect(ByteSize(bytes: 800).readable == "800 B")
        #expect(ByteSize(bytes: 24_683_792 * 1024).description == "24683792KiB", "the manifest form stays exact")
    }

    @Test func theJSONAnswerFillsOkDiagnosticsAndErrorAroundWhatTheCommandPrinted() throws {
        func parse(_ text: String) throws -> [String: Any] {
            try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        }
        let empty = try parse(Answer.document(held: "", recorded: [DiagnosticRecord(error: "no such region", hint: "regions are: a")], exitCode: 1))
        #expect(empty["ok"] as? Bool == false && empty["error"] as? String == "no such region" && empty["hint"] as? String == "regions are: a")
        #expect((empty["diagnostics"] as? [[String: Any]])?.first?["severity"] as? String == "error")
        let own = try parse(Answer.document(held: "{\"ok\": false, \"changes\": [1]}\n", recorded: [], exitCode: 1))
        #expect(own["ok"] as? Bool == false && (own["changes"] as? [Int]) == [1] && own["error"] as? String != nil, "a failure always says something")
        let changes = try parse(Answer.document(held: "{\"changes\": [1]}", recorded: [], exitCode: 2))
        #expect(changes["ok"] as? Bool == true && (changes["diagnostics"] as? [Any])?.isEmpty == true, "exit 2 is an answer: changes found")
    }
}

/// A snapshot taken or restored shows its bytes on a terminal as they go.
@Suite struct TransferProgressTests {
    static let change = Change(address: Address(kind: .snapshot, region: "r", tenant: "t", name: "data@nightly"),
                               target: .node(Address(kind: .node, region: "r", name: "n1")), action: .create, reason: .scheduled,
                               operation: .setPower(domain: "x", running: true))

    @Test func theLineSaysHowMuchHowFastAndForHowLong() {
        let half = Applier.Transferred(bytes: 512 << 20, seconds: 40)
        #expect(ProgressPrinter.transfer(Self.change, half) == "  snapshot/r/t/data@nightly: 512 MiB · 12.8 MiB/s · 40 s")
        let starting = Applier.Transferred(bytes: 0, seconds: 0)
        #expect(ProgressPrinter.transfer(Self.change, starting) == "  snapshot/r/t/data@nightly: 0 B")
    }
}
