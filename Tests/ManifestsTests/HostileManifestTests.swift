import Foundation
import ManifestSources
import Manifests
import TestSupport
import Testing

/// Manifests written by an attacker (a pull request the CI check plans) or by a bad day: each is refused at validate
/// time with its location, and never reaches a driver, the terminal or the planner's arithmetic.
@Suite struct HostileManifestTests {
    /// Loads the fixture deployment with `path` replaced by (or added as) `text`.
    private func load(_ path: String, _ text: String, limits: LoadLimits = LoadLimits()) throws -> (LoadResult, [String]) {
        let scratch = try Fixtures.deployment()
        try scratch.write(path, text)
        let result = try Loader(limits: limits).load(DirectorySource(root: scratch.path))
        let messages = result.diagnostics.map { d in d.location.map { "\(result.files.describe($0)): \(d.message)" } ?? d.message }
        return (result, messages)
    }

    private func node(_ name: String, libvirt: String, extra: String = "") -> String {
        """
        kind: Node
        name: \(name)
        spec:
          address: 172.16.20.9
          libvirt: "\(libvirt)"
          roles: [compute]
          cpus: 4
          memory: 8GiB
        \(extra)
        """
    }

    @Test func onlySimulatedAndQemuOverSSHAreAcceptedAsLibvirtURIs() {
        for accepted in ["simulated", "qemu+ssh://root@10.1.0.11/system", "qemu+ssh://10.1.0.11:2222/system",
                         "qemu+ssh://stack-lab@node-1.example.org/system", "qemu+libssh2://root@[fd00::1]:22/system"] {
            #expect(LibvirtURI(parsing: accepted)?.description == accepted, "\(accepted)")
        }
        for refused in ["qemu+ext:///system?command=/tmp/prog", "test:///etc/shadow", "test:///default", "qemu:///system",
                        "qemu+unix:///system?socket=/run/x", "qemu+tcp://10.0.0.1/system", "qemu+tls://10.0.0.1/system",
                        "qemu+ssh://root@10.0.0.1/system?command=/tmp/prog", "qemu+ssh://root@10.0.0.1/system?netcat=/tmp/nc",
                        "qemu+ssh://root@10.0.0.1/system?keyfile=/root/.ssh/id", "qemu+ssh://root@10.0.0.1/session",
                        "qemu+ssh://-oProxyCommand=x/system", "qemu+ssh://root@10.0.0.1:0/system", "qemu+ssh://root@10.0.0.1:99999/system",
                        "qemu+ssh://ro ot@10.0.0.1/system", "qemu+ssh:///system", "xen+ssh://10.0.0.1/system", "simulated "] {
            #expect(LibvirtURI(parsing: refused) == nil, "\(refused)")
        }
    }

    @Test func aNodeWhoseURIWouldRunAProgramDoesNotValidate() throws {
        let (result, messages) = try load("regions/lab/evil.yaml", node("evil", libvirt: "qemu+ext:///system?command=/tmp/prog"))
        #expect(result.hasErrors)
        #expect(messages.contains { $0.hasPrefix("regions/lab/evil.yaml:5:12:") && $0.contains("qemu+ssh://") }, "\(messages)")
        let (fileRead, _) = try load("regions/lab/evil.yaml", node("evil", libvirt: "test:///etc/passwd"))
        #expect(fileRead.hasErrors)
    }

    // MARK: Arithmetic and budgets

    @Test func hugeSizesSaturateInsteadOfTrapping() throws {
        var nodes = ""
        for n in 1...3 {
            nodes += "---\nkind: Node\nname: big-\(n)\nspec: {address: 172.16.20.\(20 + n), libvirt: simulated, roles: [compute, volume], cpus: 100000, memory: 8000PiB, instanceStorage: 8000PiB, disks: [{name: sdb, size: 8000PiB}]}\n"
        }
        let flavor = "---\nkind: Flavor\nname: whale\nspec: {vcpus: 4, ram: 4PiB, disk: 4PiB, ephemeral: 15000PiB}\n"
        let instances = (1...3).map { "---\nkind: Instance\nname: whale-\($0)\nregion: lab\ntenant: acme\nspec: {flavor: whale, image: ubuntu, network: private}\n" }.joined()
        let (result, messages) = try load("regions/lab/big.yaml", nodes + flavor + instances)
        // It ran to the end (no trap); the demand past 16 EiB is reported as more than the nodes hold.
        #expect(messages.contains { $0.contains("instance disks") }, "\(messages)")
        #expect(result.model.nodes.count >= 6)
    }

