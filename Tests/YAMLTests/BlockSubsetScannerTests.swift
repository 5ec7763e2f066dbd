import Foundation
import TestSupport
import Testing
@testable import YAML

/// The block-style scanner must give exactly libyaml's events (kinds, marks, values, styles) for every input it
/// takes, and decline everything else. libyaml is the oracle: every YAML file of the repository, hand-written edge
/// cases, and tens of thousands of seeded mutations of them are parsed both ways.
@Suite struct BlockSubsetScannerTests {
    /// libyaml's events, or nil when libyaml rejects the input.
    private static func libyaml(_ bytes: [UInt8]) -> [Event]? {
        let parser = EventParser(bytes: bytes, libyamlOnly: true)
        var events: [Event] = []
        while true {
            guard let event = try? parser.next() else { return nil }
            events.append(event)
            if event.kind == .streamEnd { return events }
        }
    }

    private static func scanned(_ bytes: [UInt8]) -> [Event]? {
        bytes.withUnsafeBufferPointer { BlockSubsetScanner.events(in: $0) }
    }

    private static func describe(_ event: Event) -> String {
        "\(event.kind) \(event.mark.line):\(event.mark.column) \(event.style) \(String(reflecting: event.value)) \(event.anchor ?? "-") \(event.tag ?? "-")"
    }

    /// nil when the scanner declined or agrees with libyaml; otherwise what differs.
    private static func disagreement(_ bytes: [UInt8]) -> String? {
        guard let fast = scanned(bytes) else { return nil }
        guard let oracle = libyaml(bytes) else {
            return "the scanner took input libyaml rejects: \(String(reflecting: String(decoding: bytes, as: UTF8.self)))"
        }
        let a = fast.map(describe), b = oracle.map(describe)
        guard a != b else { return nil }
        let at = (0..<min(a.count, b.count)).first { a[$0] != b[$0] } ?? min(a.count, b.count)
        return """
            events differ at \(at) for \(String(reflecting: String(decoding: bytes, as: UTF8.self))):
              scanner: \(at < a.count ? a[at] : "(end)")
              libyaml: \(at < b.count ? b[at] : "(end)")
            """
    }

    private static var repositoryRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// Every YAML file under the repository's deployment, tests and docs.
    private static func corpus() throws -> [(path: String, bytes: [UInt8])] {
        var files: [(String, [UInt8])] = []
        for top in ["manifests", "regions", "ci", "Tests/Fixtures", "docs", "examples"] {
            let base = repositoryRoot.appendingPathComponent(top)
            guard let walker = FileManager.default.enumerator(at: base, includingPropertiesForKeys: nil) else { continue }
            for case let url as URL in walker where ["yaml", "yml"].contains(url.pathExtension) {
                files.append((url.path, Array(try Data(contentsOf: url))))
            }
        }
        return files.sorted { $0.0 < $1.0 }
    }

    private static let cases: [String] = [
        "", "\n", "# only a comment\n", "a: b", "a: b\n", "a: b\n\n\n", "a: b\n  # indented comment\nc: d\n",
        "---\na: 1\n", "--- # start\na: 1\n---\nb: 2\n", "a: 1\n---\nb: 2\n", "---\n---\na: 1\n", "a: 1\n---\n",
        "a:\n  b: c\n  d:\n    e: f\ng: h\n", "a:\n- 1\n- 2\nb: 3\n", "a:\n  - 1\n  -\n  - x: y\n    z: w\n  - - q\n",
        "- a\n- b: c\n  d: e\n-\n  f: g\n- \n", "a: [x, y , \"z\", 'w']\n", "a: []\nb: {}\n", "a: [ ]\n", "a: [x,]\n",
        "a: \"esc \\n \\t \\\" \\\\ \\/ \\x41 \\u00e9 \\U0001F600 \\N \\_ \\L \\P \\0 \\e \\ \"\n", "a: 'it''s'\n",
        "a: b # comment\nc: d#not\n", "a: b   \n", "a: x:y\n", "a: x: y\n", "a: x:\n", "url: http://h:80/p?q=1&r=2\n",
        "a: b\n c\n", "a: b\n\n  c\n", "a:\n  text\n", "a: &x 1\nb: *x\n", "a: !t 1\n", "a: |\n  x\n", "a: >\n  x\n",
        "? a\n: b\n", "a : b\n", "\"a\": b\n", "a: 'x\n  y'\n", "a: \"x\\\n  y\"\n", "a: [x,\n  y]\n", "a: {b: c}\n",
        "%YAML 1.1\n---\na: 1\n", "a: 1\n...\n", "  a: 1\n  b: 2\n", "  a: 1\nb: 2\n", "a:\n  b: 1\n c: 2\n",
        "- a\nb: c\n", "a: 1\n- b\n", "a: -1\n", "a: - b\n", "a: ,b\n", "a: @b\n", "a: `b\n", "a: %b\n",
        "a: b]\n", "a: b,c\n", "a: \"\\q\"\n", "a: \"\\uD800\"\n", "a: \"x\" y\n", "a: [x] y\n", "a: [x]#c\n",
        "a: b\na: c\n", "a:b: c\n", "a:\n-\n", "- a: 1\n  - b\n", "- a: 1\n   b: 2\n", "-\n-\n", "- # c\n  a: 1\n",
        "a:\n  - b:\n    - c\n", "a:\n    - 1\n  - 2\n", "k: \"\"\n", "k: ''\n", "k: ~\nl: null\n", "a: 'x' # c\n",
        "a: [\"x\", 'y''z', w v]\n", "a: [x y]\n", "a: [x: y]\n", "a: [[x]]\n", "a: x\r\n", "a:\tb\n", "a: \u{e9}\n",
        "---a\n", "--- a: 1\n", "----\n", "a: b\n---", "---\n# only comments\n", "- - - x\n", "a:\n  b:\n  c:\n",
        "a: |\n  x\n  # not a comment\n\n  y\nb: 1\n", "a: |-\n  x\n\n", "a: |\n  x\n   \n  y\n", "- |\n  x\n- y\n",
        "a: |\n\n  x\n", "a: |+\n  x\n", "a: |2\n   x\n", "a: | # c\n  x\n", "a: |\nb: 1\n", "a: |\n x\n  y\n z\n",
    ]

