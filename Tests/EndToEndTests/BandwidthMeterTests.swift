import Drivers
import Foundation
import ManifestSources
import Manifests
import Planning
import Processes
import State
import StateSQLite
import TestSupport
import Testing

/// Bandwidth billing end to end on a real kernel: the ruleset StackLab renders for a compute node, loaded over SSH by the
/// node's own driver into a network namespace the test wires like that node (a bridge with two instance ports, an
/// uplink to "the internet"), known byte counts sent through an instance's port, and `stacklab meter` reading the
/// node's named counters into the ledger — across a reload of the ruleset (the counters carry on), a "reboot" (the
/// tables gone: a new epoch), an instance leaving the node (its counters read one last time, then deleted), and meters
/// killed right after they read the counters, and after they recorded and deleted them. The ledger holds exactly the
/// bytes sent, and the month's statement charges them.
@Suite(.serialized) struct BandwidthMeterTests {
    static func manifests(user: String, port: UInt16, hostKey: String, withB1: Bool, webGroup: Bool) -> String {
        var text = """
            kind: Region
            name: bw
            spec: {sponsor: Bandwidth test}
            ---
            kind: Network
            name: private
            region: bw
            spec: {bridge: br100, fixedRange: 10.50.0.0/24, gateway: 10.50.0.1}
            ---
            kind: Node
            name: bw-1
            region: bw
            spec:
              address: 127.0.0.1
              libvirt: qemu+ssh://\(user)@127.0.0.1:\(port)/system
              ssh: {user: \(user), port: \(port), hostKey: "\(hostKey)"}
              roles: [controller, compute]
              cpus: 16
              memory: 64GiB
            ---
            kind: Node
            name: bw-2
            region: bw
            spec: {address: 172.16.96.2, libvirt: simulated, roles: [storage], cpus: 4, memory: 8GiB, disks: [{name: sdb, size: 1TB}]}
            ---
            kind: Node
            name: bw-3
            region: bw
            spec: {address: 172.16.96.3, libvirt: simulated, roles: [storage], cpus: 4, memory: 8GiB, disks: [{name: sdb, size: 1TB}]}
            ---
            kind: Tenant
            name: alpha
            ---
            kind: SecurityGroup
            name: web
            tenant: alpha
            spec: {rules: [{protocol: tcp, ports: \(webGroup ? 8080 : 80), cidr: 0.0.0.0/0}]}
            ---
            kind: SecurityGroup
            name: sink
            tenant: alpha
            spec: {rules: [{protocol: udp, ports: 9000, cidr: 10.50.0.0/24}]}
            ---
            kind: Instance
            name: a1
            region: bw
            tenant: alpha
            spec: {flavor: m1.small, image: ubuntu, network: private, node: bw-1, fixedIP: 10.50.0.11, securityGroups: [web]}

            """
        if withB1 {
            text += "---\nkind: Instance\nname: b1\nregion: bw\ntenant: alpha\nspec: {flavor: m1.small, image: ubuntu, network: private, node: bw-1, fixedIP: 10.50.0.12, securityGroups: [sink]}\n"
        }
        return text
    }

    static let node = Address(kind: .node, region: "bw", name: "bw-1")
    static let a1 = Address(kind: .instance, region: "bw", tenant: "alpha", name: "a1")
    static let b1 = Address(kind: .instance, region: "bw", tenant: "alpha", name: "b1")
    static let bridgeMAC = "02:00:00:00:00:01"

    final class World {
        let lab: PacketLab
        let repo: Scratch
        let state: Scratch
        let etc: Scratch
        let sshd: LoopbackSSHD
        let machine: RemoteMachine
        var mac: [Address: String] = [:]

