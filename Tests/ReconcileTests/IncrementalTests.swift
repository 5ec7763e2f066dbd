import Foundation
@testable import SimulatedNodes
import ManifestSources
@testable import Drivers
import Manifests
import Planning
import StateSQLite
import TestSupport
import Testing
@testable import Reconcile

/// Reuse must never change a plan: the incremental planner and the stored memo give, commit after commit and
/// after node drift, exactly the plan a fresh load and full observation give.
@Suite struct IncrementalTests {
    typealias World = ConvergeWorld

    private func json(_ plan: Plan?) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(try #require(plan)), as: UTF8.self)
    }

    private func edit(_ world: World, _ path: String, replacing old: String, with new: String) throws {
        let text = try String(contentsOfFile: world.repo.file(path), encoding: .utf8)
        #expect(text.contains(old))
        try world.commit(path, text.replacingOccurrences(of: old, with: new))
    }

    @Test func theIncrementalPlannerGivesTheFullPlanCommitAfterCommit() throws {
        let world = try World()
        let planner = IncrementalPlanner(repository: world.repo.path, stateDirectory: world.state.path, state: { try SQLiteState.existing(directory: world.state.path) })

        let first = try planner.plan(revision: "HEAD")
        #expect(first.filesReused == 0 && first.filesDecoded > 0)
        #expect(first.reuse.regionsPlanned == 2)
        #expect(try json(first.plan) == json(try world.plan()))

        try world.apply()
        // Every node changed (its host file was rewritten): all observed again, and the plan is empty.
        let converged = try planner.plan(revision: "HEAD")
        #expect(converged.filesDecoded == 0)
        #expect(converged.reuse.nodesObserved == 6 && converged.reuse.nodesReused == 0)
        #expect(converged.plan?.isEmpty == true)
        #expect(try json(converged.plan) == json(try world.plan()))

        // Nothing changed: nothing decoded, observed or planned.
        let same = try planner.plan(revision: "HEAD")
        #expect(same.filesDecoded == 0 && same.reuse.regionsReused == 2 && same.reuse.nodesObserved == 0)

        // One document of region lab: one file decoded, lab planned (from kept observations), edge kept.
        try edit(world, "manifests/tenants/other.yaml", replacing: "spec: {flavor: m1.small, image: ubuntu, network: private, keypair: theirs}",
                 with: "spec: {flavor: m1.large, image: ubuntu, network: private, keypair: theirs}")
        let resized = try planner.plan(revision: "HEAD")
        #expect(resized.filesDecoded == 1)
        #expect(resized.reuse.regionsPlanned == 1 && resized.reuse.regionsReused == 1)
        #expect(resized.reuse.nodesObserved == 0)
        #expect(resized.plan?.changes.map { "\($0.action.rawValue) \($0.address)" } == ["update instance/lab/other/db-1"])
        #expect(try json(resized.plan) == json(try world.plan()))

        // A new file in region edge, then removed again.
        try world.repo.write("manifests/tenants/late.yaml", """
            kind: Instance
            name: late-1
            region: edge
            tenant: other
            spec: {flavor: m1.small, image: ubuntu, network: private, keypair: theirs}
            """)
        try GitCLI.commitAll(in: world.repo.path)
        let added = try planner.plan(revision: "HEAD")
        #expect(added.filesDecoded == 1)
        #expect(added.reuse.regionsPlanned == 1, "only edge gained a document")
        let addedText = try json(added.plan), fullText = try json(try world.plan())
        #expect(addedText == fullText)

        try FileManager.default.removeItem(atPath: world.repo.file("manifests/tenants/late.yaml"))
        try GitCLI.commitAll(in: world.repo.path)
        let removed = try planner.plan(revision: "HEAD")
        #expect(removed.filesDecoded == 0)
        #expect(try json(removed.plan) == json(try world.plan()))
    }

