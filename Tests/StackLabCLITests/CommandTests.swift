import Foundation
import ManifestSources
import Manifests
import TestSupport
import Testing
@testable import StackLabCLI

@Suite struct CommandTests {
    private func load(_ overlay: String? = nil) throws -> LoadResult {
        let scratch = try Fixtures.deployment(overlay: overlay)
        return try Loader().load(DirectorySource(root: scratch.path))
    }

    @Test func validatePassesWithASummaryAndExitZero() throws {
        let output = try Validate.output(for: try load(), format: .text, colors: false)
        #expect(output.exitCode == 0)
        #expect(output.stderr.isEmpty)
        #expect(output.stdout.hasPrefix("ok: 12 files: 2 Region, 6 Node, 2 Network"))
    }

    @Test func validateReportsErrorsOnStderrAndExitsOne() throws {
        let output = try Validate.output(for: try load("diagnostics/08-dangling-flavor"), format: .text, colors: false)
        #expect(output.exitCode == 1)
        #expect(output.stdout.isEmpty)
        #expect(output.stderr.contains("manifests/extra.yaml:5:16: error: instance 'web-3' uses flavor 'm1.smal', which is not declared"))
        #expect(output.stderr.hasSuffix("2 errors, 0 warnings\n"))
    }

    @Test func warningsAloneExitZero() throws {
        let output = try Validate.output(for: try load("diagnostics/14-pricelist-flavor"), format: .text, colors: false)
        #expect(output.exitCode == 1)
        let scratch = try Fixtures.deployment()
        try scratch.write("manifests/unpriced.yaml", "kind: Flavor\nname: m1.unpriced\nspec: {vcpus: 1, ram: 1GiB, disk: 1GiB}\n")
        let warningsOnly = try Validate.output(for: try Loader().load(DirectorySource(root: scratch.path)), format: .text, colors: false)
        #expect(warningsOnly.exitCode == 0)
        #expect(warningsOnly.stderr.contains("warning: flavor 'm1.unpriced' has no price"))
        #expect(warningsOnly.stdout.hasPrefix("ok:"))
    }

    @Test func validateJSONCarriesEveryDiagnosticWithItsPosition() throws {
        let output = try Validate.output(for: try load("diagnostics/29-many-errors"), format: .json, colors: false)
        #expect(output.exitCode == 1)
        let json = try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [String: Any]
        #expect(json?["ok"] as? Bool == false)
        #expect(json?["errors"] as? Int == 7)
        let diagnostics = json?["diagnostics"] as? [[String: Any]] ?? []
        #expect(diagnostics.count == 7)
        let first = diagnostics.first { ($0["file"] as? String) == "regions/lab/more.yaml" }
        #expect(first?["line"] as? Int == 3)
        #expect(first?["column"] as? Int == 39)
        #expect(first?["severity"] as? String == "error")
    }

    @Test func colorsAreOnlyUsedWhenAsked() throws {
        let result = try load("diagnostics/09-dangling-image")
        #expect(!(try Validate.output(for: result, format: .text, colors: false).stderr.contains("\u{1B}[")))
        #expect(try Validate.output(for: result, format: .text, colors: true).stderr.contains("\u{1B}[1;31merror"))
    }

    @Test func showListsResourcesWithAddressesAndSources() throws {
        let output = try Show.output(for: try load(), kind: .node, name: nil, format: .text, colors: false)
        #expect(output.exitCode == 0)
        let lines = output.stdout.split(separator: "\n")
        #expect(lines.count == 6)
        #expect(lines.first?.hasPrefix("node/edge/edge-1") == true)
        #expect(lines.first?.hasSuffix("(regions/edge/nodes.yaml:2:1)") == true)
    }

    @Test func showJSONAppliesDefaults() throws {
        let output = try Show.output(for: try load(), kind: .region, name: "lab", format: .json, colors: false)
        let json = try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [String: Any]
        #expect(json?["ok"] as? Bool == true)
        let region = try #require((json?["resources"] as? [[String: Any]])?.first)
        #expect(region["address"] as? String == "region/lab")
        #expect(region["source"] as? String == "regions/lab/region.yaml:1:1")
        let spec = region["spec"] as? [String: Any]
        #expect(spec?["cpuAllocationRatio"] as? Double == 16)
        #expect(spec?["environment"] as? String == "production")
        // Every kind with defaults shows them: a node's zone and instance storage, a flavor's ephemeral disk.
        let nodes = try Show.output(for: try load(), kind: .node, name: "lab-2", format: .json, colors: false)
        let node = try #require(((try JSONSerialization.jsonObject(with: Data(nodes.stdout.utf8)) as? [String: Any])?["resources"] as? [[String: Any]])?.first)
        #expect((node["spec"] as? [String: Any])?["zone"] as? String == "lab-2")
        #expect((node["spec"] as? [String: Any])?["instanceStorage"] as? String == "1TiB")
        #expect((node["spec"] as? [String: Any])?["fileRoot"] as? String == "/")
        let flavors = try Show.output(for: try load(), kind: .flavor, name: "m1.small", format: .json, colors: false)
        let flavor = try #require(((try JSONSerialization.jsonObject(with: Data(flavors.stdout.utf8)) as? [String: Any])?["resources"] as? [[String: Any]])?.first)
        #expect((flavor["spec"] as? [String: Any])?["ephemeral"] as? String == "0B")
        #expect((flavor["spec"] as? [String: Any])?["diskType"] as? String == "hdd")
    }

    @Test func showWithNoMatchFails() throws {
        let output = try Show.output(for: try load(), kind: .instance, name: "nope", format: .text, colors: false)
        #expect(output.exitCode == 1)
        #expect(output.stderr == "no resource matches\n")
    }

    @Test func theCommandLineParsesEveryDocumentedForm() throws {
        for arguments in [["validate"], ["validate", "--rev", "main", "--format", "json"], ["show", "node"],
                          ["show", "instance", "gerrit", "--format", "json"], ["validate", "--repo", "/x", "--jobs", "2", "--timings"],
                          ["plan", "--region", "sina", "--target", "instance/sina/devops", "--out", "p.json"], ["apply", "p.json", "--allow-mass-delete"],
                          ["drift", "--state-dir", "/tmp/x"], ["ring", "show", "sina", "object"], ["ring", "build", "sina", "--out", "/tmp/r"],
                          ["ring", "validate", "sina"], ["plan", "--refresh", "--timings"],
                          ["serve", "--repo", "r", "--token-file", "t", "--webhook-secret-file", "s", "--cache-regions", "4"]] {
            _ = try StackLab.parseAsRoot(arguments)
        }
        #expect(throws: (any Error).self) { try StackLab.parseAsRoot(["show", "flavour"]) }
        #expect(throws: (any Error).self) { try StackLab.parseAsRoot(["bench", "all"]) }
        #expect(throws: (any Error).self) { try StackLab.parseAsRoot(["ring", "show"]) }
    }
}
