import Foundation
import ManifestSources
import Manifests
import Pipelines
import Processes
import StateSQLite
import TestSupport
import Testing
@testable import Reconcile

/// The CI gate on real git repositories: each change merged onto the base exactly as it would merge, applied to the
/// staging region (`lab` in the fixture's gate pipeline), checked; verdicts as Verified ±1 and JUnit XML.
@Suite(.serialized) struct CIGateTests {
    final class World {
        let repo: Scratch
        let state: Scratch

        init() throws {
            repo = try Fixtures.deployment()
            state = try Scratch("gate-state")
            try GitCLI.commitAll(in: repo.path)
            try GitCLI.run(["branch", "-M", "main"], in: repo.path)
            let applied = try stacklab(["apply", "--auto-approve"])
            try #require(applied.status == 0, "\(applied.output)")
        }

        func stacklab(_ arguments: [String], environment: [String] = []) throws -> Command.Result {
            // Faults a real node cannot produce are injected by the test-only stacklab-faults; the shipped program reads none.
            let binary = environment.contains { $0.hasPrefix("STACKLAB_FAULT_") } ? StackLabBinary.faults : StackLabBinary.path
            return try Command.run(["env"] + environment + [binary] + arguments + ["--repo", repo.path, "--state-dir", state.path])
        }

        func gate(_ changes: [String], environment: [String] = [], extra: [String] = []) throws -> Command.Result {
            try stacklab(["ci", "gate"] + changes.flatMap { ["--change", $0] } + extra, environment: environment)
        }

        /// A branch `name` off `from` that appends `text` to `file` (or replaces `old` with `new` in it).
        func branch(_ name: String, from: String = "main", file: String = "manifests/tenants/acme.yaml", append text: String = "",
                    replace: (old: String, new: String)? = nil) throws {
            try GitCLI.run(["checkout", "-q", "-b", name, from], in: repo.path)
            var content = try String(contentsOfFile: repo.file(file), encoding: .utf8)
            if let replace { content = content.replacingOccurrences(of: replace.old, with: replace.new) }
            try repo.write(file, content + text)
            try GitCLI.commitAll(in: repo.path, message: "change \(name)")
            try GitCLI.run(["checkout", "-q", "main"], in: repo.path)
        }

        static func instance(_ name: String) -> String {
            "---\nkind: Instance\nname: \(name)\nregion: lab\ntenant: acme\nspec: {flavor: m1.small, image: ubuntu, network: private}\n"
        }

        /// The acme instances running on staging now.
        func staging() throws -> Set<String> {
            let loaded = try Loader().load(GitSource(repository: repo.path, revision: "main"))
            let reconciler = Reconciler(model: loaded.model, revision: nil, stateDirectory: state.path, state: nil)
            return Set(try reconciler.observe(try reconciler.drivers(for: ["lab"])).flatMap(\.domains).compactMap(\.address).filter { $0.tenant == "acme" }.map(\.name))
        }
    }

    @Test func aGoodChangeGetsPlusOneAndStagingHoldsIt() throws {
        let world = try World()
        try world.branch("good", append: World.instance("web-3"))
        let junit = world.state.file("gate.xml")
        let gate = try world.gate(["good"], extra: ["--junit", junit])
        #expect(gate.status == 0, "\(gate.output)")
        #expect(gate.output.contains("Verified: +1") && gate.output.contains("✓ check: {region: lab, expect: [no-drift]}"), "\(gate.output)")
        #expect(try world.staging().contains("web-3"), "staging holds the change")
        let check = try Command.run(["xmllint", "--noout", "--schema", (Fixtures.packageRoot as NSString).appendingPathComponent("Tests/Fixtures/junit/jenkins-junit.xsd"), junit])
        #expect(check.status == 0, "the JUnit report validates: \(check.output)")
        #expect(try String(contentsOfFile: junit, encoding: .utf8).contains("<testcase name=\"apply: {region: lab}\""))
    }