    @Test func aRulesetIsRenderedAgainOnlyWhenWhatItIsMadeOfOrWhatTheNodeRunsChanged() throws {
        let world = try World()
        let planner = IncrementalPlanner(repository: world.repo.path, stateDirectory: world.state.path, state: { try SQLiteState.existing(directory: world.state.path) })
        try world.apply()
        let converged = try planner.plan(revision: "HEAD")
        #expect(converged.plan?.isEmpty == true)
        #expect(converged.reuse.rulesetsKept == 0, "nothing was kept before")
        let observed = try world.observed()
        let computeInLab = observed.count { $0.address.region == "lab" && $0.firewall != nil }
        let computeInEdge = observed.count { $0.address.region == "edge" && $0.firewall != nil }
        #expect(computeInLab > 1 && computeInEdge > 0)

        // An instance resized: nothing any ruleset is made of changed, and every node runs what it ran. The region's whole
        // run is kept but for that instance's domain, the rulesets with it.
        try edit(world, "manifests/tenants/other.yaml", replacing: "spec: {flavor: m1.small, image: ubuntu, network: private, keypair: theirs}",
                 with: "spec: {flavor: m1.large, image: ubuntu, network: private, keypair: theirs}")
        let resized = try planner.plan(revision: "HEAD")
        #expect(resized.reuse.runsSpliced == 1 && resized.reuse.rulesetsKept == 0)
        #expect(try json(resized.plan) == json(try world.plan()))

        // A rule of acme's security group: what lab's nodes share changed, so each of their rulesets is rendered again.
        // Both regions are planned again (a tenant's document); edge has no member of the group, so its nodes keep theirs.
        try edit(world, "manifests/tenants/acme.yaml", replacing: "rules: [{protocol: tcp, ports: 443, cidr: 0.0.0.0/0}]",
                 with: "rules: [{protocol: tcp, ports: 443, cidr: 0.0.0.0/0}, {protocol: tcp, ports: 8080, cidr: 198.51.100.0/24}]")
        let opened = try planner.plan(revision: "HEAD")
        #expect(opened.reuse.regionsPlanned == 2)
        #expect(opened.reuse.rulesetsKept == computeInEdge)
        #expect(opened.plan?.changes.contains { $0.address.kind == .firewall } == true)
        #expect(try json(opened.plan) == json(try world.plan()))

        // Applied, then one node's installed ruleset edited by hand: that node's is rendered again (and put back).
        try world.apply()
        _ = try planner.plan(revision: "HEAD")
        let settled = try planner.plan(revision: "HEAD~0")
        #expect(settled.plan?.isEmpty == true)
        let web1 = try #require(try world.observed().first { $0.domains.contains { $0.address?.name == "web-1" } }).address
        let file = world.state.file("nodes/lab/\(web1.name)/etc/stacklab/firewall/stacklab.nft")
        let installed = try String(contentsOfFile: file, encoding: .utf8)
        try installed.replacingOccurrences(of: "tcp dport 8080", with: "tcp dport 8081").write(toFile: file, atomically: true, encoding: .utf8)
        try edit(world, "manifests/tenants/other.yaml", replacing: "spec: {flavor: m1.large, image: ubuntu, network: private, keypair: theirs}",
                 with: "spec: {flavor: m1.small, image: ubuntu, network: private, keypair: theirs}")
        let drifted = try planner.plan(revision: "HEAD")
        #expect(drifted.reuse.rulesetsKept == computeInLab - 1)
        #expect(drifted.plan?.changes.contains { $0.address == Address(kind: .firewall, region: "lab", name: web1.name) } == true)
        #expect(try json(drifted.plan) == json(try world.plan()))
    }

    @Test func aResizePlannedByTheServiceKeepsTheRegionsNetworking() throws {
        let world = try World()
        let planner = IncrementalPlanner(repository: world.repo.path, stateDirectory: world.state.path, state: { try SQLiteState.existing(directory: world.state.path) })
        try world.apply()
        _ = try planner.plan(revision: "HEAD")  // every node observed again: their fingerprints are known from now on
        try edit(world, "manifests/tenants/other.yaml", replacing: "flavor: m1.small, image", with: "flavor: m1.large, image")
        let first = try planner.plan(revision: "HEAD")
        #expect(first.reuse.regionsPlanned == 1)
        #expect(first.reuse.networkingKept == 0, "nothing was kept for lab before")
        #expect(try json(first.plan) == json(try world.plan()))
        try edit(world, "manifests/tenants/other.yaml", replacing: "flavor: m1.large, image", with: "flavor: m1.small, image")
        let second = try planner.plan(revision: "HEAD")
        #expect(second.reuse.runsSpliced == 1 && second.reuse.instancesReplanned == 1, "lab's last run is kept but for db-1's domain")
        #expect(second.plan?.isEmpty == true, "db-1 is back to the flavor it runs with")
        #expect(try json(second.plan) == json(try world.plan()))

        // As the service goes: a push applied, its nodes observed anew by the next plan (their fingerprints digested by
        // it), then the next push spliced into that plan's run.
        try edit(world, "manifests/tenants/other.yaml", replacing: "flavor: m1.small, image", with: "flavor: m1.large, image")
        try world.apply()
        let afterApply = try planner.plan(revision: "HEAD")
        #expect(afterApply.reuse.nodesObserved > 0 && afterApply.plan?.isEmpty == true)
        try edit(world, "manifests/tenants/other.yaml", replacing: "flavor: m1.large, image", with: "flavor: m1.small, image")
        let third = try planner.plan(revision: "HEAD")
        #expect(third.reuse.runsSpliced == 1 && third.reuse.instancesReplanned == 1, "the run planned after the apply is kept")
        #expect(try json(third.plan) == json(try world.plan()))
    }

