import Foundation
import Manifests
import Planning
import Processes
import TestSupport
import Testing

/// The ruleset StackLab renders for a compute node, loaded into network namespaces wired like that node, and judged by
/// real packets: the tenant boundary (each instance port may send only as its own MAC and fixed IP, ARP only for its
/// own address, no IPv6; the metadata service answers the port, not the address claimed), the SWS egress filter (which
/// opens internal ranges, never another tenant's instance), security groups, floating IPs, and what instances may ask
/// of the node. Then every rule is removed in turn, and some cell of the truth table must change: no rule is dead
/// weight, and no rule is untested.
@Suite(.serialized) struct FirewallPacketTests {
    static let manifests = """
        kind: Region
        name: pkt
        spec: {sponsor: Packet test}
        ---
        kind: Network
        name: private
        region: pkt
        spec: {bridge: br100, fixedRange: 10.40.0.0/24, gateway: 10.40.0.1, dns: [10.40.0.2], floatingRange: 203.0.113.0/28}
        ---
        kind: Node
        name: pkt-1
        region: pkt
        spec: {address: 172.16.97.1, libvirt: simulated, roles: [controller, compute], cpus: 16, memory: 64GiB}
        ---
        kind: Node
        name: pkt-2
        region: pkt
        spec: {address: 172.16.97.2, libvirt: simulated, roles: [storage], cpus: 4, memory: 8GiB, disks: [{name: sdb, size: 1TB}]}
        ---
        kind: Node
        name: pkt-3
        region: pkt
        spec: {address: 172.16.97.3, libvirt: simulated, roles: [storage], cpus: 4, memory: 8GiB, disks: [{name: sdb, size: 1TB}]}
        ---
        kind: Tenant
        name: alpha
        ---
        kind: Tenant
        name: beta
        ---
        kind: Filter
        name: pkt-internal
        region: pkt
        spec:
          protect: [172.16.0.0/12]
          allow:
            - {tenants: [alpha], to: [172.16.5.0/24, 10.0.0.0/8], ports: [22], protocol: tcp}
        ---
        kind: SecurityGroup
        name: web
        tenant: alpha
        spec:
          rules:
            - {protocol: tcp, ports: 80, cidr: 0.0.0.0/0}
        ---
        kind: SecurityGroup
        name: ssh
        tenant: beta
        spec:
          rules:
            - {protocol: tcp, ports: 22, group: ssh}
            - {protocol: tcp, ports: 2222, cidr: 172.16.0.0/12}
        ---
        kind: Instance
        name: a1
        region: pkt
        tenant: alpha
        spec: {flavor: m1.small, image: ubuntu, network: private, securityGroups: [web]}
        ---
        kind: Instance
        name: a2
        region: pkt
        tenant: alpha
        spec: {flavor: m1.small, image: ubuntu, network: private}
        ---
        kind: Instance
        name: b1
        region: pkt
        tenant: beta
        spec: {flavor: m1.small, image: ubuntu, network: private, securityGroups: [ssh], userData: "#cloud-config\\nchpasswd: {list: 'root:b1-secret'}\\n"}
        ---
        kind: Instance
        name: c1
        region: pkt
        tenant: beta
        spec: {flavor: m1.small, image: ubuntu, network: private, userData: "#cloud-config\\nchpasswd: {list: 'root:c1-secret'}\\n"}
        ---
        kind: Instance
        name: b2
        region: pkt
        tenant: beta
        spec: {flavor: m1.small, image: ubuntu, network: private, securityGroups: [ssh]}
        ---
        kind: FloatingIP
        name: a1-public
        region: pkt
        tenant: alpha
        spec: {instance: a1}
        """

    /// The lab: the node routes between a bridge with one namespace per instance port, an internal service network and a
    /// public network, as a multi-host compute node does. a1, b1 and b2 are ordinary instances with the MACs StackLab gave
    /// them; c1 is booting (no address yet); a2 is tenant alpha's attacker: its interface carries c1's MAC and address,
    /// and a second one (a macvlan on the same port) another MAC with a2's own address.
    final class World {
        let lab: PacketLab
        let repo: Scratch
        let state: Scratch
        var ip: [String: String] = [:]
        var mac: [String: String] = [:]
        var gateway = ""
        var floating = ""
        var nft = ""
        static let bridgeMAC = "02:00:00:00:00:01"
        static let foreignMAC = "02:00:00:00:00:a2"

