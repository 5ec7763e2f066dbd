import Foundation
import ManifestSources
import Manifests
import Planning
import Processes
import SimulatedNodes
import TestSupport
import Testing
@testable import Reconcile

/// Public domains and tenant load balancers: one HAProxy configuration per load-balancer node, ports of the region's
/// range kept across plans (and across moves), a freed port held for the region's wait, the range's end an error that
/// names it, and a hand-edited configuration drift that apply undoes.
@Suite struct LoadBalancerPlanTests {
    static let balancerNode = Address(kind: .node, region: "lab", name: "lab-lb")

    /// The fixture deployment with lab's public domains, its load-balancer node and acme's two load balancers.
    static func model(extra: [String: String] = [:], removing: [String] = []) throws -> DesiredModel {
        let scratch = try Fixtures.deployment(overlay: "loadbalancers")
        for (path, text) in extra { try scratch.write(path, text) }
        for path in removing { try FileManager.default.removeItem(atPath: scratch.file(path)) }
        let loaded = try Loader().load(DirectorySource(root: scratch.path))
        #expect(!loaded.hasErrors, "\(DiagnosticRenderer(files: loaded.files).render(loaded.diagnostics))")
        return loaded.model
    }

    /// Every lab node observed empty, the load-balancer node holding `installed`.
    static func observed(installed: String?) -> [ObservedNode] {
        ["lab-1", "lab-2", "lab-3", "lab-lb"].map { name in
            var node = ObservedNode(address: Address(kind: .node, region: "lab", name: name), domains: [], networks: [])
            node.cpus = 16
            node.memoryKiB = 64 << 20
            if name == "lab-lb" { node.proxy = installed }
            return node
        }
    }

    static func config(_ plan: Plan) -> ProxyConfig? {
        for change in plan.changes where change.address.kind == .haproxy {
            if case .node(.loadProxy(let config)) = change.operation { return config }
        }
        return nil
    }

    static func ports(_ config: ProxyConfig?) -> [String: Int] {
        Dictionary(uniqueKeysWithValues: (config?.ports ?? [:]).map { ($0.key.description, $0.value) })
    }

    @Test func oneConfigurationServesThePublicDomainsAndTheLoadBalancersAndHAProxyAcceptsIt() throws {
        let plan = Planner.plan(model: try Self.model(), observed: Self.observed(installed: nil), regions: ["lab"], hour: 1000)
        #expect(plan.errors.isEmpty, "\(plan.errors)")
        let config = try #require(Self.config(plan))
        // web-1's groups open 443 (the instance port) to anyone; web-2 names no group and acme has no default: no domain.
        #expect(Self.ports(config) == ["instance/lab/acme/web-1": 11000, "loadbalancer/lab/acme/db:5432": 11001])
        let text = config.text
        let label = PublicDomain.label(for: Address(kind: .instance, region: "lab", tenant: "acme", name: "web-1"))
        #expect(label.count == 10 && label.allSatisfy { $0.isLowercase || $0.isNumber })
        #expect(text.contains("# instance/lab/acme/web-1: \(label).lb.lab.example.org:11000"))
        #expect(text.contains("use_backend lb:acme:shop:http if { hdr(host),field(1,:) -i shop.acme.lb.lab.example.org }"))
        #expect(text.contains("    option httpchk GET /health\n    http-check expect status 200\n    cookie SERVERID insert indirect nocache\n"))
        #expect(text.contains("server web-1 10.20.0.10:8080 check inter 500 rise 2 fall 2 cookie web-1"))
        #expect(text.contains("backend lb:acme:db:tcp5432\n    mode tcp\n    balance leastconn\n"))
        #expect(!text.contains("tcp-request connection reject"), "0.0.0.0/0 admits anyone: no source list")
        // The tenant load balancers are billed per day from this change on.
        let change = try #require(plan.changes.first { $0.address.kind == .haproxy })
        #expect(change.meters.map(\.address.description) == ["loadbalancer/lab/acme/db", "loadbalancer/lab/acme/shop"])
        #expect(change.meters.allSatisfy { $0.kind == .loadBalancer && $0.period == .daily })

        let scratch = try Scratch("haproxy")
        let file = scratch.file("haproxy.cfg")
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        let check = try Command.run(["haproxy", "-c", "-f", file])
        #expect(check.status == 0, "haproxy -c: \(check.output)")
    }