    @Test func aRingsPlanIsKeptOnlyWhileItsSavedStateHourRingAndNodesAreTheSame() throws {
        let world = try World()
        try world.apply()
        let observed = try world.observed().filter { $0.address.region == "lab" }
        let memo = RegionMemo()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        /// Plans lab at HEAD with the memo and without it (the plans must be equal); how many ring plans were kept.
        func plan(hour: Int32, stamp: ((String?) -> String?)? = nil, _ comment: Comment, sourceLocation: Testing.SourceLocation = #_sourceLocation) throws -> Int {
            let reconciler = try world.reconciler()
            let model = reconciler.model
            let region = try #require(model.regions.first { $0.name == "lab" })
            let slice = RegionSlices(model, only: ["lab"])["lab"]
            var stored = try reconciler.storedRings(ofRegions: ["lab"])
            #expect(!stored.isEmpty && stored.values.allSatisfy { $0.stamp != nil }, comment, sourceLocation: sourceLocation)
            if let stamp {
                for address in stored.keys {
                    let was = stored[address]?.stamp
                    stored[address]?.stamp = stamp(was)
                }
            }
            let before = memo.ringPlansKept
            let withMemo = Planner.planRegion(region, slice: slice, catalog: Catalog(model), observed: observed, storedRings: stored, hour: hour, regionMemo: memo)
            let fresh = Planner.planRegion(region, slice: slice, catalog: Catalog(model), observed: observed, storedRings: stored, hour: hour)
            #expect(try encoder.encode(withMemo) == encoder.encode(fresh), comment, sourceLocation: sourceLocation)
            #expect(withMemo.errors.isEmpty, comment, sourceLocation: sourceLocation)
            return memo.ringPlansKept - before
        }
        let rings = try world.reconciler().model.rings.filter { $0.region == "lab" }.count
        #expect(rings > 0)
        #expect(try plan(hour: 500_000, "first") == 0)
        #expect(try plan(hour: 500_000, "the same") == rings)
        #expect(try plan(hour: 500_001, "an hour later") == 0)
        #expect(try plan(hour: 500_001, stamp: { ($0 ?? "") + "+" }, "the state saved again") == 0)
        #expect(try plan(hour: 500_001, stamp: { ($0 ?? "") + "+" }, "as saved again") == rings)
        #expect(try plan(hour: 500_001, stamp: { _ in nil }, "no stamp") == 0)
        #expect(try plan(hour: 500_001, "the state as saved") == 0, "the plan kept was the other state's")
        #expect(try plan(hour: 500_001, "nothing changed") == rings)
        try edit(world, "manifests/tenants/other.yaml", replacing: "flavor: m1.small, image", with: "flavor: m1.large, image")
        #expect(try plan(hour: 500_001, "an instance resized") == rings, "no document the rings are planned from changed")
        let nodes = try String(contentsOfFile: world.repo.file("regions/lab/nodes.yaml"), encoding: .utf8)
        try world.commit("regions/lab/nodes.yaml", "# first\n" + nodes)
        #expect(try plan(hour: 500_001, "every node one line down") == 0)
    }