        init() throws {
            try #require(PacketLab.isAvailable, "root, iproute2, nftables and python3 are needed: bash .ci/setup installs them")
            lab = try PacketLab()
            etc = try Scratch("bw-etc")
            for name in ["node", "a1", "b1", "public"] { try lab.add(name) }
            try lab.run("node", "ip link add br100 type bridge && ip link set br100 address \(BandwidthMeterTests.bridgeMAC) && ip link set br100 up"
                        + " && ip addr add 10.50.0.1/24 dev br100 && sysctl -qw net.ipv4.ip_forward=1")
            try lab.link("node", "v-pub", "198.51.100.1/24", "public", "eth0", "198.51.100.2/24")
            try lab.run("public", "ip route add default via 198.51.100.1")
            try lab.serve("public", tcp: [], udp: [9000])
            // The node StackLab owns (file root /): its /etc/stacklab is the test's directory, in the session's mounts.
            sshd = try LoopbackSSHD(address: "127.0.0.1", namespace: lab.namespace("node"), privateDirectories: ["/etc/stacklab": etc.path])
            repo = try Fixtures.deployment()
            let catalog = try String(contentsOfFile: repo.file("manifests/catalog.yaml"), encoding: .utf8)
            try repo.write("manifests/catalog.yaml", catalog.replacingOccurrences(of: "  floatingIP: {daily: 0.5}\n", with: "  floatingIP: {daily: 0.5}\n  bandwidth: {perGB: 0.80}\n"))
            state = try Scratch("bw-state")
            _ = try SQLiteState(directory: state.path)
            machine = try RemoteMachine(endpoint: NodeEndpoint(address: BandwidthMeterTests.node, libvirt: "qemu+ssh://\(sshd.user)@127.0.0.1:\(sshd.port)/system",
                                                                cpus: 16, memoryKiB: 64 << 20, hostKey: try sshd.hostKeyLine()),
                                        identity: sshd.userKey, socket: nil)
            let ruleset = try plan(withB1: true, webGroup: false)
            for (name, address, ip) in [("a1", BandwidthMeterTests.a1, "10.50.0.11"), ("b1", BandwidthMeterTests.b1, "10.50.0.12")] {
                try lab.link("node", DesiredDomain.port(for: address), nil, name, "eth0", "\(ip)/24", bridge: "br100", mac: mac[address])
                // Neighbours known up front (no datagram waits on ARP), no IPv6 chatter: every frame sent is one counted.
                try lab.run(name, "sysctl -qw net.ipv6.conf.all.disable_ipv6=1 && ip route add default via 10.50.0.1"
                            + " && ip neigh replace 10.50.0.1 lladdr \(BandwidthMeterTests.bridgeMAC) dev eth0 nud permanent")
            }
            try lab.run("a1", "ip neigh replace 10.50.0.12 lladdr \(mac[BandwidthMeterTests.b1]!) dev eth0 nud permanent")
            try lab.serve("b1", tcp: [], udp: [9000])
            try machine.loadRuleset(ruleset)
        }

        /// The ruleset StackLab plans for bw-1 from the manifests (b1 on the node or not; a1's group changed or not).
        func plan(withB1: Bool, webGroup: Bool) throws -> Ruleset {
            try repo.write("regions/bw/all.yaml", BandwidthMeterTests.manifests(user: sshd.user, port: sshd.port, hostKey: try sshd.hostKeyLine(), withB1: withB1, webGroup: webGroup))
            try GitCLI.commitAll(in: repo.path)
            let plan = try EmptyNodesPlan.plan(repo: repo.path, region: "bw", nodes: ["bw-1", "bw-2", "bw-3"])
            var ruleset: Ruleset?
            for change in plan.changes {
                if case .node(.defineDomain(let domain, _)) = change.operation { mac[domain.address] = domain.interface.mac }
                if case .node(.loadFirewall(let rules)) = change.operation, rules.node == BandwidthMeterTests.node { ruleset = rules }
            }
            return try #require(ruleset, "no ruleset for bw-1 in the plan")
        }