    @Test func aChangeWhoseApplyFailsGetsMinusOneAndStagingGoesBackToTheBase() throws {
        let world = try World()
        try world.branch("bad", append: World.instance("web-4") + World.instance("web-5"))
        let junit = world.state.file("gate.xml")
        let gate = try world.gate(["bad"], environment: ["STACKLAB_FAULT_FAIL_ADDRESS=instance/lab/acme/web-5"], extra: ["--junit", junit])
        #expect(gate.status == 1, "\(gate.output)")
        #expect(gate.output.contains("Verified: -1") && gate.output.contains("staging restored: lab back at"), "\(gate.output)")
        #expect(try world.staging() == ["web-1", "web-2"], "web-4, created before web-5 failed, is gone again")
        let check = try Command.run(["xmllint", "--noout", "--schema", (Fixtures.packageRoot as NSString).appendingPathComponent("Tests/Fixtures/junit/jenkins-junit.xsd"), junit])
        #expect(check.status == 0, "\(check.output)")
        let xml = try String(contentsOfFile: junit, encoding: .utf8)
        #expect(xml.contains("<failure message=") && xml.contains("<skipped message=\"an earlier step failed\"/>"), "\(xml)")
    }

    @Test func aChangeThatBreaksASmokeCheckGetsMinusOneAndStagingGoesBackToTheBase() throws {
        let world = try World()
        // Staging is region edge, whose object ring must be balanced after every change.
        try world.repo.write("ci/gate.yaml", """
            kind: Pipeline
            name: gate
            spec:
              trigger: {event: change-approved}
              steps: [validate, {apply: {region: edge}}, {check: {region: edge, expect: [no-drift, reachable, running, rings-balanced]}}]
            """)
        try GitCLI.commitAll(in: world.repo.path)
        #expect(try world.gate(["main"]).output.contains("Verified: +1"), "the base passes its own gate")
        // A new disk on edge-1 and an instance: the apply succeeds, but the ring cannot take the disk's share at
        // once (min_part_hours): rings-balanced fails.
        try world.branch("disk", file: "regions/edge/nodes.yaml", replace: (old: "    - {name: sdc, size: 2TB}\n---\nkind: Node\nname: edge-2",
                                                                           new: "    - {name: sdc, size: 2TB}\n    - {name: sdd, size: 4TB}\n---\nkind: Node\nname: edge-2"))
        let gate = try world.gate(["disk"])
        #expect(gate.status == 1, "\(gate.output)")
        #expect(gate.output.contains("✓ apply: {region: edge}") && gate.output.contains("✗ check: {region: edge, expect: [no-drift, reachable, running, rings-balanced]}"), "\(gate.output)")
        #expect(gate.output.contains("rings still settling") && gate.output.contains("Verified: -1") && gate.output.contains("staging restored: edge back at"), "\(gate.output)")
        // Back at the base: the base's manifests plan nothing for edge's nodes but the ring's own settling.
        let plan = try world.stacklab(["plan", "--region", "edge", "--format", "json"])
        struct Planned: Decodable { var changes: [Change] ; struct Change: Decodable { var address: String } }
        let remaining = try JSONDecoder().decode(Planned.self, from: Data(plan.output.utf8)).changes.map(\.address)
        #expect(remaining.allSatisfy { $0.hasPrefix("ring/") }, "\(remaining)")
    }

    @Test func aConflictingChangeGetsMinusOneNamingTheFiles() throws {
        let world = try World()
        let line = "spec: {flavor: m1.large, image: ubuntu, network: private, keypair: deploy}"
        try world.branch("left", replace: (old: line, new: "spec: {flavor: m1.large, image: ubuntu, network: private, keypair: deploy, state: stopped}"))
        try world.branch("right", replace: (old: line, new: "spec: {flavor: m1.large, image: ubuntu, network: private, keypair: deploy, zone: lab-2}"))
        let gate = try world.gate(["left", "right"])
        #expect(gate.status == 1, "\(gate.output)")
        #expect(gate.output.components(separatedBy: "Verified: +1").count == 2 && gate.output.contains("Verified: -1"), "\(gate.output)")
        #expect(gate.output.contains("conflicts in manifests/tenants/acme.yaml"), "\(gate.output)")
    }