    @Test func aRegionsNetworkingIsKeptOnlyWhileNothingItIsPlannedFromChanged() throws {
        let world = try World()
        try world.apply()
        let observed = try world.observed().filter { $0.address.region == "lab" }
        let fingerprints = Dictionary(uniqueKeysWithValues: observed.map { ($0.address, $0.fingerprint) })
        let memo = RegionMemo()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        /// Plans lab at HEAD with the memo and without it; the plans must be equal. True when the memo kept lab's networking
        /// (or the whole run but the changed instances' domains, which keeps their networking too).
        func plan(_ comment: Comment, sourceLocation: Testing.SourceLocation = #_sourceLocation) throws -> Bool {
            let model = try world.reconciler().model
            let region = try #require(model.regions.first { $0.name == "lab" })
            let slice = RegionSlices(model, only: ["lab"])["lab"]
            let before = (memo.networkingKept, memo.spliced.runs)
            let withMemo = Planner.planRegion(region, slice: slice, catalog: Catalog(model), observed: observed, storedRings: [:], hour: 0,
                                              regionMemo: memo, fingerprints: fingerprints)
            let fresh = Planner.planRegion(region, slice: slice, catalog: Catalog(model), observed: observed, storedRings: [:], hour: 0)
            #expect(try encoder.encode(withMemo) == encoder.encode(fresh), comment, sourceLocation: sourceLocation)
            return memo.networkingKept > before.0 || memo.spliced.runs > before.1
        }
        #expect(try !plan("first plan"), "nothing kept before")
        #expect(try plan("nothing changed"))
        try edit(world, "manifests/tenants/other.yaml", replacing: "flavor: m1.small, image", with: "flavor: m1.large, image")
        #expect(try plan("db-1 resized"))

        // Each thing lab's networking is planned from, changed in turn: planned again, then kept while it stays.
        let edits: [(path: String, old: String, new: String)] = [
            ("manifests/tenants/other.yaml", "keypair: theirs}", "keypair: theirs, userData: hello}"),
            ("manifests/tenants/other.yaml", "AAAAIFixtureKeyOther0123456789", "AAAAIFixtureKeyOther9876543210"),
            ("manifests/tenants/other.yaml", "userData: hello}", "userData: hello, securityGroups: [private]}"),
            ("manifests/tenants/other.yaml", "name: private\ntenant: other\nspec: {}",
             "name: private\ntenant: other\nspec: {rules: [{protocol: tcp, ports: 5432, cidr: 10.20.0.0/16}]}"),
            ("manifests/tenants/other.yaml", "securityGroups: [private]}", "securityGroups: [private], fixedIP: 10.20.0.20}"),
            ("manifests/tenants/acme.yaml", "spec: {address: 192.0.2.5, instance: web-1}", "spec: {address: 192.0.2.6, instance: web-1}"),
            ("manifests/tenants/acme.yaml", "rules: [{protocol: tcp, ports: 443, cidr: 0.0.0.0/0}]", "rules: [{protocol: tcp, ports: 8443, cidr: 0.0.0.0/0}]"),
            ("regions/lab/network.yaml", "dns: [10.20.0.2]", "dns: [10.20.0.3]"),
        ]
        for edit in edits {
            try self.edit(world, edit.path, replacing: edit.old, with: edit.new)
            #expect(try !plan("\(edit.new)"), "lab's networking is planned again after \(edit.new)")
            #expect(try plan("\(edit.new), again"))
        }
        // An instance renamed: the old one's domain is deleted, and what its node's DHCP and ruleset removals wait for is
        // not among the inputs: never kept while a domain is deleted.
        try edit(world, "manifests/tenants/other.yaml", replacing: "name: db-1\nregion: lab", with: "name: db-2\nregion: lab")
        #expect(try !plan("db-1 renamed"))
        #expect(try !plan("db-1 renamed, again"))
    }

