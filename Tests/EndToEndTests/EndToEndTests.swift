import Crypto
import Foundation
import SimulatedNodes
import GRDB
import Drivers
import ManifestSources
import Manifests
import Planning
import Processes
import StateSQLite
import TestSupport
import Testing
@testable import Reconcile

/// The real `stacklab` binary against simulated nodes: crash and resume, concurrent applies, safety rails.
@Suite(.serialized) struct EndToEndTests {
    /// The base deployment plus `count` tiny instances in region lab, committed to git.
    private func deployment(instances count: Int) throws -> (repo: Scratch, state: Scratch) {
        let repo = try Fixtures.deployment()
        var text = "kind: Flavor\nname: m1.nano\nspec: {vcpus: 1, ram: 128MiB, disk: 1GiB}\n"
        for index in 0..<count {
            text += "---\nkind: Instance\nname: bulk-\(index)\nregion: lab\ntenant: acme\nspec: {flavor: m1.nano, image: cirros, network: private}\n"
        }
        text += "---\nkind: Image\nname: cirros\nspec: {format: qcow2, source: images/cirros.qcow2}\n"
        try repo.write("manifests/bulk.yaml", text)
        try GitCLI.commitAll(in: repo.path)
        return (repo, try Scratch("state"))
    }

    /// Starts `stacklab apply` (one change at a time) and kills it with SIGKILL once `count` changes are journaled as
    /// done (or after a minute); returns how many were.
    @discardableResult
    private func killApply(repo: Scratch, state: Scratch, afterDone count: Int) throws -> Int {
        let pid = try Command.start([StackLabBinary.path, "apply", "--auto-approve", "--parallelism", "1", "--repo", repo.path, "--state-dir", state.path])
        var done = 0
        let deadline = Date().addingTimeInterval(60)
        while done < count && Date() < deadline {
            usleep(20_000)
            done = ((try? SQLiteState(directory: state.path).journalEntries()) ?? []).count { $0.status == .done }
        }
        kill(pid, SIGKILL)
        Command.stop(pid)
        return done
    }

    private func stacklab(_ arguments: [String], repo: Scratch, state: Scratch) throws -> Command.Result {
        try StackLabBinary.run(arguments + ["--repo", repo.path, "--state-dir", state.path])
    }

