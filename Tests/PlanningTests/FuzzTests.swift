import Foundation
import Manifests
import Planning
import TestSupport
import Testing

/// A seeded mutation fuzzer over the decoder, the validator and the planner. Inputs start from the corpus in
/// `Tests/Fixtures/fuzz/corpus` and are mutated (bytes flipped, YAML punctuation inserted, lines duplicated or
/// dropped, files spliced, anchors, aliases and nesting added, numbers pushed to their limits); each is loaded beside
/// the fixture deployment, and, when it validates, planned. A trap kills the test run: the input being tried is
/// always in `fuzz-last-input.yaml` in the temporary directory, to be added to the corpus once fixed.
///
/// `STACKLAB_FUZZ_ITERATIONS` (default 1500) and `STACKLAB_FUZZ_SEED` (default 1) set the run; CI runs the default.
@Suite struct FuzzTests {
    static let fragments: [String] = [
        ": ", "- ", "---\n", "...\n", "&a ", "*a", "!!str ", "!tag ", "{", "}", "[", "]", ", ", "? ", "|\n  ", ">\n  ", "\"", "'",
        "#", "\t", "\u{1B}[2J", "\0", "\u{FEFF}", "\r\n", "%YAML 1.1\n", "<<: *a\n", "kind: Instance\n", "kind: Node\n", "region: lab\n",
        "tenant: acme\n", "18446744073709551616", "9223372036854775807", "-1", "0", "1e400", "8000PiB", "0B", "NaN", ".inf", "~", "null",
        "10.20.0.0/0", "255.255.255.255", "qemu+ext:///system?command=/bin/true", "simulated", "../../etc/passwd", "é", "🚀",
        String(repeating: "[", count: 300), String(repeating: "a", count: 5000),
    ]

    static func mutate(_ input: [UInt8], corpus: [[UInt8]], using random: inout SeededGenerator) -> [UInt8] {
        var bytes = input
        for _ in 0..<Int.random(in: 1...4, using: &random) {
            let at = bytes.isEmpty ? 0 : Int.random(in: 0...bytes.count, using: &random)
            switch Int.random(in: 0..<8, using: &random) {
            case 0 where !bytes.isEmpty:  // flip a byte
                let index = Int.random(in: 0..<bytes.count, using: &random)
                bytes[index] ^= UInt8.random(in: 1...255, using: &random)
            case 1:  // insert YAML punctuation or a hostile value
                bytes.insert(contentsOf: Array(fragments.randomElement(using: &random)!.utf8), at: at)
            case 2 where !bytes.isEmpty:  // drop a run
                let end = min(bytes.count, at + Int.random(in: 1...64, using: &random))
                if at < end { bytes.removeSubrange(at..<end) }
            case 3:  // duplicate a line
                let lines = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
                if let line = lines.randomElement(using: &random) { bytes.insert(contentsOf: Array(line) + [UInt8(ascii: "\n")], at: at) }
            case 4:  // splice in part of another corpus file
                let other = corpus.randomElement(using: &random)!
                let start = Int.random(in: 0...other.count, using: &random)
                bytes.insert(contentsOf: other[start..<min(other.count, start + Int.random(in: 1...400, using: &random))], at: at)
            case 5 where !bytes.isEmpty:  // truncate
                bytes.removeSubrange(at..<bytes.count)
            case 6:  // replace a number with an extreme one
                if let digit = bytes[at...].firstIndex(where: { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) {
                    bytes.insert(contentsOf: Array(["99999999999999999999", "0", "4294967296", "65536"].randomElement(using: &random)!.utf8), at: digit)
                }
            default:  // repeat a chunk (many keys, many documents)
                guard !bytes.isEmpty else { continue }
                let start = Int.random(in: 0..<bytes.count, using: &random)
                let chunk = Array(bytes[start..<min(bytes.count, start + 80)])
                for _ in 0..<Int.random(in: 2...50, using: &random) { bytes.insert(contentsOf: chunk, at: at) }
            }
        }
        return bytes
    }

    @Test func decoderValidatorAndPlannerSurviveMutatedManifests() throws {
        let environment = ProcessInfo.processInfo.environment
        let iterations = environment["STACKLAB_FUZZ_ITERATIONS"].flatMap(Int.init) ?? 1500
        var random = SeededGenerator(seed: environment["STACKLAB_FUZZ_SEED"].flatMap(UInt64.init) ?? 1)
        let corpusDirectory = Fixtures.path("fuzz/corpus")
        let names = try FileManager.default.contentsOfDirectory(atPath: corpusDirectory).filter { $0.hasSuffix(".yaml") }.sorted()
        let corpus = try names.map { [UInt8](try Data(contentsOf: URL(fileURLWithPath: "\(corpusDirectory)/\($0)"))) }
        try #require(!corpus.isEmpty)

        // The fixture deployment, as the files the mutated one is loaded beside.
        let base = try Fixtures.deployment()
        var files: [SourceInput] = []
        for top in ManifestLayout.roots {
            guard let walker = FileManager.default.enumerator(atPath: base.file(top)) else { continue }
            while let relative = walker.nextObject() as? String {
                guard ManifestLayout.isManifest("\(top)/\(relative)") else { continue }
                files.append(SourceInput(path: "\(top)/\(relative)", content: .success([UInt8](try Data(contentsOf: URL(fileURLWithPath: base.file("\(top)/\(relative)")))))))
            }
        }
        let lastInput = NSTemporaryDirectory() + "/fuzz-last-input.yaml"
        var validated = 0
        for iteration in 0..<iterations {
            let input = Self.mutate(corpus.randomElement(using: &random)!, corpus: corpus, using: &random)
            try Data(input).write(to: URL(fileURLWithPath: lastInput))
            let path = Bool.random(using: &random) ? "regions/lab/fuzz.yaml" : "manifests/fuzz.yaml"
            let snapshot = SourceSnapshot(inputs: (files + [SourceInput(path: path, content: .success(input))]).sorted { $0.path < $1.path }, revision: nil)
            let result = Loader(limits: LoadLimits(parallelism: 1)).load(snapshot)
            for diagnostic in result.diagnostics {
                guard let location = diagnostic.location else { continue }
                if result.files[location.file].line(location.line) == nil {
                    let kept = NSTemporaryDirectory() + "/fuzz-failure-\(iteration).yaml"
                    try Data(input).write(to: URL(fileURLWithPath: kept))
                    Issue.record("iteration \(iteration): \(diagnostic.message) at line \(location.line), past the end of its file (input kept in \(kept))")
                }
            }
            let rendered = DiagnosticRenderer(files: result.files, colors: false).render(result.diagnostics)
            #expect(!rendered.unicodeScalars.contains { $0.value == 0x1B || $0.value == 0x07 }, "iteration \(iteration): raw control characters")
            if iteration % 10 == 0 {
                let again = Loader(limits: LoadLimits(parallelism: 1)).load(snapshot)
                #expect(again.diagnostics.map(\.message) == result.diagnostics.map(\.message), "iteration \(iteration): not deterministic")
            }
            if !result.hasErrors {
                validated += 1
                _ = Planner.plan(model: result.model, observed: [], revision: nil)
            }
        }
        #expect(validated > 0, "some mutations still validate, so the planner was exercised")
        try? FileManager.default.removeItem(atPath: lastInput)
    }
}
