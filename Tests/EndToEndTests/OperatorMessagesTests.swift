import Foundation
import Manifests
import Processes
import TestSupport
import Testing

/// What an operator reads when something is refused: a sentence that says what to do, never a runtime's dump.
@Suite struct OperatorMessagesTests {
    @Test(arguments: [
        ("ci history --junit report.xml", "Unknown option '--junit'"),
        ("ci history --approve", "Unknown option '--approve'"),
        ("ci history --pipeline deploy", "Unknown option '--pipeline'"),
        ("ci history --identity key", "Unknown option '--identity'"),
        ("ci check --change main --junit report.xml", "Unknown option '--junit'"),
        ("plan --identity /nonexistent/key", "--identity /nonexistent/key: there is no key file there"),
        ("bootstrap staging --identity /nonexistent/key", "--identity /nonexistent/key: there is no key file there"),
        ("hook install . --webhook-secret-file /nonexistent/secret", "--webhook-secret-file /nonexistent/secret: no readable, non-empty file there"),
    ])
    func anOptionThatWouldDoNothingIsRefused(command: String, says: String) throws {
        let repo = try Fixtures.bundledDeployment("messages")
        let result = try Command.run(["bash", "-c", "cd '\(repo.path)' && '\(StackLabBinary.path)' \(command) < /dev/null"])
        #expect(result.status == 64 && result.output.contains(says), "\(command): exit \(result.status): \(result.output)")
    }

    @Test func aLargeApplyOnATerminalCountsInsteadOfScrolling() throws {
        let repo = try Scratch("large-apply")
        var deployment = SyntheticDeployment(nodes: 10, instances: 300)
        deployment.nodesPerRegion = 10
        deployment.tenants = 3
        _ = try deployment.write(to: repo.path)
        try GitCLI.commitAll(in: repo.path)
        // `script` gives the apply a terminal, as an operator's shell would.
        let result = try Command.run(["script", "-qec", "cd '\(repo.path)' && '\(StackLabBinary.path)' apply --auto-approve", "/dev/null"])
        #expect(result.status == 0, "\(result.output.suffix(2000))")
        #expect(result.output.contains("applying 1 of ") && result.output.range(of: #"applying (\d|,)+ of (\d|,)+ changes · \d+ s"#, options: .regularExpression) != nil,
                "\(result.output.suffix(2000))")
        #expect(!result.output.contains("✓ create"), "no line per change above \(300) changes on a terminal: \(result.output.prefix(2000))")
        #expect(result.output.contains("Apply complete:"), "\(result.output.suffix(500))")
    }

    @Test func aMissingPlanFileIsNamedWithWhatToDo() throws {
        let repo = try Fixtures.bundledDeployment("messages")
        let result = try Command.run(["bash", "-c", "cd '\(repo.path)' && '\(StackLabBinary.path)' apply missing.json < /dev/null"])
        #expect(result.status == 1)
        #expect(result.output.contains("there is no plan file at missing.json") && result.output.contains("stacklab plan --out missing.json"), "\(result.output)")
        #expect(!result.output.contains("NSCocoaErrorDomain") && !result.output.contains("Code=260"), "\(result.output)")
    }

    @Test func aPlanFileThisBuildCannotReadIsNamedWithWhatToDo() throws {
        let repo = try Fixtures.bundledDeployment("messages")
        // A plan saved by a build whose format differed: its ring summaries lack a field this build reads.
        try #"{"changes": [], "rings": [{"address": "ring/sina/object"}]}"#.write(toFile: repo.path + "/old.json", atomically: true, encoding: .utf8)
        let result = try Command.run(["bash", "-c", "cd '\(repo.path)' && '\(StackLabBinary.path)' apply old.json < /dev/null"])
        #expect(result.status == 1)
        #expect(result.output.contains("cannot read plan old.json") && result.output.contains("stacklab plan --out old.json"), "\(result.output)")
        let json = try Command.run(["bash", "-c", "cd '\(repo.path)' && '\(StackLabBinary.path)' apply old.json --format json < /dev/null 2>/dev/null"])
        let answer = try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [String: Any]
        #expect(answer?["ok"] as? Bool == false && (answer?["hint"] as? String)?.contains("stacklab plan --out old.json") == true, "\(json.output)")
    }

    @Test func aRefusalWithoutConfirmationSaysItOnceAndNothingOfExitCodes() throws {
        let repo = try Fixtures.bundledDeployment("messages")
        for command in ["apply", "rollback sina --to HEAD"] {
            let result = try Command.run(["bash", "-c", "cd '\(repo.path)' && '\(StackLabBinary.path)' \(command) < /dev/null"])
            #expect(result.status == 1, "\(command): \(result.output.suffix(500))")
            #expect(result.output.contains("pass --auto-approve"), "\(command): \(result.output.suffix(500))")
            #expect(!result.output.contains("ExitCode("), "\(command): \(result.output.suffix(500))")
        }
    }
}