    /// A region planned again from its last run decides only the instances whose documents changed, and only while
    /// they keep their places: every plan is compared with one made without the memo.
    @Test func aRegionsRunIsSplicedOnlyWhileTheChangedInstancesKeepTheirPlaces() throws {
        let world = try World()
        let memo = RegionMemo()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var observed: [ObservedNode] = []
        /// Plans lab at HEAD with the memo and without it; the plans must be equal. How many instances were decided again
        /// when the run was spliced, nil when lab was planned in full.
        func plan(_ comment: Comment, sourceLocation: Testing.SourceLocation = #_sourceLocation) throws -> Int? {
            let model = try world.reconciler().model
            let region = try #require(model.regions.first { $0.name == "lab" })
            let slice = RegionSlices(model, only: ["lab"])["lab"]
            let fingerprints = Dictionary(uniqueKeysWithValues: observed.map { ($0.address, $0.fingerprint) })
            let before = memo.spliced
            let withMemo = Planner.planRegion(region, slice: slice, catalog: Catalog(model), observed: observed, storedRings: [:], hour: 0,
                                              regionMemo: memo, fingerprints: fingerprints)
            let fresh = Planner.planRegion(region, slice: slice, catalog: Catalog(model), observed: observed, storedRings: [:], hour: 0)
            #expect(try encoder.encode(withMemo) == encoder.encode(fresh), comment, sourceLocation: sourceLocation)
            #expect(withMemo.changes.count == fresh.changes.count && withMemo.unchanged == fresh.unchanged, comment, sourceLocation: sourceLocation)
            return memo.spliced.runs > before.runs ? memo.spliced.instances - before.instances : nil
        }

        // Nothing applied: every instance is placed by room, so a run is never kept.
        observed = try world.observed().filter { $0.address.region == "lab" }
        #expect(try plan("nothing applied") == nil)
        #expect(try plan("nothing applied, again") == nil)

        try world.apply()
        observed = try world.observed().filter { $0.address.region == "lab" }
        #expect(try plan("applied") == nil)
        #expect(try plan("nothing changed") == 0)
        // A domain made by hand on a node: lab is planned in full, then kept with it (reported, and its name taken).
        let host = SimulatedNode.hostFile(stateDirectory: world.state.path, node: Address(kind: .node, region: "lab", name: "lab-2"))
        try String(contentsOfFile: host, encoding: .utf8).replacingOccurrences(of: "</node>", with: """
            <domain type='test'><name>handmade</name><memory unit='KiB'>1048576</memory><vcpu>1</vcpu><os><type>hvm</type></os></domain>
            </node>
            """).write(toFile: host, atomically: true, encoding: .utf8)
        observed = try world.observed().filter { $0.address.region == "lab" }
        #expect(observed.contains { $0.domains.contains { $0.name == "handmade" && $0.address == nil } })
        #expect(try plan("a handmade domain on lab-2") == nil)
        #expect(try plan("a handmade domain on lab-2, again") == 0)
        try edit(world, "manifests/catalog.yaml", replacing: "name: ubuntu\nspec: {format: qcow2, source: images/ubuntu.qcow2, minDisk: 5GiB}",
                 with: "name: ubuntu\nspec: {format: qcow2, source: images/ubuntu.qcow2, minDisk: 5GiB}\n---\nkind: Image\nname: debian\nspec: {format: qcow2, source: images/debian.qcow2}")
        #expect(try plan("an image added to the catalog") == nil)

        // What an instance may change and keep its place: each decided alone, the others' outcomes kept.
        let webOne = "  flavor: m1.small\n  image: ubuntu\n  network: private\n  keypair: deploy\n"
        let kept: [(path: String, old: String, new: String)] = [
            ("manifests/tenants/other.yaml", "flavor: m1.small, image", "flavor: m1.large, image"),
            ("manifests/tenants/other.yaml", "image: ubuntu, network: private, keypair: theirs}", "image: debian, network: private, keypair: theirs}"),
            ("manifests/tenants/other.yaml", "keypair: theirs}", "keypair: theirs, state: stopped}"),
            ("manifests/tenants/other.yaml", "state: stopped}", "state: stopped, billing: monthly}"),
            ("manifests/tenants/acme.yaml", webOne, webOne.replacingOccurrences(of: "m1.small", with: "m1.large")),
            ("manifests/tenants/other.yaml", "flavor: m1.large, image: debian", "flavor: m1.small, image: ubuntu"),
        ]
        for edit in kept {
            try self.edit(world, edit.path, replacing: edit.old, with: edit.new)
            #expect(try plan("\(edit.new)") == 1, "only the changed instance is decided again after \(edit.new)")
        }
        let bothInAcme = try String(contentsOfFile: world.repo.file("manifests/tenants/acme.yaml"), encoding: .utf8)
            .replacingOccurrences(of: "flavor: m1.large\n", with: "flavor: m1.small\n")
            .replacingOccurrences(of: "spec: {flavor: m1.large, image: ubuntu", with: "spec: {flavor: m1.small, image: ubuntu")
        try world.commit("manifests/tenants/acme.yaml", bothInAcme)
        #expect(try plan("web-1 and web-2 resized") == 2)

        // What places an instance, numbers it, or is read by networking, and every other document: planned in full, then
        // kept while it stays.
        let full: [(path: String, old: String, new: String)] = [
            ("manifests/tenants/other.yaml", "keypair: theirs,", "keypair: theirs, userData: hello,"),
            ("manifests/tenants/other.yaml", "userData: hello,", "userData: hello, securityGroups: [private],"),
            ("manifests/tenants/acme.yaml", "fixedIP: 10.20.0.10", "fixedIP: 10.20.0.11"),
            ("manifests/tenants/acme.yaml", "spec: {size: 100GiB, instance: web-1, device: vdb}", "spec: {size: 200GiB, instance: web-1, device: vdb}"),
            ("manifests/catalog.yaml", "spec: {vcpus: 4, ram: 8GiB, disk: 80GiB}", "spec: {vcpus: 4, ram: 16GiB, disk: 80GiB}"),
            ("regions/lab/nodes.yaml", "cpus: 16\n  memory: 64GiB\n  disks:\n    - {name: sdb, size: 2TB}\n    - {name: sdc, size: 2TB}\n---\nkind: Node\nname: lab-2",
             "cpus: 32\n  memory: 64GiB\n  disks:\n    - {name: sdb, size: 2TB}\n    - {name: sdc, size: 2TB}\n---\nkind: Node\nname: lab-2"),
        ]
        for edit in full {
            try self.edit(world, edit.path, replacing: edit.old, with: edit.new)
            #expect(try plan("\(edit.new)") == nil, "lab is planned in full after \(edit.new)")
            let again = try plan("\(edit.new), again")
            #expect(again == 0, "\(edit.new): \(String(describing: again))")
        }
        // Pinned to another node, or to another zone: placed by room, so never kept until it runs there.
        let dbNode = try #require(observed.first { $0.domains.contains { $0.address?.name == "db-1" } }).address.name
        let elsewhere = try #require(["lab-1", "lab-2", "lab-3"].first { $0 != dbNode })
        try edit(world, "manifests/tenants/other.yaml", replacing: "network: private, keypair: theirs", with: "network: private, zone: \(elsewhere), keypair: theirs")
        #expect(try plan("db-1 in another zone") == nil)
        #expect(try plan("db-1 in another zone, again") == nil)
        try edit(world, "manifests/tenants/other.yaml", replacing: "zone: \(elsewhere), keypair", with: "node: \(elsewhere), keypair")
        #expect(try plan("db-1 pinned to another node") == nil)
        #expect(try plan("db-1 pinned to another node, again") == nil)
        try edit(world, "manifests/tenants/other.yaml", replacing: "node: \(elsewhere), keypair", with: "node: \(dbNode), keypair")
        #expect(try plan("db-1 pinned where it runs") == nil)
        #expect(try plan("db-1 pinned where it runs, again") == 0)

        // A new instance is placed by room: never kept, until it runs.
        try world.commit("manifests/tenants/other.yaml", try String(contentsOfFile: world.repo.file("manifests/tenants/other.yaml"), encoding: .utf8)
            + "---\nkind: Instance\nname: db-2\nregion: lab\ntenant: other\nspec: {flavor: m1.small, image: ubuntu, network: private}\n")
        #expect(try plan("db-2 added") == nil)
        #expect(try plan("db-2 added, again") == nil)
    }