        /// Sends `count` UDP datagrams of `size` bytes from namespace `from` to `to` (port 9000, where the lab's server
        /// logs a datagram starting with `token` and answers none); returns the IPv4 bytes they make (each datagram's
        /// payload, UDP and IP headers).
        @discardableResult
        func send(from: String, to: String, count: Int, size: Int) throws -> Int64 {
            try lab.run(from, "python3 -c \"import socket, time\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\nfor i in range(\(count)):\n    s.sendto(b'token bw '.ljust(\(size), b'x'), ('\(to)', 9000))\n    time.sleep(0.001)\"")
            usleep(200_000)
            return Int64(count * (size + 28))
        }

        /// `stacklab meter` (or `stacklab-faults meter` with `faults`) of region bw at `at`.
        func meter(at: String = "2026-11-10T10:00", faults: [String] = []) throws -> Command.Result {
            try Command.run(["env", "STACKLAB_SSH_IDENTITY=\(sshd.userKey)"] + faults + [faults.isEmpty ? StackLabBinary.path : StackLabBinary.faults, "meter", "--region", "bw",
                                                                                      "--at", at, "--repo", repo.path, "--state-dir", state.path])
        }

        /// The ledger's bytes per instance, direction and scope (`a1 out public`).
        func ledger() throws -> [String: Int64] {
            var totals: [String: Int64] = [:]
            for row in try SQLiteState(directory: state.path).trafficUsage(tenant: nil) {
                totals["\(row.instance.name) \(row.direction.rawValue) \(row.scope.rawValue)", default: 0] += row.bytes
            }
            return totals
        }

        /// The counters in the node's bridge table, by name.
        func counters() throws -> Set<String> {
            let listing = try lab.run("node", "nft list counters table bridge stacklab")
            return Set(listing.split(separator: "\n").compactMap { line -> String? in
                let words = line.trimmingCharacters(in: .whitespaces).split(separator: " ")
                return words.count == 3 && words[0] == "counter" && words[2] == "{" ? String(words[1]) : nil
            })
        }
    }

