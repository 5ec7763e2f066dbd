import Foundation
import SimulatedNodes
import Drivers
import ManifestSources
import Manifests
import Planning
import Processes
import StateSQLite
import TestSupport
import Testing
@testable import Reconcile

/// Plan and apply against simulated nodes on libvirt's test driver (real libvirt), with real git revisions.
@Suite struct ConvergeTests {
    /// A deployment checked into git, with a state directory of its own.
    typealias World = ConvergeWorld

    private func actionable(_ plan: Plan) -> [String] {
        plan.changes.map { "\($0.action.rawValue) \($0.address) (\($0.reason.rawValue))" }
    }

    @Test func firstPlanCreatesEverythingThenApplyConvergesAndThePlanIsEmpty() throws {
        let world = try World()
        let first = try world.plan()
        #expect(first.changes.allSatisfy { $0.action == .create })
        #expect(first.changes.filter { $0.address.kind == .instance }.count == 3)
        #expect(first.changes.filter { $0.address.kind == .network }.count == 6)
        let report = try world.apply()
        #expect(report.succeeded)
        let second = try world.plan()
        #expect(second.isEmpty, "\(actionable(second))")
        let domains = try world.observed().flatMap(\.domains)
        #expect(domains.compactMap(\.address).map(\.description).sorted() == [
            "instance/lab/acme/web-1", "instance/lab/acme/web-2", "instance/lab/other/db-1"])
        #expect(domains.first { $0.address?.name == "web-1" }?.ip?.description == "10.20.0.10")
    }

    @Test func growingAFlavorRestartsTheInstanceAndGrowsItsDisk() throws {
        let world = try World()
        try world.apply()
        let text = try String(contentsOfFile: world.repo.file("manifests/tenants/acme.yaml"), encoding: .utf8)
        let small = text.components(separatedBy: "---").first { $0.contains("name: web-1") }!
        try world.commit("manifests/tenants/acme.yaml", text.replacingOccurrences(of: small, with: small.replacingOccurrences(of: "m1.small", with: "m1.large")))
        let plan = try world.plan()
        #expect(actionable(plan) == ["update instance/lab/acme/web-1 (spec changed)"])
        let update = try #require(plan.changes.first { $0.action == .update })
        #expect(update.fields.map { "\($0.field): \($0.old) → \($0.new)" } == ["flavor: m1.small → m1.large", "vcpus: 1 → 4", "memory: 2GiB → 8GiB", "disk vda: 20GiB → 80GiB"])
        #expect(update.restarts, "a running instance whose hardware changes restarts, and the plan says so")
        #expect(try world.apply().succeeded)
        #expect(try world.plan().isEmpty, "every field converged, the root volume's size included")
        let web1 = try #require(try world.observed().flatMap(\.domains).first { $0.address?.name == "web-1" })
        #expect(web1.vcpus == 4 && web1.memoryKiB == 8 << 20 && web1.state == .running)
        let root = DesiredDomain.volumePrefix(for: Address(kind: .instance, region: "lab", tenant: "acme", name: "web-1")) + "-root"
        #expect(try world.observed().compactMap { $0.volumes[root] } == [80 << 30])
        #expect(try world.plan(rev: "HEAD~1").errors.map(\.message).first?.contains("would shrink from 80GiB to 20GiB") == true,
                "going back would shrink the disk: refused, not silently ignored")
    }

    @Test func growingWithinTheHeadroomIsLiveAndNeverRestarts() throws {
        let world = try World()
        try world.apply()
        try world.commit("manifests/medium.yaml", "kind: Flavor\nname: m1.medium\nspec: {vcpus: 2, ram: 4GiB, disk: 40GiB}\n")
        let text = try String(contentsOfFile: world.repo.file("manifests/tenants/acme.yaml"), encoding: .utf8)
        let small = text.components(separatedBy: "---").first { $0.contains("name: web-1") }!
        try world.commit("manifests/tenants/acme.yaml", text.replacingOccurrences(of: small, with: small.replacingOccurrences(of: "m1.small", with: "m1.medium")))
        let plan = try world.plan()
        let update = try #require(plan.changes.first { $0.address.name == "web-1" })
        #expect(update.fields.map { "\($0.field): \($0.old) → \($0.new)" } == ["flavor: m1.small → m1.medium", "vcpus: 1 → 2", "memory: 2GiB → 4GiB", "disk vda: 20GiB → 40GiB"])
        #expect(!update.restarts, "within the maximums it was defined with, a running instance grows live")
        guard case .node(.defineDomain(_, restart: false)) = update.operation else { Issue.record("\(update.operation)"); return }
        #expect(try world.apply().succeeded)
        #expect(try world.plan().isEmpty)
        let web1 = try #require(try world.observed().flatMap(\.domains).first { $0.address?.name == "web-1" })
        #expect(web1.state == .running && web1.vcpus == 2 && web1.memoryKiB == 4 << 20)

        // Back down is a shrink: the plan restarts it (and the disk cannot shrink at all).
        try world.commit("manifests/tenants/acme.yaml", text)
        #expect(try world.plan().errors.first?.message.contains("would shrink from 40GiB to 20GiB") == true)
    }

    @Test func anImageChangeIsAVisibleReplacementThatNeedsConsent() throws {
        let world = try World()
        try world.apply()
        let text = try String(contentsOfFile: world.repo.file("manifests/tenants/acme.yaml"), encoding: .utf8)
        let web1 = text.components(separatedBy: "---").first { $0.contains("name: web-1") }!
        try world.repo.write("manifests/cirros.yaml", "kind: Image\nname: cirros\nspec: {format: qcow2, source: images/cirros.qcow2}\n")
        try world.commit("manifests/tenants/acme.yaml", text.replacingOccurrences(of: web1, with: web1.replacingOccurrences(of: "image: ubuntu", with: "image: cirros")))
        let plan = try world.plan()
        let replace = try #require(plan.changes.first { $0.address.name == "web-1" })
        #expect(replace.action == .replace && replace.reason == .imageChanged && replace.restarts)
        #expect(replace.destroys.count == 1 && replace.destroys[0].contains("-root (20GiB)"))
        let reconciler = try world.reconciler()
        let refused = ReconcileRun(reconciler: reconciler, options: .init(), leases: LocalRegionLeases(stateDirectory: world.state.path)) { try SQLiteState(directory: world.state.path) }
        #expect(throws: ReconcileRun.Refusal.self) { try refused.run() }
        var options = ReconcileRun.Options()
        options.allowReplace = true
        let report = try ReconcileRun(reconciler: reconciler, options: options, leases: LocalRegionLeases(stateDirectory: world.state.path)) { try SQLiteState(directory: world.state.path) }.run()
        #expect(report.applied?.succeeded == true)
        #expect(report.remaining?.isEmpty == true)
        #expect(try world.observed().flatMap(\.domains).first { $0.address?.name == "web-1" }?.image == "cirros")
    }

    @Test func deletingAnInstancePlansExactlyOneDelete() throws {
        let world = try World()
        try world.apply()
        let text = try String(contentsOfFile: world.repo.file("manifests/tenants/other.yaml"), encoding: .utf8)
        let trimmed = text.components(separatedBy: "---\nkind: Instance")[0]
        try world.commit("manifests/tenants/other.yaml", trimmed)
        let plan = try world.plan()
        let node = try #require(plan.changes.first?.target.node?.name)
        #expect(actionable(plan) == ["delete instance/lab/other/db-1 (removed from manifests)", "update dhcp/lab/\(node) (spec changed)",
                                     "update firewall/lab/\(node) (spec changed)"], "its DHCP entry and its rules go with it")
        #expect(plan.changes[1].fields.map(\.field) == ["- private host"])
        #expect(try world.apply().succeeded)
        #expect(try world.plan().isEmpty)
        #expect(!(try world.observed().flatMap(\.domains).contains { $0.address?.name == "db-1" }))
        let prefix = DesiredDomain.volumePrefix(for: Address(kind: .instance, region: "lab", tenant: "other", name: "db-1"))
        #expect(!(try world.observed().flatMap(\.volumes.keys).contains { $0.hasPrefix(prefix) }), "its volumes are gone too")
        #expect(try world.observed().flatMap(\.volumes).count == 3, "web-1 and web-2 keep their root volumes, and web-1 its volume 'data'")
    }

    @Test func deletesComeInAddressOrderWhetherTheInstanceLeftOrMoved() throws {
        let world = try World()
        try world.apply()
        let db1 = try #require(try world.observed().first { $0.domains.contains { $0.address?.name == "db-1" } }).address.name
        let elsewhere = try #require(["lab-1", "lab-2", "lab-3"].first { $0 != db1 })
        // acme's web-2 leaves the manifests; other's db-1 is pinned to another node (a move: its old copy is deleted).
        let acme = try String(contentsOfFile: world.repo.file("manifests/tenants/acme.yaml"), encoding: .utf8)
        let web2 = "---\nkind: Instance\nname: web-2\nregion: lab\ntenant: acme\nspec: {flavor: m1.large, image: ubuntu, network: private, keypair: deploy}\n"
        #expect(acme.contains(web2))
        try world.commit("manifests/tenants/acme.yaml", acme.replacingOccurrences(of: web2, with: ""))
        let other = try String(contentsOfFile: world.repo.file("manifests/tenants/other.yaml"), encoding: .utf8)
        try world.commit("manifests/tenants/other.yaml", other.replacingOccurrences(
            of: "spec: {flavor: m1.small, image: ubuntu, network: private, keypair: theirs}",
            with: "spec: {flavor: m1.small, image: ubuntu, network: private, keypair: theirs, node: \(elsewhere)}"))
        let deletes = try world.plan().changes.filter { $0.action == .delete && $0.address.kind == .instance }
        #expect(deletes.map { "\($0.address) \($0.reason.rawValue)" } == ["instance/lab/acme/web-2 removed from manifests", "instance/lab/other/db-1 moved"])
    }

    @Test func anUnmanagedDomainIsReportedAndLeftAlone() throws {
        let world = try World()
        try world.apply()
        let host = SimulatedNode.hostFile(stateDirectory: world.state.path, node: Address(kind: .node, region: "lab", name: "lab-2"))
        let xml = try String(contentsOfFile: host, encoding: .utf8)
        try xml.replacingOccurrences(of: "</node>", with: """
            <domain type='test'><name>handmade</name><memory unit='KiB'>1048576</memory><vcpu>1</vcpu><os><type>hvm</type></os></domain>
            </node>
            """).write(toFile: host, atomically: true, encoding: .utf8)
        let plan = try world.plan()
        #expect(plan.isEmpty)
        #expect(plan.unmanaged == [Plan.Unmanaged(node: Address(kind: .node, region: "lab", name: "lab-2"), kind: "domain", name: "handmade")])
        try world.apply()
        #expect(try world.observed().flatMap(\.domains).contains { $0.name == "handmade" && $0.address == nil })
    }

    @Test func driftIsReportedAndHealed() throws {
        let world = try World()
        try world.apply()
        try world.driftWeb1Memory(to: 4_194_304)

        let plan = try world.plan()
        #expect(actionable(plan) == ["update instance/lab/acme/web-1 (drifted)"])
        #expect(plan.changes.first { $0.action == .update }?.fields.map(\.field) == ["memory"])
        #expect(try world.apply().succeeded)
        #expect(try world.plan().isEmpty)
        #expect(try world.observed().flatMap(\.domains).first { $0.address?.name == "web-1" }?.memoryKiB == 2_097_152)
    }

    @Test func anInstanceThatFitsNoNodeIsUnplaceableWithTheShortfall() throws {
        let world = try World()
        try world.commit("manifests/big.yaml", """
            kind: Flavor
            name: x1.big
            spec: {vcpus: 2, ram: 100GiB, disk: 10GiB}
            ---
            kind: Instance
            name: whale
            region: lab
            tenant: acme
            spec: {flavor: x1.big, image: ubuntu, network: private}
            """)
        let plan = try world.plan()
        #expect(plan.errors.map(\.address.description) == ["instance/lab/acme/whale"])
        #expect(plan.errors.first?.message.contains("100GiB RAM") == true)
        #expect(!plan.changes.contains { $0.address.name == "whale" })
    }

    @Test func stoppedInstancesArePoweredOffAndPowerChangesArePlanned() throws {
        let world = try World()
        try world.apply()
        let text = try String(contentsOfFile: world.repo.file("manifests/tenants/other.yaml"), encoding: .utf8)
        try world.commit("manifests/tenants/other.yaml", text.replacingOccurrences(of: "keypair: theirs}", with: "keypair: theirs, state: stopped}"))
        #expect(actionable(try world.plan()) == ["power instance/lab/other/db-1 (power state)"])
        #expect(try world.apply().succeeded)
        #expect(try world.observed().flatMap(\.domains).first { $0.address?.name == "db-1" }?.state == .shutoff)
        #expect(try world.plan().isEmpty)
    }

    @Test func aFailedChangeSkipsItsDependentsOnlyAndIsJournaled() throws {
        let world = try World()
        let reconciler = try world.reconciler()
        let regions = try reconciler.regions([])
        var drivers = try reconciler.drivers(for: regions)
        let lab1 = Address(kind: .node, region: "lab", name: "lab-1")
        drivers[lab1] = FailingNode(wrapping: drivers[lab1]!, failing: "private")
        let plan = try reconciler.refreshPlan(regions, drivers: drivers)
        let store = try SQLiteState(directory: world.state.path)
        let report = try Applier(backoff: 0.01).apply(plan, drivers: drivers, state: store)
        #expect(!report.succeeded)
        let byID = Dictionary(report.outcomes.map { ($0.change.id.description, $0.outcome) }, uniquingKeysWith: { a, _ in a })
        #expect(byID["network/lab/private@node/lab/lab-1"] == .failed("node/lab/lab-1: injected failure"))
        let onLab1 = report.outcomes.filter { $0.change.target == .node(lab1) && $0.change.address.kind == .instance }
        #expect(!onLab1.isEmpty && onLab1.allSatisfy { if case .skipped = $0.outcome { true } else { false } })
        #expect(report.outcomes.filter { $0.change.target != .node(lab1) }.allSatisfy { $0.outcome != .failed("node/lab/lab-1: injected failure") })
        let journal = try store.journalEntries(run: report.run)
        #expect(journal.first { $0.changeID.description == "network/lab/private@node/lab/lab-1" }?.attempts == 3, "transient failures are retried")
        #expect(journal.contains { $0.status == .skipped })
        // The next apply completes what was skipped.
        #expect(try world.apply().succeeded)
        #expect(try world.plan().isEmpty)
    }
}