    @Test func aMappingWithManyKeysIsCheckedInLinearTime() throws {
        var text = "kind: Flavor\nname: wide\nspec:\n  vcpus: 1\n  ram: 1GiB\n  disk: 1GiB\n"
        for n in 0..<160_000 { text += "  k\(n): 1\n" }
        text += "  k7: 2\n"
        let (result, messages) = try load("manifests/wide.yaml", text, limits: LoadLimits(maxFileBytes: 64 << 20))
        #expect(result.hasErrors)
        #expect(messages.contains { $0.contains("duplicate key 'k7'") })
        // Rendered as `validate` prints them: each diagnostic's line is found from one index of the file (before, each
        // was looked up from the file's start: 40,000 diagnostics in one file took 15 s, 160,000 over a minute).
        let rendered = DiagnosticRenderer(files: result.files).render(result.diagnostics)
        let errors = result.diagnostics.count { $0.severity == .error }
        let warnings = result.diagnostics.count - errors
        #expect(rendered.hasSuffix("\(errors) errors, \(warnings) warning\(warnings == 1 ? "" : "s")\n"), "\(rendered.suffix(300))")
        let duplicate = try #require(rendered.range(of: "duplicate key 'k7'"))
        #expect(rendered[duplicate.upperBound...].prefix(300).contains("|   k7: 2\n"), "\(rendered[duplicate.lowerBound...].prefix(300))")
    }

    /// A decoded file is kept deflated by a long-running loader: it reads back the same bytes and lines.
    @Test func aCompactedFileReadsBackItsBytesAndLines() {
        var random = SeededGenerator(seed: 19)
        let pieces = ["kind: Instance\n", "  name: vm-1\n", "\r\n", "é→ü", "\u{2028}", "  flavor: m1.small\r", "\t- x\n"]
        let text = (0..<400).map { _ in pieces[Int(random.next() % UInt64(pieces.count))] }.joined()
        let file = SourceFile(path: "manifests/tenants/t0/instances.yaml", bytes: Array(text.utf8), digest: "abc")
        let compacted = file.compacted()
        #expect(compacted.bytes == file.bytes && compacted.size == file.size && compacted.digest == "abc")
        let plainLines = file.lines(), compactedLines = compacted.lines()
        #expect(plainLines.ranges == compactedLines.ranges)
        for line in Int32(0)...Int32(plainLines.ranges.count + 1) {
            #expect(compactedLines.line(line) == plainLines.line(line) && compacted.line(line) == file.line(line), "line \(line)")
        }
        var files = SourceFiles()
        let plainID = files.add(file)
        let compactedID = files.add(compacted)
        let renderer = DiagnosticRenderer(files: files)
        let render = { (id: FileID) in renderer.render(.error("bad", at: SourceLocation(file: id, line: 7, column: 3), hint: "fix it")) }
        #expect(render(compactedID) == render(plainID) && render(plainID).contains(" 7 | "), "\(render(plainID))")
        var grown = compacted
        grown.bytes += Array("more\n".utf8)
        #expect(grown.bytes == file.bytes + Array("more\n".utf8) && grown.size == file.size + 5)
    }

    @Test(arguments: ["a\nb\r\nc\rd\u{85}e\u{2028}f\u{2029}g", "", "\n", "one", "x\n\n"])
    func everyLineIsFoundAsAScanFromTheStartFindsIt(_ text: String) {
        let file = SourceFile(path: "f.yaml", bytes: Array(text.utf8))
        let lines = file.lines()
        for line in Int32(0)...Int32(lines.ranges.count + 1) {
            #expect(lines.line(line) == file.line(line), "line \(line) of \(text.debugDescription)")
            #expect(file.compacted().line(line) == file.line(line))
        }
    }

