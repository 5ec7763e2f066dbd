import Foundation
import Manifests
import StackLabCLI
import Testing
import TestSupport

/// The generated reference and the shell blocks of the docs.
@Suite struct ReferenceDocsTests {
    static let root = Fixtures.packageRoot

    /// `docs/reference/` is what this build generates (`stacklab docs --out docs/reference` writes it).
    @Test func theCheckedInReferenceIsWhatThisBuildGenerates() throws {
        for file in try ReferenceDocs.files() {
            let path = "\(Self.root)/docs/reference/\(file.name)"
            let checkedIn = try? String(contentsOfFile: path, encoding: .utf8)
            #expect(checkedIn == file.text, "\(path) is stale: run 'stacklab docs --out docs/reference'")
        }
    }

    /// Every field a decoder accepts has a line in the kinds table, and the table names no field the decoders refuse.
    @Test func theKindsTableDocumentsEveryFieldTheDecodersAccept() {
        #expect(KindReference.fieldsWithoutDocs.isEmpty, "\(KindReference.fieldsWithoutDocs)")
        #expect(KindReference.all.map(\.kind) == Kind.manifestKinds)
    }

    /// Every `sh` block of the README and the guides says how it is proven: `run by` a test that exists (it runs the
    /// block itself, or the same flow against loopback components), or `needs real hosts`.
    @Test func everyShellBlockIsRunByATestOrMarkedAsNeedingRealHosts() throws {
        let guides = try FileManager.default.contentsOfDirectory(atPath: "\(Self.root)/docs/guides").filter { $0.hasSuffix(".md") }.map { "docs/guides/\($0)" }
        let tests = try Self.testNames()
        var blocks = 0
        for file in ["README.md"] + guides.sorted() {
            let lines = try String(contentsOfFile: "\(Self.root)/\(file)", encoding: .utf8).components(separatedBy: "\n")
            for (index, line) in lines.enumerated() where line == "```sh" {
                blocks += 1
                let marker = index > 0 ? lines[index - 1] : ""
                if marker.hasPrefix("<!-- shell: needs real hosts") { continue }
                guard marker.hasPrefix("<!-- shell: run by "), let name = marker.dropFirst("<!-- shell: run by ".count).split(separator: " ").first else {
                    Issue.record("\(file):\(index + 1): a shell block without '<!-- shell: run by TEST -->' or '<!-- shell: needs real hosts -->' above it")
                    continue
                }
                #expect(tests.contains(String(name)) || name == ".ci/run", "\(file):\(index + 1): no test named \(name)")
            }
        }
        #expect(blocks >= 5)
    }

    /// `Suite.test` for every `@Test func` under Tests/.
    static func testNames() throws -> Set<String> {
        var names = Set<String>()
        let enumerator = FileManager.default.enumerator(atPath: "\(root)/Tests")
        while let path = enumerator?.nextObject() as? String {
            guard path.hasSuffix(".swift"), let text = try? String(contentsOfFile: "\(root)/Tests/\(path)", encoding: .utf8) else { continue }
            var suite = ""
            for line in text.components(separatedBy: "\n") {
                if let range = line.range(of: #"struct [A-Za-z]+"#, options: .regularExpression), line.contains("@Suite") || line.hasPrefix("struct ") {
                    suite = String(line[range].dropFirst("struct ".count))
                }
                if let range = line.range(of: #"@Test(\(.*\))? func [A-Za-z]+"#, options: .regularExpression), let name = line[range].components(separatedBy: " func ").last {
                    names.insert(suite + "." + name)
                }
            }
        }
        return names
    }
}
