import Foundation
import Manifests
import Processes
import Testing
import TestSupport

/// The README's five-minute tour, line by line, as a newcomer runs it: in a clone of the bundled deployment (two
/// commits, so `--rev HEAD~1` exists), state under `./.stacklab`, every node simulated.
@Suite struct ReadmeTourTests {
    @Test func theFiveMinuteTourRunsOnTheBundledDeployment() throws {
        let readme = try String(contentsOfFile: "\(Fixtures.packageRoot)/README.md", encoding: .utf8).components(separatedBy: "\n")
        let start = try #require(readme.firstIndex { $0 == "## A five-minute tour" })
        let open = try #require(readme[start...].firstIndex { $0 == "```sh" })
        let close = try #require(readme[(open + 1)...].firstIndex { $0 == "```" })
        let commands = readme[(open + 1)..<close].filter { $0.hasPrefix("stacklab ") }.map { line in
            line.range(of: "   #").map { String(line[..<$0.lowerBound]) } ?? line.range(of: " # ").map { String(line[..<$0.lowerBound]) } ?? line
        }
        #expect(commands.count >= 20, "\(commands)")

        let repo = try Scratch("tour")
        for root in ManifestLayout.roots {
            try repo.overlay(from: (Fixtures.packageRoot as NSString).appendingPathComponent(root), into: root)
        }
        try GitCLI.commitAll(in: repo.path)
        let first = try String(contentsOfFile: repo.file("manifests/flavors.yaml"), encoding: .utf8)
        try repo.write("manifests/flavors.yaml", first + "# a second commit\n")
        try GitCLI.commitAll(in: repo.path)
        for command in commands {
            // A server runs until stopped: the tour shows how it starts, the metadata tests run it.
            if command.contains("metadata serve") { continue }
            let result = try Command.run(["bash", "-c", "cd '\(repo.path)' && stacklab() { '\(StackLabBinary.path)' \"$@\"; } && \(command)"])
            // 2 is "there are changes" (plan, drift); anything else is a failure.
            #expect(result.status == 0 || result.status == 2, "\(command) exited \(result.status): \(result.output.suffix(1500))")
        }
        let again = try Command.run(["bash", "-c", "cd '\(repo.path)' && '\(StackLabBinary.path)' plan"])
        #expect(again.status == 0 && again.output.contains("No changes"), "after the tour's apply: \(again.output.suffix(800))")
    }
}