    @Test func nestedAnchorsAndDeepNestingAreRefusedCheaply() throws {
        var nested = "kind: Flavor\nname: anchors\nspec: "
        for n in 0..<3000 { nested += "&n\(n) [" }
        nested += String(repeating: "]", count: 3000) + "\n"
        let (bomb, bombMessages) = try load("manifests/anchors.yaml", nested)
        #expect(bomb.hasErrors)
        #expect(bombMessages.contains { $0.contains("deeper than 256") || $0.contains("anchors hold more than") }, "\(bombMessages)")

        let deep = "kind: Flavor\nname: deep\nspec: " + String(repeating: "[", count: 200_000) + String(repeating: "]", count: 200_000) + "\n"
        let (result, messages) = try load("manifests/deep.yaml", deep)
        #expect(result.hasErrors)
        #expect(messages.contains { $0.hasPrefix("manifests/deep.yaml:3:") && $0.contains("deeper than 256 levels") }, "\(messages)")
    }

    @Test func anchorsRecordedInsideEachOtherAreBudgeted() throws {
        // 200 anchored mappings, each inside the previous, around 6,000 scalars: every event is recorded once per
        // open anchor (2.4 million copies), over the default budget of a million.
        var text = "kind: Flavor\nname: nest\nspec:\n"
        var indent = "  "
        for n in 0..<200 {
            text += "\(indent)l\(n): &a\(n)\n"
            indent += " "
        }
        for n in 0..<6000 { text += "\(indent)v\(n): 1\n" }
        let (result, messages) = try load("manifests/nest.yaml", text)
        #expect(result.hasErrors)
        #expect(messages.contains { $0.contains("anchors hold more than 1000000 YAML events") }, "\(messages.prefix(3))")
    }

    // MARK: Smaller findings

    @Test func bridgeNamesAreLinuxInterfaceNames() throws {
        for bad in [".", "..", "-a", "brü0", "br 0", "a23456789012345b"] {
            let network = "kind: Network\nname: n2\nspec: {bridge: \"\(bad)\", fixedRange: 10.99.0.0/24, gateway: 10.99.0.1}\n"
            let (result, messages) = try load("regions/lab/n2.yaml", network)
            #expect(result.hasErrors && messages.contains { $0.contains("expected a Linux interface name") }, "\(bad): \(messages)")
        }
    }

    @Test func flavorsTooSmallToBootAreRefused() throws {
        let (result, messages) = try load("manifests/tiny.yaml", "kind: Flavor\nname: tiny\nspec: {vcpus: 1, ram: 512B, disk: 0B}\n")
        #expect(result.hasErrors)
        #expect(messages.contains("manifests/tiny.yaml:3:23: 'ram' must be at least 64MiB, found 512B"), "\(messages)")
        #expect(messages.contains { $0.contains("'disk' must be at least 1GiB") })
    }

    @Test func controlCharactersNeverReachTheTerminal() throws {
        let (result, _) = try load("manifests/esc.yaml", "kind: Flavor\nname: \"evil\\e[2J\\e]0;pwned\\a\"\nspec: {vcpus: many, ram: 1GiB, disk: 1GiB}\n")
        let text = DiagnosticRenderer(files: result.files, colors: false).render(result.diagnostics)
        #expect(result.hasErrors)
        #expect(!text.unicodeScalars.contains { $0.value == 0x1B || $0.value == 0x07 }, "\(text.debugDescription)")
        #expect("a\u{1B}[31mb\nc".terminalSafe == "a\\u{1B}[31mb\\u{A}c")
    }

    @Test func symlinksStayInsideTheManifestDirectories() throws {
        let scratch = try Fixtures.deployment()
        try GitCLI.commitAll(in: scratch.path)
        try FileManager.default.createSymbolicLink(atPath: scratch.file("manifests/config.yaml"), withDestinationPath: "../.git/config")
        try FileManager.default.createSymbolicLink(atPath: scratch.file("manifests/gone.yaml"), withDestinationPath: "nowhere.yaml")
        let result = try Loader().load(DirectorySource(root: scratch.path))
        let messages = result.diagnostics.map { d in d.location.map { "\(result.files.describe($0)): \(d.message)" } ?? d.message }
        #expect(messages.contains("manifests/config.yaml:1:1: symbolic link to '../.git/config' points outside the manifest directories (manifests/, regions/, ci/)"), "\(messages)")
        #expect(messages.contains("manifests/gone.yaml:1:1: symbolic link to 'nowhere.yaml' points to no file"), "\(messages)")
        #expect(!messages.contains { $0.contains("repositoryformatversion") }, "the .git file's lines are never echoed")
    }
}