        init() throws {
            try #require(PacketLab.isAvailable, "root, iproute2, nftables and python3 are needed: bash .ci/setup installs them")
            lab = try PacketLab()
            repo = try Fixtures.deployment()
            state = try Scratch("state")
            try repo.write("regions/pkt/all.yaml", FirewallPacketTests.manifests)
            try GitCLI.commitAll(in: repo.path)
            let applied = try StackLabBinary.run(["apply", "--auto-approve", "--region", "pkt", "--repo", repo.path, "--state-dir", state.path])
            try #require(applied.status == 0, "\(applied.output)")
            let shown = try StackLabBinary.run(["firewall", "show", "pkt/pkt-1", "--format", "nft", "--repo", repo.path, "--state-dir", state.path])
            try #require(shown.status == 0, "\(shown.output)")
            nft = shown.output
            let installed = try String(contentsOfFile: state.file("nodes/pkt/pkt-1/etc/stacklab/firewall/stacklab.nft"), encoding: .utf8)
            #expect(installed == nft, "firewall show prints what apply installed")
            // Addresses and MACs as StackLab's IPAM gave them: the DHCP files on the node.
            let hosts = try String(contentsOfFile: state.file("nodes/pkt/pkt-1/etc/stacklab/dnsmasq/private.hosts"), encoding: .utf8)
            for line in hosts.split(separator: "\n") {
                let parts = line.split(separator: ",")
                ip[String(parts[2])] = String(parts[1])
                mac[String(parts[2])] = String(parts[0])
            }
            let conf = try String(contentsOfFile: state.file("nodes/pkt/pkt-1/etc/stacklab/dnsmasq/private.conf"), encoding: .utf8)
            gateway = String(try #require(conf.split(separator: "\n").first { $0.hasPrefix("listen-address=") }).dropFirst("listen-address=".count))
            let a1 = ip["a1"] ?? "?"
            let dnat = try #require(nft.split(separator: "\n").first { $0.contains("dnat to \(a1)") })
            floating = String(dnat.split(separator: " ")[2])

            for name in ["node", "a1", "a2", "b1", "b2", "c1", "stray", "internal", "public"] { try lab.add(name) }
            try lab.run("node", "ip link add br100 type bridge && ip link set br100 address \(Self.bridgeMAC) && ip link set br100 up"
                        + " && ip addr add \(gateway)/24 dev br100 && ip -6 addr add fe80::1/64 dev br100 nodad")
            try lab.run("node", "sysctl -qw net.ipv4.ip_forward=1 && sysctl -qw net.bridge.bridge-nf-call-iptables=1 && sysctl -qw net.ipv4.tcp_fwmark_accept=1")
            for name in ["a1", "a2", "b1", "b2", "c1"] {
                // Each instance on the port libvirt makes for it (the domain XML's <target dev>), with its MAC; a2's is c1's.
                let address = Address(kind: .instance, region: "pkt", tenant: name.hasPrefix("a") ? "alpha" : "beta", name: name)
                let own = name == "a2" ? mac["c1"]! : mac[name]!
                let configured = name == "c1" ? nil : name == "a2" ? "\(ip["c1"]!)/24" : "\(ip[name]!)/24"
                try lab.link("node", DesiredDomain.port(for: address), nil, name, "eth0", configured, bridge: "br100", mac: own)
                if configured != nil { try lab.run(name, "ip route add default via \(gateway)") }
            }
            // A domain on the bridge through a tap libvirt named itself (defined before ports were named, or not StackLab's).
            try lab.link("node", "vnet0", nil, "stray", "eth0", "10.40.0.200/24", bridge: "br100")
            // a1 also holds c1's address (it may claim it), and IPv6 on its interface.
            try lab.run("a1", "ip addr add \(ip["c1"]!)/32 dev eth0 && ip -6 addr add fe80::a1/64 dev eth0 nodad")
            // a2's second interface: a foreign MAC with a2's own address, and the gateway's MAC known (no ARP needed).
            try lab.run("a2", "ip link add mv0 link eth0 type macvlan mode bridge && ip link set mv0 address \(Self.foreignMAC) && ip link set mv0 up"
                        + " && ip addr add \(ip["a2"]!)/32 dev mv0 && ip neigh replace \(gateway) lladdr \(Self.bridgeMAC) dev mv0 nud permanent")
            try lab.link("node", "v-int", "172.16.5.1/24", "internal", "eth0", "172.16.5.2/24")
            try lab.run("internal", "ip route add default via 172.16.5.1")
            try lab.link("node", "v-pub", "198.51.100.1/24", "public", "eth0", "198.51.100.2/24")
            try lab.run("public", "ip route add default via 198.51.100.1")
            try lab.run("node", "ip addr add \(floating)/32 dev v-pub")  // the node answers for its instances' floating IPs

            try lab.serve("node", tcp: [22, 53], udp: [53, 67])
            // The node's metadata service: StackLab's own, answering from the files apply wrote for this node.
            try lab.start("node", [StackLabBinary.path, "metadata", "serve", "--root", state.file("nodes/pkt/pkt-1"), "--listen", "\(gateway):8775"],
                          listening: 8775)
            try lab.serve("a1", tcp: [22, 80])
            try lab.serve("b1", tcp: [22, 2222])
            try lab.serve("b2", tcp: [22, 2222])
            try lab.serve("internal", tcp: [22, 8140])
            try lab.serve("public", tcp: [80])
        }

        /// Each cell: a probe and what must happen (the address the server saw, or nil for no connection).
        var table: [(PacketLab.Probe, String?, String)] {
            let a1 = ip["a1"]!, a2 = ip["a2"]!, b1 = ip["b1"]!, b2 = ip["b2"]!, c1 = ip["c1"]!
            let metadata = "169.254.169.254"
            return [
                (.init(from: "a1", to: "172.16.5.2", port: 22), floating, "alpha reaches the internal segment its Filter opens (SNAT to its floating IP)"),
                (.init(from: "a1", to: "172.16.5.2", port: 8140), nil, "…but not on a port the Filter does not name"),
                (.init(from: "b1", to: "172.16.5.2", port: 22), nil, "beta reaches no internal segment"),
                (.init(from: "a1", to: "198.51.100.2", port: 80), floating, "alpha reaches the public side from its floating IP"),
                (.init(from: "b1", to: "198.51.100.2", port: 80), "198.51.100.1", "beta reaches the public side, masqueraded"),
                (.init(from: "public", to: floating, port: 80), "198.51.100.2", "the floating IP reaches a1's web port"),
                (.init(from: "public", to: a1, port: 80), "198.51.100.2", "security group web opens port 80"),
                (.init(from: "public", to: a1, port: 22), nil, "nothing else comes in"),
                (.init(from: "node", to: floating, port: 80), floating, "the node itself reaches the floating IP (from that address, which it holds)"),
                (.init(from: "b2", to: b1, port: 22), b2, "group ssh: b2 reaches b1"),
                (.init(from: "b1", to: b2, port: 22), b1, "group ssh: b1 reaches b2"),
                (.init(from: "a1", to: b1, port: 22), nil, "alpha's Filter opens 10.0.0.0/8 on port 22, but never another tenant's instance: b1's groups decide"),
                (.init(from: "public", to: b1, port: 22), nil, "group ssh is not the public"),
                (.init(from: "internal", to: b1, port: 2222), "172.16.5.2", "ssh#2 opens 2222 to 172.16/12 (b1)"),
                (.init(from: "internal", to: b2, port: 2222), "172.16.5.2", "ssh#2 opens 2222 to 172.16/12 (b2)"),
                (.init(from: "public", to: b1, port: 2222), nil, "…and not to the public"),
                (.init(from: "a1", to: metadata, port: 80, get: "/latest/meta-data/local-ipv4"), a1, "metadata, served by the node: a1's address"),
                (.init(from: "a1", to: metadata, port: 80, get: "/latest/meta-data/public-ipv4"), floating, "…its floating IP"),
                (.init(from: "b1", to: metadata, port: 80, get: "/latest/meta-data/instance-id"), DesiredDomain.uuid(for: Address(kind: .instance, region: "pkt", tenant: "beta", name: "b1")), "…each instance its own identity"),
                (.init(from: "b1", to: metadata, port: 80, get: "/latest/user-data"), "#cloud-config", "…and its own user data"),
                (.init(from: "b2", to: metadata, port: 80, get: "/latest/meta-data/hostname"), "b2", "…and name"),
                (.init(from: "b2", to: metadata, port: 80, get: "/latest/meta-data/public-ipv4"), "HTTP 404", "…and no floating IP where there is none"),
                (.init(from: "a1", to: gateway, port: 22), nil, "instances cannot open the node's other ports"),
                (.init(from: "b1", to: gateway, port: 53), b1, "DNS over TCP on the node"),
                (.init(from: "b1", to: gateway, port: 67, udp: true), b1, "DHCP (and DNS) over UDP on the node"),
                // The tenant boundary at the port.
                (.init(from: "a1", to: metadata, port: 80, get: "/latest/user-data", source: c1), nil, "a1 claiming c1's address gets none of c1's user data"),
                (.init(from: "a2", to: metadata, port: 80, get: "/latest/user-data"), nil, "a2 with c1's MAC and address gets nothing either"),
                (.init(from: "a1", to: gateway, port: 53, kind: .datagram), a1, "a1's own datagrams arrive"),
                (.init(from: "a1", to: gateway, port: 53, kind: .datagram, source: c1), nil, "…none sent as c1's address"),
                (.init(from: "a2", to: gateway, port: 53, kind: .datagram, source: a2, device: "mv0"), nil, "…nor from another MAC, even with a2's own address"),
                (.init(from: "c1", to: "255.255.255.255", port: 67, kind: .dhcp, device: "eth0"), "0.0.0.0", "c1, booting, asks DHCP for its address"),
                (.init(from: "a1", to: gateway, kind: .arp, source: a1, device: "eth0"), "answered", "a1 speaks ARP for its own address"),
                (.init(from: "a1", to: gateway, kind: .arp, source: b1, device: "eth0"), nil, "…and cannot claim b1's"),
                (.init(from: "a1", to: "fe80::1%eth0", port: 22), nil, "no IPv6 from an instance port (no network has it)"),
                (.init(from: "stray", to: gateway, port: 53), nil, "nothing from a tap bound to no instance"),
            ]
        }

        func load(_ text: String) throws {
            let file = state.file("candidate.nft")
            try text.write(toFile: file, atomically: true, encoding: .utf8)
            try lab.run("node", "nft -f \(file)")
        }

        /// What each cell does now (the node forgets the neighbours an earlier attempt may have taught it).
        func measure() throws -> [String?] {
            try lab.run("node", "ip neigh flush dev br100")
            let table = self.table
            let outcome = try lab.attempt(table.map(\.0))
            return table.map { outcome[$0.0] ?? nil }
        }
    }