    @Test func planExitCodesAndSavedPlans() throws {
        let (repo, state) = try deployment(instances: 3)
        #expect(try stacklab(["plan"], repo: repo, state: state).status == 2)
        let planFile = state.file("plan.json")
        #expect(try stacklab(["plan", "--out", planFile, "--format", "json"], repo: repo, state: state).status == 2)
        let apply = try stacklab(["apply", planFile], repo: repo, state: state)
        #expect(apply.status == 0, "\(apply.output)")
        #expect(apply.output.contains("Apply complete: 32 done, 0 failed, 0 skipped"), "9 instances and networks, 3 of the base, 2 ring builds, 6 ring installs, a DHCP configuration and a ruleset on each of 6 compute nodes")
        let again = try stacklab(["plan"], repo: repo, state: state)
        #expect(again.status == 0)
        #expect(again.output.contains("No changes: 18 resources up to date."))
        // The saved plan's apply did not verify (it applies exactly the plan); the plan above remembered the
        // converged regions, so the next one observes nothing, and --refresh observes every node.
        let remembered = try stacklab(["plan", "--timings"], repo: repo, state: state)
        #expect(remembered.output.contains("regions: 2 reused, 0 planned; nodes: 0 reused, 0 observed"), "\(remembered.output)")
        let refreshed = try stacklab(["plan", "--refresh", "--timings"], repo: repo, state: state)
        #expect(refreshed.status == 0)
        #expect(refreshed.output.contains("regions: 0 reused, 2 planned; nodes: 0 reused, 6 observed"), "\(refreshed.output)")
        // A plan made against a state that has since changed is refused.
        try repo.write("manifests/bulk2.yaml", "kind: Instance\nname: late\nregion: lab\ntenant: acme\nspec: {flavor: m1.small, image: ubuntu, network: private}\n")
        #expect(try stacklab(["plan", "--out", planFile], repo: repo, state: state).status == 2)
        try FileManager.default.removeItem(atPath: repo.file("manifests/bulk2.yaml"))
        try repo.write("manifests/bulk3.yaml", "kind: Instance\nname: other-late\nregion: lab\ntenant: acme\nspec: {flavor: m1.small, image: ubuntu, network: private}\n")
        let applied = try stacklab(["apply", "--auto-approve"], repo: repo, state: state)
        #expect(applied.status == 0)
        #expect(applied.output.contains("Verified: 19 resources up to date."), "\(applied.output)")
        let otherManifests = try stacklab(["apply", planFile], repo: repo, state: state)
        #expect(otherManifests.status == 1)
        #expect(otherManifests.output.contains("made from other manifests"), "\(otherManifests.output)")
        // With the manifests the plan was made from, the nodes have still changed since.
        try FileManager.default.removeItem(atPath: repo.file("manifests/bulk3.yaml"))
        try repo.write("manifests/bulk2.yaml", "kind: Instance\nname: late\nregion: lab\ntenant: acme\nspec: {flavor: m1.small, image: ubuntu, network: private}\n")
        let stale = try stacklab(["apply", planFile], repo: repo, state: state)
        #expect(stale.status == 1)
        #expect(stale.output.contains("the plan is stale"), "\(stale.output)")
        // An edited plan is refused.
        let text = try String(contentsOfFile: planFile, encoding: .utf8)
        try text.replacingOccurrences(of: "\"late\"", with: "\"evil\"").replacingOccurrences(of: "/late", with: "/evil")
            .write(toFile: planFile, atomically: true, encoding: .utf8)
        let edited = try stacklab(["apply", planFile], repo: repo, state: state)
        #expect(edited.status == 1)
        #expect(edited.output.contains("was changed after it was made"), "\(edited.output)")
        // Resealed with a recomputed plain digest, or with another key: still refused (the seal is keyed).
        var forged = try JSONDecoder().decode(Plan.self, from: Data(contentsOf: URL(fileURLWithPath: planFile)))
        forged.digest = nil
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        forged.digest = SHA256.hash(data: try encoder.encode(forged)).map { String(format: "%02x", $0) }.joined()
        try encoder.encode(forged).write(to: URL(fileURLWithPath: planFile))
        #expect(try stacklab(["apply", planFile], repo: repo, state: state).output.contains("was changed after it was made"))
        forged.digest = nil
        try encoder.encode(forged.sealed(with: SymmetricKey(size: .bits256))).write(to: URL(fileURLWithPath: planFile))
        #expect(try stacklab(["apply", planFile], repo: repo, state: state).output.contains("was changed after it was made"))
    }

    @Test func applyRefusesWithoutApprovalWhenNotInteractive() throws {
        let (repo, state) = try deployment(instances: 1)
        let result = try stacklab(["apply"], repo: repo, state: state)
        #expect(result.status == 1)
        #expect(result.output.contains("pass --auto-approve"))
        #expect(try stacklab(["plan"], repo: repo, state: state).status == 2, "nothing was applied")
    }