    @Test func anInvalidCommitGetsTheFullLoadsDiagnosticsAndNoPlan() throws {
        let world = try World()
        let planner = IncrementalPlanner(repository: world.repo.path, stateDirectory: world.state.path, state: { try SQLiteState.existing(directory: world.state.path) })
        _ = try planner.plan(revision: "HEAD")
        try edit(world, "manifests/tenants/other.yaml", replacing: "flavor: m1.small", with: "flavor: m1.smal")
        try world.repo.write("manifests/tenants/aaa-first.yaml", "kind: Instance\nname: x\nregion: nowhere\ntenant: other\nspec: {flavor: m1.small, image: ubuntu, network: private}\n")
        try GitCLI.commitAll(in: world.repo.path)

        let outcome = try planner.plan(revision: "HEAD")
        #expect(outcome.plan == nil)
        let full = try Loader().load(GitSource(repository: world.repo.path, revision: "HEAD"))
        let render = { (result: LoadResult) in DiagnosticRenderer(files: result.files).render(result.diagnostics) }
        #expect(full.hasErrors)
        #expect(render(outcome.load) == render(full), "same findings, same places, same order")

        try edit(world, "manifests/tenants/other.yaml", replacing: "flavor: m1.smal", with: "flavor: m1.small")
        try FileManager.default.removeItem(atPath: world.repo.file("manifests/tenants/aaa-first.yaml"))
        try GitCLI.commitAll(in: world.repo.path)
        let fixed = try planner.plan(revision: "HEAD")
        #expect(!fixed.load.hasErrors)
        #expect(try json(fixed.plan) == json(try world.plan()))
    }

    @Test func anUnknownRevisionIsAnErrorNamingTheRepository() throws {
        let world = try World()
        let planner = IncrementalPlanner(repository: world.repo.path, stateDirectory: world.state.path, state: { try SQLiteState.existing(directory: world.state.path) })
        do {
            _ = try planner.plan(revision: "no-such-branch")
            Issue.record("an unknown revision must fail")
        } catch {
            #expect("\(error)".contains(world.repo.path) && "\(error)".contains("no-such-branch"), "\(error)")
        }
        #expect(try planner.plan(revision: "HEAD").plan != nil, "the planner is still usable")
    }