    @Test func aQueueOfThreeWhoseMiddleFailsMergesTheFirstAndTheThird() throws {
        let world = try World()
        try world.branch("a", append: World.instance("web-6"))
        try world.branch("b", file: "manifests/tenants/other.yaml", append: World.instance("web-7").replacingOccurrences(of: "tenant: acme", with: "tenant: other"))
        try world.branch("c", file: "manifests/catalog.yaml", append: "---\nkind: Flavor\nname: m1.tiny\nspec: {vcpus: 1, ram: 512MiB, disk: 5GiB}\n")
        let before = try GitCLI.run(["rev-parse", "main"], in: world.repo.path)
        let gate = try world.gate(["a", "b", "c"], environment: ["STACKLAB_FAULT_FAIL_ADDRESS=instance/lab/other/web-7"], extra: ["--merge", "--format", "json"])
        #expect(gate.status == 1, "\(gate.output)")
        struct Report: Decodable { var base: String; var tip: String; var merged: Bool; var results: [Result] }
        struct Result: Decodable { var change: String; var verdict: Int; var base: String }
        let report = try JSONDecoder().decode(Report.self, from: Data(gate.output.utf8))
        #expect(report.results.map(\.verdict) == [1, -1, 1])
        #expect(report.results[2].base == report.results[1].base, "c is tested without b")
        #expect(report.merged && report.base == before)
        let main = try GitCLI.run(["rev-parse", "main"], in: world.repo.path)
        #expect(main == report.tip)
        let files = try GitCLI.run(["show", "main:manifests/tenants/acme.yaml"], in: world.repo.path) + (try GitCLI.run(["show", "main:manifests/catalog.yaml"], in: world.repo.path))
            + (try GitCLI.run(["show", "main:manifests/tenants/other.yaml"], in: world.repo.path))
        #expect(files.contains("name: web-6") && files.contains("name: m1.tiny") && !files.contains("name: web-7"), "main has a and c, not b")
        // main is checked out: its files came along, and nothing is staged that would undo the merge at the next commit.
        #expect(try GitCLI.run(["status", "--porcelain", "--untracked-files=no"], in: world.repo.path).isEmpty)
        #expect(try String(contentsOfFile: world.repo.file("manifests/catalog.yaml"), encoding: .utf8).contains("name: m1.tiny"))
        #expect(try world.staging().contains("web-6") && !(try world.staging().contains("web-7")))
        // Every run is kept, newest first, with its verdict and the step that failed.
        let history = try world.stacklab(["ci", "history"])
        let lines = history.output.split(separator: "\n").map(String.init)
        #expect(lines.count == 3 && lines[0].contains("gate gate c ") && lines[0].contains(" +1 ")
                && lines[1].contains("gate gate b ") && lines[1].contains(" -1 ") && lines[1].contains("failed at apply: {region: lab}"), "\(history.output)")
        // As JSON, each run's steps are records (not a JSON string inside JSON), each apply step naming its region.
        let json = try world.stacklab(["ci", "history", "--format", "json"])
        let document = try #require(try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [String: Any], "\(json.output)")
        let runs = try #require(document["runs"] as? [[String: Any]], "\(json.output)")
        #expect(document["ok"] as? Bool == true)
        let failed = try #require(runs.count == 3 ? runs[1] : nil)
        #expect(failed["kind"] as? String == "gate" && failed["verdict"] as? Int == -1)
        let steps = try #require(failed["steps"] as? [[String: Any]], "steps are an array: \(failed["steps"] ?? "none")")
        #expect(steps.contains { $0["name"] as? String == "apply: {region: lab}" && $0["region"] as? String == "lab" && $0["status"] as? String == "failed" })
    }

    @Test func aCheckNamesTheCommitAuthorAndFlavorLineBehindEveryInstanceUpdate() throws {
        let world = try World()
        try GitCLI.run(["checkout", "-q", "-b", "bigger", "main"], in: world.repo.path)
        let catalog = try String(contentsOfFile: world.repo.file("manifests/catalog.yaml"), encoding: .utf8)
        try world.repo.write("manifests/catalog.yaml", catalog.replacingOccurrences(of: "name: m1.small\nspec: {vcpus: 1, ram: 2GiB, disk: 20GiB}", with: "name: m1.small\nspec: {vcpus: 2, ram: 4GiB, disk: 20GiB}"))
        try Command.check(["git", "-C", world.repo.path, "-c", "user.name=Jane Operator", "-c", "user.email=jane@stacklab.invalid", "commit", "-qam", "m1.small gets 2 vCPUs"])
        let commit = try GitCLI.run(["rev-parse", "bigger"], in: world.repo.path)
        try GitCLI.run(["checkout", "-q", "main"], in: world.repo.path)
        let check = try world.stacklab(["ci", "check", "--change", "bigger", "--format", "json"])
        #expect(check.status == 0, "\(check.output)")
        let result = try JSONDecoder().decode(PipelineRunner.CheckResult.self, from: Data(check.output.utf8))
        let updates = result.changes.filter { $0.id.hasPrefix("instance/") && $0.action == "update" }
        let small = try Loader().load(GitSource(repository: world.repo.path, revision: "bigger")).model.instances.filter { $0.spec.flavor.value == "m1.small" }
        #expect(updates.count == small.count && !updates.isEmpty, "\(result.changes.map(\.id))")
        for update in updates {
            #expect(update.causes.map { "\($0.file):\($0.line) \($0.commit) \($0.author)" } == ["manifests/catalog.yaml:3 \(commit) Jane Operator"], "\(update.id): \(update.causes)")
        }
        #expect(try world.staging() == ["web-1", "web-2"], "a check touches nothing")
        let text = try world.stacklab(["ci", "check", "--change", "bigger"])
        #expect(text.output.contains("caused by manifests/catalog.yaml:3  spec: {vcpus: 2, ram: 4GiB, disk: 20GiB}") && text.output.contains("Jane Operator <jane@stacklab.invalid>: m1.small gets 2 vCPUs"), "\(text.output)")
        #expect(text.output.hasSuffix("Verified: +1\n"))
        // The same change reviewed from the two revisions and the journal alone.
        let review = try world.stacklab(["plan", "--rev", "main..bigger"])
        #expect(review.status == 2, "\(review.output)")
        #expect(review.output.contains("~ flavor/m1.small (spec changed)\n      ram: 2GiB → 4GiB\n      vcpus: 1 → 2"), "\(review.output)")
        #expect(review.output.contains("~ instance/lab/acme/web-1 on node/lab/") && review.output.contains("(its flavor m1.small changed)"), "\(review.output)")
        #expect(review.output.contains("no node observed"))
    }

    @Test func aProposedChangeCannotSendCredentialsToAHostOfItsChoosing() throws {
        let world = try World()
        // The "attacker's" host: a listener on loopback that writes down every request it gets.
        let port = try LoopbackSSHD.freePort(address: "127.0.0.1")
        let requests = world.state.file("requests.log")
        let listener = try Command.start(["python3", "-c", """
            import http.server, sys
            class H(http.server.BaseHTTPRequestHandler):
                def do_GET(self):
                    open(sys.argv[2], 'a').write(self.path + ' ' + repr(dict(self.headers)) + '\\n'); self.send_response(401); self.end_headers()
                do_PUT = do_POST = do_HEAD = do_GET
                def log_message(self, *a): pass
            http.server.HTTPServer(('127.0.0.1', int(sys.argv[1])), H).serve_forever()
            """, "\(port)", requests])
        defer { Command.stop(listener) }
        usleep(300_000)
        let secrets = ["CI_DEPLOY_TOKEN=tok-deploy-123", "STACKLAB_SWIFT_KEY=swift-key-456"]
        let proxy = "http://127.0.0.1:\(port)"
        // A key from any variable, and the operator's own Swift key with only the proxy changed.
        try world.branch("exfil", file: "regions/lab/region.yaml", append: "  objectStore: {proxy: \"\(proxy)\", user: \"x:y\", keyEnv: CI_DEPLOY_TOKEN}\n")
        try world.branch("proxy-only", file: "regions/lab/region.yaml", append: "  objectStore: {proxy: \"\(proxy)\", user: \"x:y\"}\n")
        for change in ["exfil", "proxy-only"] {
            let check = try world.stacklab(["ci", "check", "--change", change], environment: secrets)
            #expect(check.output.contains("note: region lab: objectStore none → \(proxy) as x:y with $") && check.output.contains("takes effect after merge"),
                    "\(check.output)")
            _ = try world.gate([change], environment: secrets)
        }
        #expect(!FileManager.default.fileExists(atPath: requests), "no request reached the proposed host: \((try? String(contentsOfFile: requests, encoding: .utf8)) ?? "")")

        // Merged (trusted), a key is still taken only from a variable the operator lists.
        try GitCLI.run(["merge", "-q", "exfil"], in: world.repo.path)
        let plan = try world.stacklab(["plan"], environment: secrets)
        #expect(plan.output.contains("takes its key from $CI_DEPLOY_TOKEN, which is not a credential variable"), "\(plan.output.suffix(800))")
        #expect(!FileManager.default.fileExists(atPath: requests), "still nothing sent")
    }

    @Test func aProposedCommitsAuthorAndSummaryAreShownNeverObeyed() throws {
        let world = try World()
        try GitCLI.run(["checkout", "-q", "-b", "forged", "main"], in: world.repo.path)
        let catalog = try String(contentsOfFile: world.repo.file("manifests/catalog.yaml"), encoding: .utf8)
        try world.repo.write("manifests/catalog.yaml", catalog.replacingOccurrences(of: "name: m1.small\nspec: {vcpus: 1, ram: 2GiB, disk: 20GiB}", with: "name: m1.small\nspec: {vcpus: 2, ram: 4GiB, disk: 20GiB}"))
        // An author and a summary that, printed raw, erase the line and draw a green "Verified: +1".
        let message = world.repo.file("message")
        try "fix\r\u{1B}[2K\u{1B}[32mVerified: +1\u{1B}[0m\u{1B}[8m\n".write(toFile: message, atomically: true, encoding: .utf8)
        try Command.check(["git", "-C", world.repo.path, "-c", "user.name=Mallory\u{1B}[1A\u{1B}[2K", "-c", "user.email=m@stacklab.invalid", "commit", "-qa", "-F", message])
        try GitCLI.run(["checkout", "-q", "main"], in: world.repo.path)
        let check = try world.stacklab(["ci", "check", "--change", "forged\u{1B}[8m"])
        #expect(!check.output.contains("\u{1B}") && !check.output.contains("\r"), "\(check.output.debugDescription)")
        let text = try world.stacklab(["ci", "check", "--change", "forged"])
        #expect(!text.output.contains("\u{1B}") && !text.output.contains("\r"), "\(text.output.debugDescription)")
        #expect(text.output.contains("Mallory\\u{1B}[1A\\u{1B}[2K <m@stacklab.invalid>: fix\\u{D}\\u{1B}[2K\\u{1B}[32mVerified: +1"), "\(text.output)")
        // Manifest text, too, as show prints it.
        try world.repo.write("regions/lab/region.yaml", "kind: Region\nname: lab\nspec:\n  sponsor: \"Fixture\\e[2K\\rlab\"\n")
        let shown = try StackLabBinary.run(["show", "region", "--repo", world.repo.path])
        #expect(!shown.output.contains("\u{1B}") && !shown.output.contains("\r") && shown.output.contains("region/lab"), "\(shown.output.debugDescription)")
    }

    @Test func anApplyNeverGoesBackOverANewerRevisionUnlessItIsARollback() throws {
        let world = try World()
        let older = try GitCLI.run(["rev-parse", "main"], in: world.repo.path)
        let acme = try String(contentsOfFile: world.repo.file("manifests/tenants/acme.yaml"), encoding: .utf8)
        try world.repo.write("manifests/tenants/acme.yaml", acme + World.instance("web-3"))
        try GitCLI.commitAll(in: world.repo.path)
        let newer = try GitCLI.run(["rev-parse", "main"], in: world.repo.path)
        #expect(try world.stacklab(["apply", "--auto-approve", "--rev", newer]).status == 0)
        // A reconciler that read the older push (another process applied the newer one) does not undo it.
        let back = try world.stacklab(["apply", "--auto-approve", "--rev", older])
        #expect(back.status == 1 && back.output.contains("\(older.prefix(12)) is older than what ")
                && back.output.contains("region lab last applied (\(newer.prefix(12)))")
                && back.output.contains("stacklab rollback REGION --to \(older.prefix(12))"), "\(back.output)")
        #expect(try world.staging().contains("web-3"), "nothing was undone")
        // The same revision still heals drift; going back on purpose is a rollback, which holds the region: the
        // revision it was taken back from is refused, the held one still heals drift, and a newer push moves it ahead.
        #expect(try world.stacklab(["apply", "--auto-approve", "--rev", newer]).status == 0)
        #expect(try world.stacklab(["rollback", "lab", "--to", older, "--auto-approve"]).status == 0)
        #expect(try world.staging() == ["web-1", "web-2"])
        let held = try world.stacklab(["apply", "--auto-approve", "--rev", newer])
        #expect(held.status == 1 && held.output.contains("region lab was rolled back to \(older.prefix(12)) from \(newer.prefix(12)) and stays there until a newer push")
                && held.output.contains("push a newer revision to release the hold"), "\(held.output)")
        #expect(try world.staging() == ["web-1", "web-2"])
        #expect(try world.stacklab(["apply", "--auto-approve", "--rev", older]).status == 0, "the held revision heals drift")
        try world.repo.write("manifests/tenants/acme.yaml", acme + World.instance("web-3") + World.instance("web-4"))
        try GitCLI.commitAll(in: world.repo.path)
        let newest = try GitCLI.run(["rev-parse", "main"], in: world.repo.path)
        #expect(try world.stacklab(["apply", "--auto-approve", "--rev", newest]).status == 0)
        #expect(try world.staging() == ["web-1", "web-2", "web-3", "web-4"])
        // Released: the revision before it is simply older now.
        let released = try world.stacklab(["apply", "--auto-approve", "--rev", newer])
        #expect(released.status == 1 && released.output.contains("region lab last applied (\(newest.prefix(12)))"), "\(released.output)")
    }

    @Test func theShippedProgramReadsNoFaultVariablesAndTheFaultsProgramRefusesBadOnes() throws {
        let world = try World()
        let faults = ["STACKLAB_FAULT_FAIL_ADDRESS=instance/lab/acme/web-1", "STACKLAB_FAULT_KILL_AFTER_DRIVER_CALLS=1"]
        let shipped = try Command.run(["env"] + faults + [StackLabBinary.path, "apply", "--auto-approve", "--repo", world.repo.path, "--state-dir", world.state.path])
        #expect(shipped.status == 0, "\(shipped.output)")
        #expect(try world.staging() == ["web-1", "web-2"])
        let bad = try Command.run(["env", "STACKLAB_FAULT_FAIL_ADDRESS=node/lab/lab-1", StackLabBinary.faults, "plan", "--repo", world.repo.path])
        #expect(bad.status == 64 && bad.output.contains("is not an instance address"), "\(bad.output)")
    }

    @Test func aRollbackAppliesAnOlderRevisionToOneRegion() throws {
        let world = try World()
        let before = try GitCLI.run(["rev-parse", "main"], in: world.repo.path)
        let acme = try String(contentsOfFile: world.repo.file("manifests/tenants/acme.yaml"), encoding: .utf8)
        try world.repo.write("manifests/tenants/acme.yaml", acme + World.instance("web-3"))
        try GitCLI.commitAll(in: world.repo.path)
        #expect(try world.stacklab(["apply", "--auto-approve"]).status == 0)
        #expect(try world.staging().contains("web-3"))
        let rollback = try world.stacklab(["rollback", "lab", "--to", before, "--auto-approve"])
        #expect(rollback.status == 0, "\(rollback.output)")
        #expect(rollback.output.contains("- instance/lab/acme/web-3"), "\(rollback.output)")
        #expect(try world.staging() == ["web-1", "web-2"])
    }

    @Test func aDeployOfTheBundledRegionsHaltsAtAFailureInTheSecondAndLeavesTheFirstConverged() throws {
        let repo = try Scratch("bundled-deploy")
        for root in ManifestLayout.roots {
            try repo.overlay(from: (Fixtures.packageRoot as NSString).appendingPathComponent(root), into: root)
        }
        try GitCLI.commitAll(in: repo.path)
        let state = try Scratch("bundled-deploy-state")
        let junit = state.file("deploy.xml")
        // ci/deploy.yaml: sina, then intel, sjtu, s2c. A change to gerrit (intel) is refused by its node.
        let deploy = try Command.run(["env", "STACKLAB_FAULT_FAIL_ADDRESS=instance/intel/devops/gerrit", StackLabBinary.faults, "ci", "deploy", "--rev", "HEAD",
                                      "--junit", junit, "--repo", repo.path, "--state-dir", state.path])
        #expect(deploy.status == 1, "\(deploy.output)")
        #expect(deploy.output.contains("✓ apply: {region: sina}") && deploy.output.contains("✗ apply: {region: intel}"), "\(deploy.output)")
        #expect(deploy.output.contains("halted at apply: {region: intel}: 1 change failed: instance/intel/devops/gerrit"), "\(deploy.output)")
        #expect(deploy.output.contains("applied before it, and left converged: apply: {region: sina}"), "\(deploy.output)")
        #expect(deploy.output.contains("- apply: {region: sjtu}") && deploy.output.contains("- apply: {region: s2c}"), "the rest is skipped: \(deploy.output)")
        let sina = try StackLabBinary.run(["plan", "--region", "sina", "--repo", repo.path, "--state-dir", state.path])
        #expect(sina.status == 0, "sina stays converged: \(sina.output)")
        let sjtu = try StackLabBinary.run(["plan", "--region", "sjtu", "--repo", repo.path, "--state-dir", state.path])
        #expect(sjtu.status == 2, "sjtu was never touched: \(sjtu.output.suffix(300))")
        let check = try Command.run(["xmllint", "--noout", "--schema", (Fixtures.packageRoot as NSString).appendingPathComponent("Tests/Fixtures/junit/jenkins-junit.xsd"), junit])
        #expect(check.status == 0, "\(check.output)")
        // The schema is strict: a suite without its timestamp is refused.
        let broken = state.file("broken.xml")
        try (try String(contentsOfFile: junit, encoding: .utf8)).replacingOccurrences(of: " timestamp=\"", with: " stamp=\"").write(toFile: broken, atomically: true, encoding: .utf8)
        #expect(try Command.run(["xmllint", "--noout", "--schema", (Fixtures.packageRoot as NSString).appendingPathComponent("Tests/Fixtures/junit/jenkins-junit.xsd"), broken]).status != 0)
    }
}