    @Test func theLoadBalancerNodeHasAnAddressOnEachNetworkAndComputeNodesAdmitItToTheForwardedPortsOnly() throws {
        let model = try Self.model()
        let plan = Planner.plan(model: model, observed: Self.observed(installed: nil), regions: ["lab"], hour: 1000)
        var balancerAddress: IPv4Address?
        for change in plan.changes where change.target == .node(Self.balancerNode) {
            if case .node(.configureDHCP(let dhcp)) = change.operation {
                #expect(dhcp.networks.count == 1 && dhcp.networks[0].hosts.isEmpty, "an address, no DHCP hosts")
                balancerAddress = dhcp.networks.first?.gateway
            }
        }
        let source = try #require(balancerAddress)
        #expect(!plan.changes.contains { $0.target == .node(Self.balancerNode) && $0.address.kind == .firewall }, "no ruleset on a load-balancer node")
        let lab = try #require(model.regions.first { $0.name == "lab" })
        let rules = Planner.rulesets(lab, model: model, observed: Self.observed(installed: nil)).flatMap(\.rules).filter { $0.source == "haproxy/lab" }.map(\.text)
        #expect(Set(rules) == ["ip saddr \(source) ip daddr 10.20.0.10 tcp dport { 443, 8080 } accept",
                               "ip saddr \(source) ip daddr \(try #require(Self.fixedIP(of: "web-2", in: plan))) tcp dport { 5432, 8080 } accept"], "\(rules)")
        // Bandwidth: what an instance exchanges with a load-balancer node is public (a public domain's or listener's
        // clients), counted before the internal ranges that hold the node's address.
        let counting = Planner.rulesets(lab, model: model, observed: Self.observed(installed: nil)).flatMap(\.rules).filter { $0.chain == .trafficOut }
        #expect(counting.first?.source == "traffic: out through a load balancer, public" && counting.first?.text.hasPrefix("ip daddr \(source) counter name iifname map") == true,
                "\(counting.map(\.description))")
    }

    static func fixedIP(of name: String, in plan: Plan) -> IPv4Address? {
        plan.changes.compactMap { $0.operation.definedDomain }.first { $0.address.name == name }?.interface.ip
    }

    @Test func theMetadataServiceTellsAnInstanceItsPublicDomain() throws {
        let plan = Planner.plan(model: try Self.model(), observed: Self.observed(installed: nil), regions: ["lab"], hour: 1000)
        var metadata: [String: InstanceMetadata] = [:]
        for change in plan.changes {
            guard case .node(.configureDHCP(let dhcp)) = change.operation else { continue }
            for host in dhcp.networks.flatMap(\.hosts) { metadata[host.name] = host.metadata }
        }
        let web1 = try #require(metadata["web-1"])
        let name = "\(PublicDomain.label(for: web1.address)).lb.lab.example.org"
        #expect(web1.publicDomain == "\(name):11000")
        #expect(web1.answer("/latest/meta-data/public-hostname") == name)
        #expect(web1.answer("/latest/meta-data/public-port") == "11000")
        #expect(web1.answer("/latest/meta-data/")?.contains("public-hostname") == true)
        #expect(metadata["web-2"]?.publicDomain == nil && metadata["web-2"]?.answer("/latest/meta-data/public-hostname") == nil, "no group opens 443 on web-2")
    }

    @Test func portsAreStickyAFreedPortIsHeldForTheWaitAndTheRangesEndIsAnError() throws {
        let first = try #require(Self.config(Planner.plan(model: try Self.model(), observed: Self.observed(installed: nil), regions: ["lab"], hour: 1000)))
        #expect(Self.ports(first)["loadbalancer/lab/acme/db:5432"] == 11001)

        // A listener declared before db in address order does not take db's port: what a node's file records is kept.
        let cache = "kind: LoadBalancer\nname: cache\nregion: lab\ntenant: acme\nspec: {listeners: [{protocol: tcp, port: 6379}], members: [web-2]}\n"
        let withCache = Planner.plan(model: try Self.model(extra: ["manifests/tenants/acme-cache.yaml": cache]), observed: Self.observed(installed: first.text),
                                     regions: ["lab"], hour: 1001)
        let second = try #require(Self.config(withCache))
        #expect(Self.ports(second) == ["instance/lab/acme/web-1": 11000, "loadbalancer/lab/acme/db:5432": 11001, "loadbalancer/lab/acme/cache:6379": 11002])

        // db leaves: its port is held from this hour, and the change stops its billing.
        let dbRemoved = try Self.model(extra: ["manifests/tenants/acme-cache.yaml": cache,
                                               "manifests/tenants/acme-balancers.yaml": Self.onlyShop])
        let release = Planner.plan(model: dbRemoved, observed: Self.observed(installed: second.text), regions: ["lab"], hour: 1002)
        let third = try #require(Self.config(release))
        #expect(third.held == [.init(port: 11001, owner: PortOwner(address: Address(kind: .loadBalancer, region: "lab", tenant: "acme", name: "db"), listener: 5432), hour: 1002)])
        #expect(release.changes.first { $0.address.kind == .haproxy }?.stopsMeters == [.address(Address(kind: .loadBalancer, region: "lab", tenant: "acme", name: "db"))])

        // A new tcp listener within the wait finds no free port: the error names the region and its range.
        let queue = "kind: LoadBalancer\nname: queue\nregion: lab\ntenant: acme\nspec: {listeners: [{protocol: tcp, port: 5672}], members: [web-2]}\n"
        let crowded = try Self.model(extra: ["manifests/tenants/acme-cache.yaml": cache, "manifests/tenants/acme-queue.yaml": queue,
                                             "manifests/tenants/acme-balancers.yaml": Self.onlyShop])
        let early = Planner.plan(model: crowded, observed: Self.observed(installed: third.text), regions: ["lab"], hour: 1002 + 23)
        #expect(early.errors.map(\.message) == ["region 'lab' has no free public-domain port left in 11000-11002 for loadbalancer/lab/acme/queue:5672: widen the region's publicDomains.ports, or wait for held ports (1 freed in the last 24 h) to be released"])
        #expect(Self.ports(Self.config(early))["loadbalancer/lab/acme/queue:5672"] == nil)

        // Once the wait has passed, the port is handed out again.
        let late = Planner.plan(model: crowded, observed: Self.observed(installed: third.text), regions: ["lab"], hour: 1002 + 24)
        #expect(late.errors.isEmpty)
        #expect(Self.ports(Self.config(late))["loadbalancer/lab/acme/queue:5672"] == 11001)
        #expect(Self.config(late)?.held == [])
    }

    @Test func aSecurityGroupDecidesWhetherAnInstanceHasAPublicDomainAndWhoMayUseIt() throws {
        // web-2 gets a group that opens 443 to one network and to the group's own members.
        let group = """
            kind: SecurityGroup
            name: office
            tenant: acme
            spec:
              rules:
                - {protocol: tcp, ports: 443, cidr: 198.51.100.0/24}
                - {protocol: tcp, ports: 400-500, group: office}
                - {protocol: udp, ports: 443, cidr: 0.0.0.0/0}
            ---
            kind: Instance
            name: web-3
            region: lab
            tenant: acme
            spec: {flavor: m1.small, image: ubuntu, network: private, keypair: deploy, securityGroups: [office], fixedIP: 10.20.0.30}

            """
        let plan = Planner.plan(model: try Self.model(extra: ["manifests/tenants/acme-office.yaml": group]), observed: Self.observed(installed: nil),
                                regions: ["lab"], hour: 1000)
        let text = try #require(Self.config(plan)).text
        #expect(text.contains("tcp-request connection reject unless { src 10.20.0.30/32 198.51.100.0/24 }"), "\(text)")
    }

    static let onlyShop = """
        kind: LoadBalancer
        name: shop
        region: lab
        tenant: acme
        spec:
          listeners: [{protocol: http, port: 8080}]
          members: [web-1, web-2]
          healthCheck: {type: http, path: /health, interval: 500ms, rise: 2, fall: 2}
          stickiness: cookie

        """

    @Test func aHandEditedConfigurationIsDriftAndApplyRestoresIt() throws {
        let world = try ConvergeWorld(overlay: "loadbalancers")
        #expect(try world.apply().succeeded)
        #expect(try world.plan().isEmpty)
        let file = String(SimulatedNode.hostFile(stateDirectory: world.state.path, node: Self.balancerNode).dropLast(".xml".count)) + ProxyConfig.file
        let installed = try String(contentsOfFile: file, encoding: .utf8)
        try installed.replacingOccurrences(of: "balance leastconn", with: "balance roundrobin").write(toFile: file, atomically: true, encoding: .utf8)

        let drift = try world.plan()
        let change = try #require(drift.changes.first { $0.address.kind == .haproxy })
        #expect(change.reason == .drifted)
        #expect(change.fields.first?.old.contains("edited by hand") == true)
        #expect(drift.drift(asApplied: { _ in true }).map(\.change.address.description) == ["haproxy/lab/lab-lb"])
        #expect(try world.apply().succeeded)
        #expect(try String(contentsOfFile: file, encoding: .utf8) == installed)
        #expect(try world.plan().isEmpty)
    }
}