    /// A node's generation is a digest of stamps (not their text): it must still change with every file the node's
    /// observation reads, including a DHCP host file edited in place (same inode, same directory), and a region whose
    /// node changed so is planned again, with the drift in its plan.
    @Test func aNodesGenerationFollowsEveryFileItsObservationReads() throws {
        let world = try World()
        try world.apply()
        let planner = IncrementalPlanner(repository: world.repo.path, stateDirectory: world.state.path, state: { try SQLiteState.existing(directory: world.state.path) })
        #expect(try planner.plan(revision: "HEAD").plan?.isEmpty == true)

        let web1 = try #require(try world.observed().first { $0.domains.contains { $0.address?.name == "web-1" } })
        let reconciler = try world.reconciler()
        let driver = try #require(try reconciler.drivers(for: try reconciler.regions([]))[web1.address])
        let root = String(SimulatedNode.hostFile(stateDirectory: world.state.path, node: web1.address).dropLast(".xml".count))
        let dhcp = root + NetworkFiles.dnsmasqDirectory
        let before = try #require((driver as? any GenerationTracking)?.generation())
        #expect((driver as? any GenerationTracking)?.generation() == before, "stable while nothing changes")

        // In place: the same inode in the same directory, one byte more.
        let host = try #require(try FileManager.default.contentsOfDirectory(atPath: dhcp).sorted().first)
        let handle = try #require(FileHandle(forUpdatingAtPath: "\(dhcp)/\(host)"))
        let inode = try #require(try FileManager.default.attributesOfItem(atPath: "\(dhcp)/\(host)")[.systemFileNumber] as? Int)
        handle.seekToEndOfFile()
        handle.write(Data("\n".utf8))
        try handle.close()
        #expect(try FileManager.default.attributesOfItem(atPath: "\(dhcp)/\(host)")[.systemFileNumber] as? Int == inode)
        let edited = try #require((driver as? any GenerationTracking)?.generation())
        #expect(edited != before, "an in-place edit of a DHCP host file changes the generation")

        // A file added to the metadata directory, then removed.
        let extra = root + NetworkFiles.metadataDirectory + "/stray.json"
        try Data("{}".utf8).write(to: URL(fileURLWithPath: extra))
        let added = try #require((driver as? any GenerationTracking)?.generation())
        #expect(added != edited)
        try FileManager.default.removeItem(atPath: extra)
        #expect((driver as? any GenerationTracking)?.generation() != added)

        // The region of the edited node is observed and planned again; what it plans is what a full plan says.
        let replanned = try planner.plan(revision: "HEAD")
        #expect(replanned.reuse.regionsPlanned == 1 && replanned.reuse.regionsReused == 1)
        #expect(try json(replanned.plan) == json(try world.plan()))
    }