/// `ci gate --merge` in a work tree the operator changed: refused before the branch moves, nothing lost.
@Suite struct CIGateWorkTreeTests {
    @Test func aMergeIntoACheckedOutBranchWithUncommittedChangesIsRefusedBeforeAnythingMoves() throws {
        let world = try CIGateTests.World()
        try world.branch("a", append: CIGateTests.World.instance("web-6"))
        let before = try GitCLI.run(["rev-parse", "main"], in: world.repo.path)
        let catalog = try String(contentsOfFile: world.repo.file("manifests/catalog.yaml"), encoding: .utf8)
        try world.repo.write("manifests/catalog.yaml", catalog + "# an operator's edit, not committed\n")
        let gate = try world.gate(["a"], extra: ["--merge"])
        #expect(gate.status == 1 && gate.output.contains("was not moved") && gate.output.contains("uncommitted changes (manifests/catalog.yaml)"), "\(gate.output)")
        // As JSON, the refusal is the one document on standard output.
        let json = try world.gate(["a"], extra: ["--merge", "--format", "json"])
        let document = try #require(try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [String: Any], "\(json.output)")
        #expect(document["ok"] as? Bool == false && (document["error"] as? String)?.contains("uncommitted changes") == true, "\(json.output)")
        #expect(try GitCLI.run(["rev-parse", "main"], in: world.repo.path) == before, "main did not move")
        #expect(try String(contentsOfFile: world.repo.file("manifests/catalog.yaml"), encoding: .utf8).hasSuffix("# an operator's edit, not committed\n"))
    }
}