    @Test func theLedgerHoldsExactlyTheBytesSentAcrossAReloadARebootAndAKilledMeter() throws {
        let world = try World()
        var expected: [String: Int64] = [:]
        func expect(_ key: String, _ bytes: Int64) { expected[key, default: 0] += bytes }
        // Sent and received alike: exactly what the test sent. (A port counts as received only frames addressed to its
        // own MAC: the broadcasts, multicasts and unknown-unicast floods the bridge copies to every port are not counted.)
        func check(_ note: String = "", sourceLocation: Testing.SourceLocation = #_sourceLocation) throws {
            let got = try world.ledger().filter { $0.value > 0 }
            #expect(got == expected, "ledger \(got.sorted { $0.key < $1.key }) want \(expected.sorted { $0.key < $1.key })\n\(note)", sourceLocation: sourceLocation)
        }
        #expect(try world.counters().contains(TrafficCounter.epochCounter), "the table made anew by StackLab carries its epoch")

        // Public (masqueraded to the uplink) and internal (to b1 on the bridge).
        expect("a1 out public", try world.send(from: "a1", to: "198.51.100.2", count: 120, size: 1000))
        let inside = try world.send(from: "a1", to: "10.50.0.12", count: 50, size: 400)
        expect("a1 out internal", inside)
        expect("b1 in internal", inside)
        // Broadcasts from the node reach every port (the bridge floods them): neither a1 nor b1 was sent them.
        try world.lab.run("node", "python3 -c \"import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
                          + "s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)\nfor i in range(5):\n    s.sendto(b'token flood '.ljust(300, b'x'), ('10.50.0.255', 9000))\"")
        let first = try world.meter()
        #expect(first.status == 0, "\(first.output)")
        try check(first.output)

        // More traffic, then a reload of a changed ruleset (a1's group), then more: the reload keeps the counters.
        expect("a1 out public", try world.send(from: "a1", to: "198.51.100.2", count: 80, size: 1200))
        let changed = try world.plan(withB1: true, webGroup: true)
        try world.machine.loadRuleset(changed)
        expect("a1 out public", try world.send(from: "a1", to: "198.51.100.2", count: 30, size: 500))
        // A meter killed right after it read the counters (before the ledger has them) loses nothing...
        let killed = try world.meter(faults: ["STACKLAB_FAULT_KILL_AFTER_DRIVER_CALLS=1"])
        #expect(killed.status != 0, "\(killed.output)")
        let second = try world.meter()
        #expect(second.status == 0, "\(second.output)")
        try check()
        // ...and one run again adds nothing.
        #expect(try world.meter().status == 0)
        try check()

        // A "reboot": the kernel's tables are gone; StackLab's next load makes the table anew with a new epoch, whose
        // counters start at zero and are counted from zero.
        let before = try world.lab.run("node", "nft list counter bridge stacklab \(TrafficCounter.epochCounter)")
        try world.lab.run("node", "nft delete table bridge stacklab && nft delete table ip stacklab")
        try world.machine.loadRuleset(changed)
        let after = try world.lab.run("node", "nft list counter bridge stacklab \(TrafficCounter.epochCounter)")
        #expect(before != after, "a new epoch: \(before) \(after)")
        expect("a1 out public", try world.send(from: "a1", to: "198.51.100.2", count: 40, size: 300))
        #expect(try world.meter().status == 0)
        try check()

        // b1 leaves the node: its counters are no longer declared, read one last time, then deleted.
        let late = try world.send(from: "a1", to: "10.50.0.12", count: 20, size: 100)
        expect("a1 out internal", late)
        expect("b1 in internal", late)
        try world.machine.loadRuleset(try world.plan(withB1: false, webGroup: true))
        #expect(try world.counters().contains { $0.hasPrefix(DesiredDomain.port(for: BandwidthMeterTests.b1)) }, "kept until metered")
        // A meter killed after it recorded them and deleted the counters (its second driver call) leaves the ledger
        // complete; the next round finds nothing more.
        let killedAfterDelete = try world.meter(faults: ["STACKLAB_FAULT_KILL_AFTER_DRIVER_CALLS=2"])
        #expect(killedAfterDelete.status != 0, "\(killedAfterDelete.output)")
        #expect(try !world.counters().contains { $0.hasPrefix(DesiredDomain.port(for: BandwidthMeterTests.b1)) })
        try check()
        let last = try world.meter()
        #expect(last.status == 0 && last.output.contains("0 bytes recorded") && !last.output.contains("deleted"), "\(last.output)")
        try check()

        // The month's statement charges a1's public bytes at 0.80 per GB (10⁹ bytes).
        let bytes = expected["a1 out public"]!
        let bill = try StackLabBinary.run(["bill", "alpha", "--month", "2026-11", "--format", "json", "--at", "2026-11-30", "--repo", world.repo.path, "--state-dir", world.state.path])
        #expect(bill.status == 0, "\(bill.output)")
        struct Statement: Decodable {
            struct Total: Decodable { var category: String; var total: String }
            struct Line: Decodable { var category: String; var address: String; var item: String; var total: String }
            var totals: [Total]
            var lines: [Line]
        }
        let statement = try JSONDecoder().decode(Statement.self, from: Data(bill.output.utf8))
        let charge = Double(bytes) / 1e9 * 0.80
        let line = try #require(statement.lines.first { $0.category == "bandwidth" }, "\(bill.output)")
        #expect(line.address == "instance/bw/alpha/a1" && line.item == "public out" && abs((Double(line.total) ?? -1) - charge) < 1e-6, "\(line) want \(charge)")
        #expect(statement.lines.filter { $0.category == "bandwidth" }.count == 1, "internal traffic has no price here: not charged")
        #expect(statement.totals.contains { $0.category == "bandwidth" }, "\(statement.totals.map(\.category))")
        let verified = try StackLabBinary.run(["bill", "--verify", "--at", "2026-11-30", "--repo", world.repo.path, "--state-dir", world.state.path])
        #expect(verified.status == 0, "\(verified.output)")
    }
}