    @Test func aStartClosesDeadRunsByTheirLockNotTheirPIDAndRemovesTheirTemporaryFiles() throws {
        let (repo, state) = try deployment(instances: 60)
        try killApply(repo: repo, state: state, afterDone: 20)
        // The dead run's PID now belongs to a live process (init), and crashed writes left temporary files behind.
        let database = try DatabaseQueue(path: state.file("stacklab.sqlite"))
        try database.write { try $0.execute(sql: "UPDATE run SET pid = 1 WHERE status = 'running'") }
        let host = SimulatedNode.hostFile(stateDirectory: state.path, node: Address(kind: .node, region: "lab", name: "lab-1"))
        let leftovers = [host + ".tmp-1", host + ".tmp-2147483646"]
        for path in leftovers { try Data("partial".utf8).write(to: URL(fileURLWithPath: path)) }
        try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(-3600)], ofItemAtPath: leftovers[0])
        let liveRun = try SQLiteState(directory: state.path)
        let ours = try liveRun.beginRun(regions: ["edge"], revision: nil)  // a run that is alive must stay open

        let plan = try stacklab(["plan"], repo: repo, state: state)
        #expect(plan.status == 2)
        // (The live run begun above closed the dead one already, as every start does; the plan says what it cleaned.)
        // Two made above, and possibly one the kill itself interrupted.
        #expect(plan.output.contains("note: recovered: removed 2 temporary files of interrupted writes")
                || plan.output.contains("note: recovered: removed 3 temporary files of interrupted writes"), "\(plan.output)")
        let store = try SQLiteState(directory: state.path)
        #expect(try store.runs().map(\.status) == [.interrupted, .running])
        #expect(try store.journalEntries().allSatisfy { $0.status != .started && $0.status != .planned }, "no change is left started forever")
        #expect(leftovers.allSatisfy { !FileManager.default.fileExists(atPath: $0) })
        // Creates done before the kill but not journaled as done are found on their nodes: recorded, so drift sees them.
        let loaded = try Loader().load(GitSource(repository: repo.path, revision: "HEAD"))
        let reconciler = Reconciler(model: loaded.model, revision: nil, stateDirectory: state.path, state: nil)
        let created = try reconciler.observe(try reconciler.drivers(for: ["lab"])).flatMap(\.domains).compactMap(\.address?.description)
        let placements = try store.placements()
        let missing = created.filter { Address(parsing: $0).map { placements[$0] == nil } ?? true }
        let entries = try store.journalEntries().filter { missing.contains($0.address.description) }.map { "\($0.run) \($0.action) \($0.status) \($0.error ?? "")" }
        #expect(!created.isEmpty && missing.isEmpty, "\(missing): \(entries)")
        try liveRun.finishRun(ours, succeeded: true)
        #expect(try store.runs().map(\.status) == [.interrupted, .succeeded])
    }

    @Test func planNeedsNoWriteAccessToTheStateDirectory() throws {
        let (repo, state) = try deployment(instances: 2)
        #expect(try stacklab(["apply", "--auto-approve"], repo: repo, state: state).status == 0)
        try repo.write("regions/lab/more.yaml", "kind: Node\nname: lab-9\nspec: {address: 172.16.20.9, libvirt: simulated, roles: [compute], cpus: 8, memory: 16GiB}\n")
        try GitCLI.commitAll(in: repo.path)
        // Another user (nobody) may read the repository and the state, not write them. The binary is copied where
        // nobody can reach it (the build directory may sit under a home nobody cannot enter).
        let binary = try Scratch("binary")
        let copy = binary.file("stacklab")
        // Copied by cp, not in this process: a write descriptor held here could leak into another test's child
        // and make the copy "text file busy" when it runs.
        try Command.check(["cp", StackLabBinary.path, copy])
        try Command.check(["chmod", "-R", "a+rX", repo.path, state.path, binary.path])
        let probe = try Command.run(["runuser", "-u", "nobody", "--", copy, "--version"])
        try #require(probe.status == 0, "this machine cannot run the binary as nobody (\(probe.output)); the test needs it")
        let before = try FileManager.default.contentsOfDirectory(atPath: state.path).sorted()
        let plan = try Command.run(["runuser", "-u", "nobody", "--", copy, "plan", "--repo", repo.path, "--state-dir", state.path])
        #expect(plan.status == 2, "\(plan.output)")
        #expect(plan.output.contains("node lab-9"), "the new node is planned from an empty host: \(plan.output)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: state.path).sorted() == before, "nothing was written")
    }

    @Test func fileSizeLimitsOutOfRangeAreUsageErrors() throws {
        let (repo, state) = try deployment(instances: 1)
        for value in ["0", "-1", "99999999999999"] {
            let result = try stacklab(["validate", "--max-file-size=\(value)"], repo: repo, state: state)
            #expect(result.status == 64, "\(value): \(result.output)")
            #expect(result.output.contains("--max-file-size must be between 1 and 1024 MiB"), "\(result.output)")
        }
    }

    @Test func killedMidApplyResumesWithNothingLostOrDuplicated() throws {
        let (repo, state) = try deployment(instances: 150)
        let done = try killApply(repo: repo, state: state, afterDone: 20)
        #expect(done >= 20, "the apply made progress before it was killed")
        let interrupted = try SQLiteState(directory: state.path).journalEntries().count { $0.status == .done }
        #expect(interrupted < 150 + 9, "it was killed before finishing")

        let resumed = try stacklab(["apply", "--auto-approve"], repo: repo, state: state)
        #expect(resumed.status == 0, "\(resumed.output.suffix(2000))")
        #expect(resumed.output.contains("note: recovered: closed run 1, whose process died"), "the operator is told: \(resumed.output.prefix(2000))")
        #expect(try stacklab(["plan"], repo: repo, state: state).status == 0)

        let store = try SQLiteState(directory: state.path)
        let runs = try store.runs()
        #expect(runs.map(\.status) == [.interrupted, .succeeded])
        let journal = try store.journalEntries()
        var doneCreates: [String: Int] = [:]
        for entry in journal where entry.status == .done && entry.action == .create { doneCreates[entry.changeID.description, default: 0] += 1 }
        #expect(doneCreates.values.allSatisfy { $0 == 1 }, "no change was done twice")
        // Every instance exists exactly once across the region's nodes.
        let loaded = try Loader().load(GitSource(repository: repo.path, revision: "HEAD"))
        let reconciler = Reconciler(model: loaded.model, revision: nil, stateDirectory: state.path, state: nil)
        let domains = try reconciler.observe(try reconciler.drivers(for: ["lab"])).flatMap(\.domains)
        #expect(domains.count == 153)
        #expect(Set(domains.map(\.name)).count == 153)
    }

    @Test func aSecondApplyOnTheSameRegionFailsClearlyInsteadOfInterleaving() throws {
        let (repo, state) = try deployment(instances: 300)  // enough work that the first apply is still running
        let first = try Command.start([StackLabBinary.path, "apply", "--auto-approve", "--parallelism", "1",
                                       "--repo", repo.path, "--state-dir", state.path])
        defer { Command.stop(first) }
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline, ((try? SQLiteState(directory: state.path).journalEntries()) ?? []).isEmpty { usleep(20_000) }
        let second = try stacklab(["apply", "--auto-approve", "--region", "lab"], repo: repo, state: state)
        #expect(second.status == 1)
        #expect(second.output.contains("region 'lab' is being applied by another stacklab process"))
    }

    @Test func massDeletesNeedAnExplicitFlag() throws {
        let (repo, state) = try deployment(instances: 8)
        #expect(try stacklab(["apply", "--auto-approve"], repo: repo, state: state).status == 0)
        try FileManager.default.removeItem(atPath: repo.file("manifests/bulk.yaml"))
        try repo.write("manifests/bulk.yaml", "kind: Image\nname: cirros\nspec: {format: qcow2, source: images/cirros.qcow2}\n")
        let refused = try stacklab(["apply", "--auto-approve"], repo: repo, state: state)
        #expect(refused.status == 1)
        #expect(refused.output.contains("deletes 8 of its 11 instances, more than the 25% allowed"))
        #expect(try stacklab(["plan"], repo: repo, state: state).status == 2, "nothing was deleted")
        let allowed = try stacklab(["apply", "--auto-approve", "--allow-mass-delete"], repo: repo, state: state)
        #expect(allowed.status == 0, "\(allowed.output.suffix(1000))")
        #expect(try stacklab(["plan"], repo: repo, state: state).status == 0)
    }

    @Test func driftCommandReportsAndApplyHeals() throws {
        let (repo, state) = try deployment(instances: 1)
        #expect(try stacklab(["apply", "--auto-approve"], repo: repo, state: state).status == 0)
        #expect(try stacklab(["drift"], repo: repo, state: state).status == 0)
        // Remove a domain behind StackLab's back: it is drift ("missing").
        let loaded = try Loader().load(GitSource(repository: repo.path, revision: "HEAD"))
        let reconciler = Reconciler(model: loaded.model, revision: nil, stateDirectory: state.path, state: nil)
        let drivers = try reconciler.drivers(for: ["lab"])
        let node = try #require(try reconciler.observe(drivers).first { $0.domains.contains { $0.name == "acme:bulk-0" } })
        try drivers[node.address]?.apply(.deleteDomain(domain: "acme:bulk-0", instance: .init(kind: .instance, region: "lab", tenant: "acme", name: "bulk-0")))
        let drift = try stacklab(["drift"], repo: repo, state: state)
        #expect(drift.status == 2)
        #expect(drift.output.contains("instance/lab/acme/bulk-0 on \(node.address) (missing"))
        #expect(try stacklab(["apply", "--auto-approve"], repo: repo, state: state).status == 0)
        #expect(try stacklab(["drift"], repo: repo, state: state).status == 0)
    }

    @Test func ringCommandsShowBuildAndValidate() throws {
        let (repo, state) = try deployment(instances: 1)
        let before = try stacklab(["ring", "validate", "lab"], repo: repo, state: state)
        #expect(before.status == 1)
        #expect(before.output.contains("ring/lab/object has not been built"))
        let preview = try stacklab(["ring", "show", "lab", "object"], repo: repo, state: state)
        #expect(preview.status == 0)
        #expect(preview.output.contains("not built yet"))
        #expect(preview.output.contains("lab-1/sdb"))
        #expect(try stacklab(["apply", "--auto-approve"], repo: repo, state: state).status == 0)
        let after = try stacklab(["ring", "validate", "lab"], repo: repo, state: state)
        #expect(after.status == 0, "\(after.output)")
        #expect(after.output.contains("ok: 1 ring of region lab"))
        let out = state.file("out")
        let build = try stacklab(["ring", "build", "lab", "--out", out], repo: repo, state: state)
        #expect(build.output.contains("ring/lab/object: unchanged, 0 replicas moved"))
        #expect(FileManager.default.fileExists(atPath: out + "/object.ring.gz"))
    }

    @Test func aFreshlyBuiltRingIsNotDriftButAnEditedOneIs() throws {
        let (repo, state) = try deployment(instances: 1)
        #expect(try stacklab(["apply", "--auto-approve"], repo: repo, state: state).status == 0)
        // More capacity: 'ring build' rebalances and saves the builder; the nodes still hold the ring they had.
        let nodes = try String(contentsOfFile: repo.file("regions/lab/nodes.yaml"), encoding: .utf8)
        try repo.write("regions/lab/nodes.yaml", nodes.replacingOccurrences(of: "    - {name: sdc, size: 2TB}", with: "    - {name: sdc, size: 2TB}\n    - {name: sdd, size: 4TB}"))
        try GitCLI.commitAll(in: repo.path)
        let build = try stacklab(["ring", "build", "lab", "--out", state.file("out")], repo: repo, state: state)
        #expect(build.output.contains("ring/lab/object: rebuilt"), "\(build.output)")
        let drift = try stacklab(["drift"], repo: repo, state: state)
        #expect(drift.status == 0, "a ring StackLab built but has not installed yet is not drift: \(drift.output)")
        let plan = try stacklab(["plan"], repo: repo, state: state)
        #expect(plan.output.contains("ring/lab/object  (spec changed)"), "\(plan.output)")
        #expect(try stacklab(["apply", "--auto-approve"], repo: repo, state: state).status == 0)
        // A ring file changed by hand is drift.
        let ring = state.file("nodes/lab/lab-2/etc/swift/object.ring.gz")
        try Data("not a ring".utf8).write(to: URL(fileURLWithPath: ring))
        let edited = try stacklab(["drift"], repo: repo, state: state)
        #expect(edited.status == 2)
        #expect(edited.output.contains("ring/lab/object on node/lab/lab-2 (drifted)"), "\(edited.output)")
    }

    @Test func commandLineSafetyRails() throws {
        let (repo, state) = try deployment(instances: 1)
        let version = try StackLabBinary.run(["--version"])
        #expect(version.status == 0 && version.output.contains("0.2.0"))
        // A --target that matches nothing is an error, not "No changes".
        let bogus = try stacklab(["plan", "--target", "instance/lab/acme/nosuch"], repo: repo, state: state)
        #expect(bogus.status == 1)
        #expect(bogus.output.contains("--target 'instance/lab/acme/nosuch' matches no resource"), "\(bogus.output)")
        // Outside a manifests repository: a clear error, and no state directory appears.
        let empty = try Scratch("not-a-repo")
        let outside = try StackLabBinary.run(["plan", "--repo", empty.path])
        #expect(outside.status == 1)
        #expect(outside.output.contains("is not a StackLab manifests repository"), "\(outside.output)")
        #expect(!FileManager.default.fileExists(atPath: empty.file(".stacklab")))
        let validateOutside = try StackLabBinary.run(["validate", "--repo", empty.path])
        #expect(validateOutside.status == 1)
        // A plan with errors is shown but never saved.
        try repo.write("manifests/vast.yaml", "kind: Flavor\nname: d1.vast\nspec: {vcpus: 1, ram: 1GiB, disk: 1500GiB}\n---\nkind: Instance\nname: vast\nregion: lab\ntenant: acme\nspec: {flavor: d1.vast, image: cirros, network: private}\n")
        let unplaceable = try stacklab(["plan", "--out", state.file("vast.json")], repo: repo, state: state)
        #expect(unplaceable.status == 1)
        #expect(unplaceable.output.contains("instance/lab/acme/vast: cannot place it: it needs 1 vCPUs, 1GiB RAM and 1500GiB disk"), "\(unplaceable.output)")
        #expect(unplaceable.output.contains("vast.json was not written"))
        #expect(!FileManager.default.fileExists(atPath: state.file("vast.json")))
        try FileManager.default.removeItem(atPath: repo.file("manifests/vast.yaml"))
        // JSON mode prints one JSON document on standard output, errors included.
        try repo.write("manifests/broken.yaml", "kind: Instance\nname: x\nregion: lab\ntenant: acme\nspec: {flavor: m1.nosuch, image: cirros, network: private}\n")
        for arguments in [["plan", "--format", "json", "--state-dir", state.path], ["show", "--format", "json"], ["validate", "--format", "json"]] {
            let result = try Command.run([StackLabBinary.path] + arguments + ["--repo", repo.path], stderr: .passedThrough)
            #expect(result.status == 1)
            let json = try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any]
            #expect(json?["ok"] as? Bool == false, "\(arguments): \(result.output)")
            #expect((json?["diagnostics"] as? [Any])?.isEmpty == false, "\(arguments)")
        }
        let jsonOutside = try Command.run([StackLabBinary.path, "plan", "--format", "json", "--repo", empty.path], stderr: .passedThrough)
        #expect((try JSONSerialization.jsonObject(with: Data(jsonOutside.output.utf8)) as? [String: Any])?["ok"] as? Bool == false)
    }
}