    @Test func theRenderedRulesetPassesExactlyTheTruthTableAndEveryRuleMatters() throws {
        let world = try World()
        try world.load(world.nft)
        let observed = try world.measure()
        var report = ""
        for ((probe, expected, why), got) in zip(world.table, observed) {
            report += "\(got == expected ? "ok  " : "FAIL") \(probe) → \(got ?? "no connection") (want \(expected ?? "no connection")): \(why)\n"
        }
        #expect(observed == world.table.map(\.1), "truth table:\n\(report)")

        // Mutation: without any one rule, some cell flips. (The traffic rules only count, and decide nothing: their cells
        // are bytes, judged by BandwidthMeterTests.)
        let lines = world.nft.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let rules = lines.indices.filter {
            let line = lines[$0].trimmingCharacters(in: .whitespaces)
            return line.contains(" comment \"") && !line.hasPrefix("comment") && !line.hasPrefix("counter ") && !line.contains("comment \"traffic: ")
        }
        #expect(rules.count == 24, "\(rules.map { lines[$0] })")
        var survivors: [String] = []
        for index in rules {
            var mutant = lines
            mutant.remove(at: index)
            try world.load(mutant.joined(separator: "\n"))
            if try world.measure() == observed { survivors.append(lines[index].trimmingCharacters(in: .whitespaces)) }
        }
        #expect(survivors.isEmpty, "rules no cell depends on:\n\(survivors.joined(separator: "\n"))")

        // The metadata service answers the port, not the address: with the port's MAC, ARP and address checks gone (only
        // its mark left), a1 claiming c1's address reaches the service and is refused.
        let spoofChecks = ["instance ports: own MAC", "instance ports: ARP for own address", "instance ports: own fixed IP"]
        try world.load(lines.filter { line in !spoofChecks.contains { line.contains("comment \"\($0)\"") } }.joined(separator: "\n"))
        // The node is taught that c1's address is at a1's MAC (what ARP spoofing achieves without the ARP check; a2 claims
        // it too, so the lab says it outright).
        try world.lab.run("node", "ip neigh flush dev br100 && ip neigh replace \(world.ip["c1"]!) lladdr \(world.mac["a1"]!) dev br100 nud permanent")
        let claim = try #require(world.table.first { $0.2.hasPrefix("a1 claiming c1's address") }).0
        let answer = try world.lab.attempt([claim])[claim] ?? nil
        #expect(answer == "HTTP 403", "the metadata service checks the port's mark: \(answer ?? "no connection")")
    }
}
