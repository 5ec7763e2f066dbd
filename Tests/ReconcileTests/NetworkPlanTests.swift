import Foundation
import Drivers
import Manifests
import Planning
import TestSupport
import Testing
@testable import Reconcile

/// Each kind of network change plans exactly the rule and binding changes it causes, on the nodes it concerns, and a
/// ruleset edited by hand is drift.
@Suite struct NetworkPlanTests {
    typealias World = ConvergeWorld

    /// The firewall and DHCP changes of a plan as `kind/node: field value` lines.
    private func networking(_ plan: Plan) -> [String] {
        plan.changes.filter { $0.address.kind == .firewall || $0.address.kind == .dhcp }.flatMap { change in
            change.fields.map { "\(change.address.kind.addressName)/\(change.target.node!.name) \($0.field): \($0.new.isEmpty ? $0.old : $0.new)" }
        }
    }

    private func node(of instance: String, in world: World) throws -> String {
        try #require(try world.observed().first { $0.domains.contains { $0.address?.name == instance } }).address.name
    }

    @Test func aNewFilterGrantAddsOneRuleOnTheNodesOfThatTenant() throws {
        let world = try World()
        try world.apply()
        let web1 = try node(of: "web-1", in: world)
        try world.commit("manifests/filter.yaml", """
            kind: Filter
            name: ops
            spec:
              protect: [172.16.0.0/12]
              allow: [{tenants: [acme], to: [172.16.8.0/24], ports: [5432]}]
            """)
        let lines = networking(try world.plan())
        // What it opens never includes an instance: lab's fixed and floating ranges are left out.
        #expect(lines.contains { $0.hasPrefix("firewall/\(web1) + rule: forward: iifname \"br100\" ip saddr")
                    && $0.contains("ip daddr 172.16.8.0/24 ip daddr != { 10.20.0.0/16, 192.0.2.0/28 } tcp dport 5432 accept (filter/ops#1)") },
                "\(lines)")
        #expect(lines.allSatisfy { $0.contains("filter/ops#1") || $0.contains("internalRanges") }, "nothing else changes: \(lines)")
        #expect(!lines.contains { $0.hasPrefix("dhcp/") })
        #expect(try world.apply().succeeded)
        #expect(try world.plan().isEmpty)
    }

    @Test func aNewSecurityGroupRuleAddsOneRuleForEachMember() throws {
        let world = try World()
        try world.apply()
        let web1 = try node(of: "web-1", in: world)
        let text = try String(contentsOfFile: world.repo.file("manifests/tenants/acme.yaml"), encoding: .utf8)
        try world.commit("manifests/tenants/acme.yaml", text.replacingOccurrences(
            of: "rules: [{protocol: tcp, ports: 443, cidr: 0.0.0.0/0}]",
            with: "rules: [{protocol: tcp, ports: 443, cidr: 0.0.0.0/0}, {protocol: tcp, ports: 8080-8090, cidr: 198.51.100.0/24}]"))
        #expect(networking(try world.plan()) == ["firewall/\(web1) + rule: forward: ip daddr 10.20.0.10 ip saddr 198.51.100.0/24 tcp dport 8080-8090 accept (securitygroup/acme/web#2)"])
    }

    @Test func aNewFloatingIPAddsItsNATOnTheInstancesNodeAndStaysPut() throws {
        let world = try World()
        try world.apply()
        let web2 = try node(of: "web-2", in: world)
        let text = try String(contentsOfFile: world.repo.file("manifests/tenants/acme.yaml"), encoding: .utf8)
        try world.commit("manifests/tenants/acme.yaml", text + "\n---\nkind: FloatingIP\nname: web2\nregion: lab\ntenant: acme\nspec: {instance: web-2}\n")
        let plan = try world.plan()
        let lines = networking(plan)
        let ip = try #require(try world.observed().flatMap(\.domains).first { $0.address?.name == "web-2" }?.ip)
        #expect(lines == ["dhcp/\(web2) ~ private metadata: web-2",  // its public-ipv4
                          "firewall/\(web2) + rule: prerouting: ip daddr 192.0.2.1 dnat to \(ip) (floatingip/lab/acme/web2)",
                          "firewall/\(web2) + rule: output: ip daddr 192.0.2.1 dnat to \(ip) (floatingip/lab/acme/web2)",
                          "firewall/\(web2) + rule: postrouting: ip saddr \(ip) ip daddr != 10.20.0.0/16 snat to 192.0.2.1 (floatingip/lab/acme/web2)"],
                "the lowest free address of the floating range: \(lines)")
        #expect(try world.apply().succeeded)
        // A FloatingIP that comes first in allocation order (not bound yet) does not take the address web2 already has.
        try world.commit("manifests/early.yaml", "kind: FloatingIP\nname: aaa\nregion: lab\ntenant: acme\n")
        let next = networking(try world.plan())
        #expect(next.isEmpty, "web2 keeps its address: \(next)")
    }

    @Test func anInstanceMovingTakesItsFloatingIPAndDHCPEntryAlong() throws {
        let world = try World()
        try world.apply()
        let before = try node(of: "web-1", in: world)
        let target = ["lab-1", "lab-2", "lab-3"].first { $0 != before }!
        let text = try String(contentsOfFile: world.repo.file("manifests/tenants/acme.yaml"), encoding: .utf8)
        try world.commit("manifests/tenants/acme.yaml", text.replacingOccurrences(of: "  fixedIP: 10.20.0.10\n", with: "  fixedIP: 10.20.0.10\n  node: \(target)\n"))
        let lines = networking(try world.plan())
        for chain in ["prerouting: ip daddr 192.0.2.5 dnat to 10.20.0.10", "output: ip daddr 192.0.2.5 dnat to 10.20.0.10"] {
            #expect(lines.contains("firewall/\(before) - rule: \(chain) (floatingip/lab/acme/web)"), "\(lines)")
            #expect(lines.contains("firewall/\(target) + rule: \(chain) (floatingip/lab/acme/web)"), "\(lines)")
        }
        #expect(lines.contains { $0.hasPrefix("dhcp/\(before) - private host: ") && $0.hasSuffix(",10.20.0.10,web-1") })
        #expect(lines.contains { $0.hasPrefix("dhcp/\(target) + private host: ") && $0.hasSuffix(",10.20.0.10,web-1") })
        #expect(try world.apply().succeeded)
        #expect(try world.plan().isEmpty)
    }

    @Test func aRulesetEditedByHandIsDriftAndApplyPutsItBack() throws {
        let world = try World()
        try world.apply()
        let web1 = try node(of: "web-1", in: world)
        let file = world.state.file("nodes/lab/\(web1)/etc/stacklab/firewall/stacklab.nft")
        let installed = try String(contentsOfFile: file, encoding: .utf8)
        let edited = installed.split(separator: "\n", omittingEmptySubsequences: false).filter { !$0.contains("ct state new drop comment \"securitygroups default deny\"") }
        try edited.joined(separator: "\n").write(toFile: file, atomically: true, encoding: .utf8)
        let plan = try world.plan()
        let change = try #require(plan.changes.first { $0.address.kind == .firewall })
        #expect(change.reason == .drifted, "the manifests did not change: \(change.reason)")
        #expect(change.fields.map(\.field) == ["live ruleset", "+ rule"])
        #expect(try world.apply().succeeded)
        #expect(try String(contentsOfFile: file, encoding: .utf8) == installed)
        #expect(try world.plan().isEmpty)
    }
}
