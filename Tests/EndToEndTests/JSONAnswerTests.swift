import Foundation
import Manifests
import Processes
import TestSupport
import Testing

/// With `--format json`, a command prints one JSON document on standard output, failures included, and `ok` says
/// how it went (a lookup that finds nothing is not ok).
@Suite struct JSONAnswerTests {
    static func answer(_ command: String, in directory: String) throws -> (status: Int32, document: [String: Any]?, stdout: String) {
        let out = NSTemporaryDirectory() + "/stacklab-json-\(UUID().uuidString)"
        defer { unlink(out) }
        let result = try Command.run(["bash", "-c", "cd '\(directory)' && '\(StackLabBinary.path)' \(command) > '\(out)'"])
        let stdout = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
        let document = (try? JSONSerialization.jsonObject(with: Data(stdout.utf8))) as? [String: Any]
        return (result.status, document, stdout)
    }

    @Test(arguments: [
        ("validate --rev nosuch --format json", false, "nosuch"),
        ("plan --rev nosuch..main --format json", false, "nosuch"),
        ("show instance nosuch --format json", false, "no resource matches"),
        ("plan --format json", true, ""),
    ])
    func everyAnswerIsOneDocumentWithOk(command: String, ok: Bool, mentions: String) throws {
        let repo = try Fixtures.bundledDeployment("json")
        let answer = try Self.answer(command, in: repo.path)
        let document = try #require(answer.document, "\(command): stdout is not one JSON object: \(answer.stdout.prefix(300))")
        #expect(document["ok"] as? Bool == ok, "\(command): \(answer.stdout.prefix(300))")
        #expect(ok ? answer.status != 1 : answer.status == 1, "\(command) exited \(answer.status)")
        if !mentions.isEmpty { #expect((document["error"] as? String)?.contains(mentions) == true, "\(command): \(answer.stdout.prefix(300))") }
    }

    @Test func outsideARepositoryTheFailureIsJSONToo() throws {
        let empty = try Scratch("not-a-repo")
        let answer = try Self.answer("validate --format json", in: empty.path)
        #expect(answer.status == 1)
        #expect(answer.document?["ok"] as? Bool == false && (answer.document?["error"] as? String)?.contains("not a StackLab manifests repository") == true,
                "\(answer.stdout)")
    }
}
