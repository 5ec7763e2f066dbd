import Foundation
import ManifestSources
import Manifests
import TestSupport
import Testing

/// Each directory under Tests/Fixtures/diagnostics/ overlays broken files on the valid base deployment;
/// its `expected.txt` holds the exact diagnostics. Regenerate with STACKLAB_UPDATE_GOLDEN=1 and review the diff.
@Suite struct GoldenDiagnosticsTests {
    static let cases: [String] = {
        let directory = Fixtures.path("diagnostics")
        return ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted()
    }()

    @Test func theCorpusCoversEveryRule() {
        #expect(Self.cases.count >= 25)
    }

    @Test func theBaseDeploymentIsValid() throws {
        let scratch = try Fixtures.deployment()
        let result = try Loader().load(DirectorySource(root: scratch.path))
        #expect(result.diagnostics.isEmpty, "\(DiagnosticRenderer(files: result.files).render(result.diagnostics))")
    }

    @Test(arguments: cases)
    func diagnostics(_ name: String) throws {
        let scratch = try Fixtures.deployment(overlay: "diagnostics/\(name)")
        let fromDirectory = try Loader().load(DirectorySource(root: scratch.path))
        try GitCLI.commitAll(in: scratch.path)
        let fromGit = try Loader().load(GitSource(repository: scratch.path, revision: "HEAD"))

        let text = DiagnosticRenderer(files: fromDirectory.files).render(fromDirectory.diagnostics)
        let gitText = DiagnosticRenderer(files: fromGit.files).render(fromGit.diagnostics)
        #expect(fromDirectory.hasErrors, "case \(name) must produce at least one error")
        #expect(text == gitText, "the working tree and the committed revision must give the same diagnostics")

        let expectedPath = Fixtures.path("diagnostics/\(name)/expected.txt")
        if ProcessInfo.processInfo.environment["STACKLAB_UPDATE_GOLDEN"] == "1" {
            try text.write(toFile: expectedPath, atomically: true, encoding: .utf8)
        }
        let expected = try String(contentsOfFile: expectedPath, encoding: .utf8)
        #expect(text == expected)
    }
}