@Suite struct MoveAndTargetTests {
    typealias World = ConvergeWorld

    /// Converges, then pins web-2 to a node other than the one it runs on: its old node, and the new node's name.
    static func pinWebTwoElsewhere(_ world: World) throws -> (ObservedNode, String) {
        try world.apply()
        let before = try #require(try world.observed().first { $0.domains.contains { $0.address?.name == "web-2" } })
        let target = ["lab-1", "lab-2", "lab-3"].first { $0 != before.address.name }!
        let text = try String(contentsOfFile: world.repo.file("manifests/tenants/acme.yaml"), encoding: .utf8)
        try world.commit("manifests/tenants/acme.yaml", text.replacingOccurrences(
            of: "spec: {flavor: m1.large, image: ubuntu, network: private, keypair: deploy}",
            with: "spec: {flavor: m1.large, image: ubuntu, network: private, keypair: deploy, node: \(target)}"))
        return (before, target)
    }

    @Test func pinningToAnotherNodeMovesTheInstance() throws {
        let world = try World()
        let (before, target) = try Self.pinWebTwoElsewhere(world)
        let plan = try world.plan()
        let moves = plan.changes.filter { $0.address.kind == .instance }
        #expect(Set(plan.changes.filter { $0.address.kind == .dhcp }.map(\.target.node!.name)) == [before.address.name, target],
                "the DHCP entry moves with it")
        #expect(moves.map { "\($0.action.rawValue) \($0.target.node!.name) (\($0.reason.rawValue))" } ==
                ["delete \(before.address.name) (moved)", "create \(target) (moved)"])
        #expect(moves.first?.dependsOn == [moves.last!.id], "the old domain goes only once the new one has its disks")
        #expect(moves.first?.destroys == [], "a move copies the disks: nothing is destroyed")
        #expect(moves.last?.fields.map(\.field) == ["node", "disks copied"])
        #expect(try world.apply().succeeded)
        #expect(try world.plan().isEmpty)
        let after = try world.observed().filter { $0.domains.contains { $0.address?.name == "web-2" } }.map(\.address.name)
        #expect(after == [target])
    }

    @Test func aMoveInterruptedAfterTheCopyKeepsTheCopyAndDeletesTheOldDomain() throws {
        let world = try World()
        let (before, target) = try Self.pinWebTwoElsewhere(world)
        // The copy happens; the process dies before the old domain's delete.
        let reconciler = try world.reconciler()
        let drivers = try reconciler.drivers(for: ["lab"])
        let plan = try reconciler.refreshPlan(["lab"], drivers: drivers)
        let move = try #require(plan.changes.first { $0.action == .create && $0.reason == .moved })
        guard case .transfer(.moveDomain(let domain, let from, let name)) = move.operation else { Issue.record("not a move: \(move.operation)"); return }
        try #require(drivers[move.target.node!]).receive(domain, from: try #require(drivers[from]), sourceDomain: name)

        let both = try world.observed().filter { $0.domains.contains { $0.address?.name == "web-2" } }
        #expect(both.count == 2, "two copies for now")
        #expect(both.first { $0.address.name == before.address.name }?.domains.first { $0.address?.name == "web-2" }?.state == .shutoff, "the old one was stopped before the copy")
        let resumed = try world.plan()
        #expect(resumed.changes.filter { $0.address.kind == .instance }.map { "\($0.action.rawValue) \($0.target.node!.name)" } == ["delete \(before.address.name)"],
                "the copy (it names its origin) is kept; only the stale original goes: \(resumed.changes.map(\.id))")
        #expect(try world.apply().succeeded)
        #expect(try world.plan().isEmpty)
        #expect(try world.observed().filter { $0.domains.contains { $0.address?.name == "web-2" } }.map(\.address.name) == [target])
    }

    @Test func aStaleCopyOnTheNodeAnInstanceIsPinnedToGoesFirstThenTheMove() throws {
        let world = try World()
        try world.apply()
        let before = try #require(try world.observed().first { $0.domains.contains { $0.address?.name == "web-2" } }).address
        // The stray copy sits on a node that sorts after the running one (before, that gave two changes with one id:
        // the stray's delete and the move's create, both instance/lab/acme/web-2 on that node).
        let target = ["lab-1", "lab-2", "lab-3"].last { $0 != before.name }!
        let targetNode = Address(kind: .node, region: "lab", name: target)
        #expect(LibvirtNodeTestAccess.copy(domain: "acme:web-2", stateDirectory: world.state.path, from: before, to: targetNode))
        let text = try String(contentsOfFile: world.repo.file("manifests/tenants/acme.yaml"), encoding: .utf8)
        try world.commit("manifests/tenants/acme.yaml", text.replacingOccurrences(
            of: "spec: {flavor: m1.large, image: ubuntu, network: private, keypair: deploy}",
            with: "spec: {flavor: m1.large, image: ubuntu, network: private, keypair: deploy, node: \(target)}"))
        let first = try world.plan()
        #expect(Set(first.changes.map(\.id)).count == first.changes.count, "one change per id: \(first.changes.map(\.id))")
        let instance = first.changes.filter { $0.address.kind == .instance }
        #expect(instance.map { "\($0.action.rawValue) \($0.target.node!.name)" } == ["delete \(target)"], "\(instance.map(\.id))")
        #expect(try world.apply().succeeded)
        let second = try world.plan()
        #expect(second.changes.filter { $0.address.kind == .instance }.map { "\($0.action.rawValue) \($0.target.node!.name) (\($0.reason.rawValue))" }
                == ["delete \(before.name) (moved)", "create \(target) (moved)"])
        #expect(try world.apply().succeeded)
        #expect(try world.plan().isEmpty)
        #expect(try world.observed().filter { $0.domains.contains { $0.address?.name == "web-2" } }.map(\.address.name) == [target])
    }

    @Test func targetsLimitThePlanButKeepDependencies() throws {
        let world = try World()
        let reconciler = try world.reconciler()
        let plan = try reconciler.refreshPlan(["lab", "edge"], targets: ["instance/lab/acme/web-1"])
        let instance = try #require(plan.changes.first { $0.address.kind == .instance })
        #expect(plan.changes.filter { $0.address.kind == .instance }.map(\.address.description) == ["instance/lab/acme/web-1"])
        #expect(plan.changes.filter { $0.address.kind == .network }.map(\.id) == instance.dependsOn)
    }

    @Test func aPausedInstanceIsStillDeleted() throws {
        let world = try World()
        try world.apply()
        let reconciler = try world.reconciler()
        let drivers = try reconciler.drivers(for: ["lab"])
        let node = try #require(try reconciler.observe(drivers).first { $0.domains.contains { $0.address?.name == "db-1" } })
        // Pause it through libvirt, as a stuck instance would be, and save the simulated node.
        let host = LibvirtNodeTestAccess.pause(domain: "other:db-1", stateDirectory: world.state.path, node: node.address)
        #expect(host)
        #expect(try world.observed().flatMap(\.domains).first { $0.name == "other:db-1" }?.state == .paused)
        let text = try String(contentsOfFile: world.repo.file("manifests/tenants/other.yaml"), encoding: .utf8)
        try world.commit("manifests/tenants/other.yaml", text.components(separatedBy: "---\nkind: Instance")[0])
        #expect(try world.apply().succeeded)
        #expect(!(try world.observed().flatMap(\.domains).contains { $0.name == "other:db-1" }))
    }
}