    /// Regions are observed and planned in batches (each batch's observations let go once it is planned): planned one
    /// node at a time, the plan is the plan made at once, change for change, before and after an apply.
    @Test func aPlanMadeInBatchesIsThePlanMadeAtOnce() throws {
        let world = try World()
        func both() throws -> (whole: Plan, batched: Plan) {
            var reconciler = try world.reconciler()
            let regions = try reconciler.regions([])
            let whole = try reconciler.refreshPlan(regions)
            reconciler.batchNodes = 1
            return (whole, try reconciler.refreshPlan(regions))
        }
        let empty = try both()
        #expect(empty.whole.changes.count > 10 && empty.whole.changes.contains { $0.address.kind == .ring })
        #expect(try json(empty.batched) == json(empty.whole))
        try world.apply()
        try world.driftWeb1Memory(to: 1_048_576)
        let drifted = try both()
        #expect(drifted.whole.changes.map(\.address.name) == ["web-1"])
        #expect(try json(drifted.batched) == json(drifted.whole))

        let nodes = { (count: Int) in (0..<count).map { Address(kind: .node, region: "r", name: "n\($0)") } }
        #expect(Reconciler.batches(["a", "b", "c", "d"], nodes: ["a": nodes(3), "b": nodes(1), "c": nodes(1), "d": nodes(1)], batchNodes: 2)
                == [["a"], ["b", "c"], ["d"]])
    }

    /// A simulated node's saved observation stands in for parsing its host in a new process, and only while every file
    /// the observation read keeps its stamp, for this build, and while no change is held in the connection.
    @Test func aSavedObservationStandsInForTheHostOnlyWhileItsFilesKeepTheirStamps() throws {
        let world = try World()
        try world.apply()
        let web1 = try #require(try world.observed().first { $0.domains.contains { $0.address?.name == "web-1" } })
        let saved = SimulatedNode.observationFile(hostFile: SimulatedNode.hostFile(stateDirectory: world.state.path, node: web1.address))
        #expect(FileManager.default.fileExists(atPath: saved), "the apply saved each node's observation once its changes were done")
        func fresh() throws -> (driver: any NodeDriver, node: ObservedNode) {
            let reconciler = try world.reconciler()
            let driver = try #require(try reconciler.drivers(for: try reconciler.regions([]))[web1.address])
            return (driver, try driver.observe())
        }
        #expect(try fresh().node == web1)
        let original = try Data(contentsOf: URL(fileURLWithPath: saved))
        func savedText() throws -> String { try String(contentsOfFile: saved, encoding: .utf8) }
        func mark() throws {
            var marked = web1
            marked.cpus = 12345
            SavedObservation.write(marked, generation: try #require(try (fresh().driver as? any GenerationTracking)?.generation()), to: saved)
        }

        // What the saved file says is what a new driver returns: the host is not parsed.
        try mark()
        #expect(try fresh().node.cpus == 12345)

        // A body that is not the one its header's fingerprint names (two saves mixed, or an edit) is not believed.
        try savedText().replacingOccurrences(of: "\"cpus\":12345,", with: "\"cpus\":54321,").write(toFile: saved, atomically: true, encoding: .utf8)
        #expect(try fresh().node == web1)

        // A save killed half-way leaves the node's one temporary, which its next save replaces (nothing piles up).
        try Data("half a save".utf8).write(to: URL(fileURLWithPath: saved + ".tmp"))
        try mark()
        #expect(!FileManager.default.fileExists(atPath: saved + ".tmp"))
        #expect(try fresh().node.cpus == 12345)

        // Another build's, and a torn file: parsed again, and saved anew.
        try savedText().replacingOccurrences(of: "\"build\":\"", with: "\"build\":\"other-").write(toFile: saved, atomically: true, encoding: .utf8)
        #expect(try fresh().node == web1)
        #expect(try savedText().contains(BuildIdentity.current) && SavedObservation.read(saved, generation: try #require((fresh().driver as? any GenerationTracking)?.generation())) == web1)
        try original.prefix(original.count / 2).write(to: URL(fileURLWithPath: saved))
        #expect(try fresh().node == web1)
        #expect(try savedText().contains(BuildIdentity.current) && SavedObservation.read(saved, generation: try #require((fresh().driver as? any GenerationTracking)?.generation())) == web1)

        // The host changed (drift): parsed again, whatever the saved file says.
        try mark()
        try world.driftWeb1Memory(to: 1_048_576)
        let drifted = try fresh().node
        #expect(drifted.cpus == web1.cpus)
        #expect(drifted.domains.first { $0.address?.name == "web-1" }?.memoryKiB == 1_048_576)

        // A change held in the connection (not saved yet) is observed live and not saved; once flushed, it is.
        let driver = try #require(try fresh().driver as? any WriteBatching)
        let domain = try #require(drifted.domains.first { $0.address?.name == "web-1" })
        try driver.apply(.setPower(domain: domain.name, running: false), deferringWrite: true)
        #expect(try driver.observe().domains.first { $0.name == domain.name }?.state == .shutoff)
        #expect(try fresh().node.domains.first { $0.name == domain.name }?.state == .running, "nothing held is on disk or saved")
        try driver.flush()
        #expect(try driver.observe().domains.first { $0.name == domain.name }?.state == .shutoff)
        #expect(try savedText().contains("\"shutoff\""))
        #expect(try fresh().node.domains.first { $0.name == domain.name }?.state == .shutoff)
    }

    @Test func aStoredMemoSkipsConvergedRegionsUntilANodeOrDocumentChanges() throws {
        let world = try World()
        try world.apply()
        let loaded = try Loader().load(GitSource(repository: world.repo.path, revision: "HEAD"))
        let reconciler = Reconciler(model: loaded.model, revision: loaded.revision, stateDirectory: world.state.path, state: try SQLiteState.existing(directory: world.state.path))
        let regions = try reconciler.regions([])
        func memoPlan(refresh: Bool = false) throws -> (plan: Plan, reuse: ReuseStats) {
            var request = PlanRequest(refresh ? .refresh : .normal, regions: regions)
            request.memo = try StoredPlanMemo(store: SQLiteState(directory: world.state.path))
            let planned = try reconciler.plan(request)
            return (planned.plan, planned.reuse)
        }

        let cold = try memoPlan()
        #expect(cold.reuse.regionsPlanned == 2 && cold.reuse.nodesObserved == 6)
        let warm = try memoPlan()
        #expect(warm.reuse.regionsReused == 2 && warm.reuse.nodesObserved == 0)
        #expect(try json(warm.plan) == json(cold.plan), "the remembered plan is the plan, node fingerprints included")
        #expect(try memoPlan(refresh: true).reuse.nodesObserved == 6)

        // Drift on one node of lab: lab is observed and planned again and the drift shows; edge stays remembered.
        try world.driftWeb1Memory(to: 1_048_576)
        let drifted = try memoPlan()
        #expect(drifted.reuse.regionsPlanned == 1 && drifted.reuse.regionsReused == 1)
        #expect(drifted.plan.changes.map { "\($0.action.rawValue) \($0.address) (\($0.reason.rawValue))" } == ["update instance/lab/acme/web-1 (drifted)"])
        #expect(try json(drifted.plan) == json(try world.plan()))
    }
}