    @Test func itsEventsAreLibyamlsForEveryRepositoryFileAndEdgeCase() throws {
        var problems: [String] = []
        var taken = 0
        var inputs = try Self.corpus().map(\.bytes)
        inputs += Self.cases.map { Array($0.utf8) }
        for bytes in inputs {
            if let problem = Self.disagreement(bytes) { problems.append(problem) }
            if Self.scanned(bytes) != nil { taken += 1 }
        }
        #expect(problems.isEmpty, "\(problems.count) disagreements; first: \(problems.first ?? "")")
        // It must actually take the ordinary files, or this test proves nothing.
        #expect(taken > inputs.count / 2, "the scanner took only \(taken) of \(inputs.count) inputs")
    }

    @Test func theBundledDeploymentIsScannedWithoutLibyaml() throws {
        let declined = try Self.corpus().filter { file in
            ["/manifests/", "/regions/"].contains { file.path.contains(Self.repositoryRoot.path + $0) } && Self.scanned(file.bytes) == nil
        }
        #expect(declined.isEmpty, "declined: \(declined.map(\.path))")
    }

    /// Seeded mutations: insertions of YAML's significant characters, deletions, re-indented and repeated lines.
    @Test func mutationsAreTakenOnlyWhenLibyamlAgrees() throws {
        var random = SeededGenerator(seed: 0x5741_434B_4C41_4221)
        let pieces = [" ", "  ", "\n", "-", "- ", ":", ": ", "#", " #", "'", "\"", "[", "]", ",", "{", "}", "a", "1",
                      "---\n", "...\n", "\\", "|", ">", "&a ", "*a", "!", "?", "%", "@", "\\n", "\\u00", "''", "~", "\t"]
        let seeds = try Self.corpus().map(\.bytes).filter { $0.count < 4_000 } + Self.cases.map { Array($0.utf8) }
        var problems: [String] = []
        var taken = 0
        var tried = 0
        for seed in seeds where !seed.isEmpty {
            for _ in 0..<150 {
                var bytes = seed
                for _ in 0..<(1 + Int(random.next() % 3)) {
                    let at = Int(random.next() % UInt64(bytes.count + 1))
                    switch random.next() % 5 {
                    case 0, 1:
                        bytes.insert(contentsOf: Array(pieces[Int(random.next() % UInt64(pieces.count))].utf8), at: at)
                    case 2:
                        if at < bytes.count { bytes.remove(at: at) }
                    case 3:
                        // Indent or dedent the line holding `at`.
                        let lineStart = bytes[..<min(at, bytes.count)].lastIndex(of: 0x0A).map { $0 + 1 } ?? 0
                        if random.next() % 2 == 0 {
                            bytes.insert(contentsOf: [0x20, 0x20], at: lineStart)
                        } else if lineStart < bytes.count, bytes[lineStart] == 0x20 {
                            bytes.remove(at: lineStart)
                        }
                    default:
                        // Repeat the line holding `at`.
                        let lineStart = bytes[..<min(at, bytes.count)].lastIndex(of: 0x0A).map { $0 + 1 } ?? 0
                        let lineEnd = bytes[lineStart...].firstIndex(of: 0x0A).map { $0 + 1 } ?? bytes.count
                        bytes.insert(contentsOf: Array(bytes[lineStart..<lineEnd]) + (lineEnd == bytes.count ? [0x0A] : []), at: lineEnd)
                    }
                }
                tried += 1
                if let problem = Self.disagreement(bytes) {
                    problems.append(problem)
                    if problems.count >= 5 { break }
                }
                if Self.scanned(bytes) != nil { taken += 1 }
            }
            if problems.count >= 5 { break }
        }
        #expect(problems.isEmpty, "\(problems.count) disagreements in \(tried) mutations:\n\(problems.joined(separator: "\n"))")
        #expect(taken > tried / 10, "the scanner took only \(taken) of \(tried) mutations")
    }
}
