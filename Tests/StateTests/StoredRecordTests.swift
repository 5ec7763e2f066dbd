import Foundation
import Manifests
import Planning
import State
import Testing

/// Records are types above the stores and text only inside SQL: what a store reads back is checked once, where it is
/// read, and rows written before Core v3 still read.
@Suite struct StoredRecordTests {
    @Test func pipelineStepsWrittenBeforeStepsCarriedTheirRegionStillReleaseIt() throws {
        let legacy = #"[{"log":"","message":"converged","name":"apply: {region: lab}","seconds":1.5,"status":"passed"},"#
            + #"{"log":"","message":"","name":"approve","seconds":0,"status":"running","startedAt":10}]"#
        let record = try PipelineRunRecord(id: 1, storedKind: "deploy", pipeline: "deploy", subject: "push", commit: "abc", verdict: 0, startedAt: 1,
                                           seconds: 0, storedSteps: legacy)
        #expect(record.kind == .deploy && record.verdict == .running)
        #expect(record.steps.map(\.region) == ["lab", nil])
        #expect(record.steps[1].startedAt == 10)
        // Written back, the region is a field of its own.
        #expect(record.storedSteps.contains(#""region":"lab""#))
    }

    @Test func aStoredValueThatDoesNotReadNamesItsTableAndColumn() {
        #expect(throws: StoredTextError.self) {
            try PipelineRunRecord(id: 1, storedKind: "nightly", pipeline: "p", subject: "s", commit: "c", verdict: 1, startedAt: 0, seconds: 0, storedSteps: "[]")
        }
        do {
            _ = try JournalEntry(run: 1, storedAddress: "instance/lab/acme/web-1", target: "node/lab/lab-1/extra", action: "create", status: "done",
                                 attempts: 1, error: nil)
            Issue.record("a target that is not one read as one")
        } catch {
            #expect(error.description.contains("journal.node") && error.description.contains("node/lab/lab-1/extra"), "\(error)")
        }
        let entry = try? JournalEntry(run: 1, storedAddress: "instance/lab/acme/web-1", target: "region/lab", action: "delete", status: "failed",
                                      attempts: 2, error: "x")
        #expect(entry?.target == .region("lab") && entry?.action == .delete && entry?.changeID.description == "instance/lab/acme/web-1@region/lab")
        #expect(RunStatus(stored: "paused-by-a-newer-build") == .interrupted)
    }
}