@Suite struct BundledDeploymentTests {
    @Test func theReferenceDeploymentConvergesAndThenHasNothingToDo() throws {
        let repo = try Scratch("bundled")
        for root in ManifestLayout.roots {
            try repo.overlay(from: (Fixtures.packageRoot as NSString).appendingPathComponent(root), into: root)
        }
        try GitCLI.commitAll(in: repo.path)
        let state = try Scratch("bundled-state")
        let loaded = try Loader().load(GitSource(repository: repo.path, revision: "HEAD"))
        let reconciler = Reconciler(model: loaded.model, revision: loaded.revision, stateDirectory: state.path, state: try SQLiteState.existing(directory: state.path))
        let regions = try reconciler.regions([])
        let drivers = try reconciler.drivers(for: regions)
        let first = try reconciler.refreshPlan(regions, drivers: drivers)
        #expect(first.changes.filter { $0.address.kind == .instance && $0.action == .create }.count == loaded.model.instances.count)
        #expect(first.errors.isEmpty)
        #expect(try Applier().apply(first, drivers: drivers, state: try SQLiteState(directory: state.path)).succeeded)
        var after = reconciler
        after.state = try SQLiteState(directory: state.path)
        let observed = try after.observe(try after.drivers(for: regions))
        #expect(try after.refreshPlan(regions).isEmpty)
        // Each simulated node reports the CPUs and memory its Node document declares.
        let declared = Dictionary(uniqueKeysWithValues: loaded.model.nodes.map { (Address(kind: .node, region: $0.region, name: $0.name), $0.spec) })
        #expect(observed.allSatisfy { $0.cpus == declared[$0.address]?.cpus.value && UInt64($0.memoryKiB) << 10 == declared[$0.address]?.memory.value.bytes })
        #expect(observed.contains { $0.proxy?.contains("www.devops.lb.sina.stacklab.org") == true }, "sina's load-balancer node runs the devops load balancer")
        let volumes = observed.flatMap(\.volumes.keys)
        #expect(volumes.count == loaded.model.instances.count + loaded.model.instances.count { ["m1.large"].contains($0.spec.flavor.value) } + loaded.model.volumes.count,
                "a root volume per instance, an ephemeral one per m1.large, and each Volume")
        // Each Volume is on its instance's node, at its size, attached as its device.
        for volume in loaded.model.volumes {
            let name = DesiredDomain.volumeName(for: volume.address)
            let node = try #require(observed.first { $0.domains.contains { $0.address?.name == volume.spec.instance?.value && $0.address?.tenant == volume.tenant } })
            #expect(node.volumes[name] == volume.spec.size.value.bytes, "\(volume.address) on \(node.address)")
            let xml = try String(contentsOfFile: SimulatedNode.hostFile(stateDirectory: state.path, node: node.address), encoding: .utf8)
            let disk = try #require(xml.range(of: "volume='\(name)'/>"))
            #expect(xml[disk.upperBound...].drop { $0.isWhitespace }.hasPrefix("<target dev='\(volume.spec.device?.value ?? "")'"), "\(volume.address) attached as its device")
        }
        let devstack = observed.flatMap(\.domains).first { $0.name == "devops:devstack" }
        #expect(devstack?.state == .shutoff, "devstack is declared stopped")

        // Every compute node runs a ruleset nft accepts, and serves DHCP for exactly its own instances.
        let compute = loaded.model.nodes.filter { $0.spec.has(.compute) }
        #expect(observed.filter { $0.firewall != nil }.count == compute.count)
        for node in observed {
            let file = state.file("nodes/\(node.address.region!)/\(node.address.name)/etc/stacklab/firewall/stacklab.nft")
            guard FileManager.default.fileExists(atPath: file) else { continue }
            let check = try Command.run(["nft", "-c", "-f", file])
            #expect(check.status == 0, "\(node.address): \(check.output)")
            let hosts = Set(node.dhcp?.networks.flatMap(\.hosts).map(\.ip) ?? [])
            #expect(hosts == Set(node.domains.compactMap(\.ip)), "\(node.address) hands out exactly its instances' addresses")
        }
    }
}
