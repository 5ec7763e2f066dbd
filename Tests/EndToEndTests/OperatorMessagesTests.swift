import Foundation
import Manifests
import Processes
import TestSupport
import Testing

/// What an operator reads when something is refused: a sentence that says what to do, never a runtime's dump.
@Suite struct OperatorMessagesTests {
    static func deployment() throws -> Scratch {
        let repo = try Scratch("messages")
        for root in ManifestLayout.roots {
            try repo.overlay(from: (Fixtures.packageRoot as NSString).appendingPathComponent(root), into: root)
        }
        try GitCLI.commitAll(in: repo.path)
        return repo
    }

    @Test func aMissingPlanFileIsNamedWithWhatToDo() throws {
        let repo = try Self.deployment()
        let result = try Command.run(["bash", "-c", "cd '\(repo.path)' && '\(StackLabBinary.path)' apply missing.json < /dev/null"])
        #expect(result.status == 1)
        #expect(result.output.contains("there is no plan file at missing.json") && result.output.contains("stacklab plan --out missing.json"), "\(result.output)")
        #expect(!result.output.contains("NSCocoaErrorDomain") && !result.output.contains("Code=260"), "\(result.output)")
    }

    @Test func aRefusalWithoutConfirmationSaysItOnceAndNothingOfExitCodes() throws {
        let repo = try Self.deployment()
        for command in ["apply", "rollback sina --to HEAD"] {
            let result = try Command.run(["bash", "-c", "cd '\(repo.path)' && '\(StackLabBinary.path)' \(command) < /dev/null"])
            #expect(result.status == 1, "\(command): \(result.output.suffix(500))")
            #expect(result.output.contains("pass --auto-approve"), "\(command): \(result.output.suffix(500))")
            #expect(!result.output.contains("ExitCode("), "\(command): \(result.output.suffix(500))")
        }
    }
}
