import Drivers
import Foundation
import ManifestSources
import Manifests
import Planning
import Processes
import TestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The HAProxy configuration StackLab renders for a load-balancer node, installed by the node's host face over SSH
/// (`haproxy -c`, renamed in, started as a master process; later reloads with USR2) into a network namespace the test
/// wires like a load-balancer node, and judged with real connections: a public domain reaches its instance and only from
/// the sources its security group allows; an http listener routes by Host and spreads over its pool; a member that
/// fails its check leaves and comes back; a reload keeps an established connection; tenant A's listeners never reach
/// tenant B's instances; a stopped HAProxy is drift and the next load starts it.
@Suite(.serialized) struct LoadBalancerTrafficTests {
    static let manifests = """
        kind: Region
        name: lbt
        spec:
          sponsor: Load-balancer test
          publicDomains: {suffix: example.org, ports: 11000-11009, instancePort: 22}
        ---
        kind: Network
        name: private
        region: lbt
        spec: {bridge: br100, fixedRange: 10.40.0.0/24, gateway: 10.40.0.1}
        ---
        kind: Node
        name: lbt-1
        region: lbt
        spec: {address: 172.16.98.1, libvirt: simulated, roles: [controller, compute], cpus: 16, memory: 64GiB}
        ---
        kind: Node
        name: lbt-2
        region: lbt
        spec: {address: 172.16.98.2, libvirt: simulated, roles: [compute], cpus: 16, memory: 64GiB}
        ---
        kind: Node
        name: lbt-lb
        region: lbt
        spec: {address: 127.0.0.1, libvirt: "qemu+ssh://root@127.0.0.1/system", roles: [loadbalancer], cpus: 2, memory: 4GiB, fileRoot: FILEROOT}
        ---
        kind: Tenant
        name: alpha
        ---
        kind: Tenant
        name: beta
        ---
        kind: SecurityGroup
        name: ssh
        tenant: alpha
        spec: {rules: [{protocol: tcp, ports: 22, cidr: 0.0.0.0/0}]}
        ---
        kind: SecurityGroup
        name: office
        tenant: beta
        spec: {rules: [{protocol: tcp, ports: 22, cidr: 198.51.100.0/24}]}
        ---
        kind: Instance
        name: a1
        region: lbt
        tenant: alpha
        spec: {flavor: m1.small, image: ubuntu, network: private, securityGroups: [ssh], fixedIP: 10.40.0.11}
        ---
        kind: Instance
        name: a2
        region: lbt
        tenant: alpha
        spec: {flavor: m1.small, image: ubuntu, network: private, fixedIP: 10.40.0.12}
        ---
        kind: Instance
        name: b1
        region: lbt
        tenant: beta
        spec: {flavor: m1.small, image: ubuntu, network: private, securityGroups: [office], fixedIP: 10.40.0.21}
        ---
        kind: LoadBalancer
        name: web
        region: lbt
        tenant: alpha
        spec:
          listeners: [{protocol: http, port: 8080}, {protocol: tcp, port: 8080}]
          members: [a1, a2]
          healthCheck: {type: http, path: /health, interval: 300ms, rise: 2, fall: 2}
        ---
        kind: LoadBalancer
        name: api
        region: lbt
        tenant: beta
        spec:
          listeners: [{protocol: http, port: 8080}]
          members: [b1]

        """

    static let node = Address(kind: .node, region: "lbt", name: "lbt-lb")

    final class World {
        let lab: PacketLab
        let repo: Scratch
        let root: Scratch
        let sshd: LoopbackSSHD
        let machine: RemoteMachine
        var webroots: [String: Scratch] = [:]

        init() throws {
            try #require(PacketLab.isAvailable, "root, iproute2, nftables and python3 are needed: bash .ci/setup installs them")
            try #require(FileManager.default.isExecutableFile(atPath: "/usr/sbin/haproxy"), "haproxy is needed: bash .ci/setup installs it")
            lab = try PacketLab()
            root = try Scratch("lb-root")
            for name in ["lb", "a1", "a2", "b1", "client", "office"] { try lab.add(name) }
            try lab.run("lb", "ip link add br100 type bridge && ip link set br100 up && ip addr add 10.40.0.1/24 dev br100")
            for (name, ip) in [("a1", "10.40.0.11"), ("a2", "10.40.0.12"), ("b1", "10.40.0.21")] {
                try lab.link("lb", "p-\(name)", nil, name, "eth0", "\(ip)/24", bridge: "br100")
                // Each instance answers http on 8080 with its name (and /health while the file is there), and tcp 22.
                let webroot = try Scratch("webroot-\(name)")
                try webroot.write("index.html", "\(name)\n")
                try webroot.write("health", "ok\n")
                webroots[name] = webroot
                try lab.start(name, ["python3", "-m", "http.server", "8080", "--bind", ip, "--directory", webroot.path], listening: 8080)
                try lab.serve(name, tcp: [22])
            }
            try lab.link("lb", "pub0", "203.0.113.1/24", "client", "eth0", "203.0.113.50/24")
            try lab.link("lb", "pub1", "198.51.100.1/24", "office", "eth0", "198.51.100.7/24")
            sshd = try LoopbackSSHD(address: "127.0.0.1", namespace: lab.namespace("lb"))
            repo = try Fixtures.deployment()
            try repo.write("regions/lbt/all.yaml", LoadBalancerTrafficTests.manifests.replacingOccurrences(of: "FILEROOT", with: root.path))
            machine = try RemoteMachine(endpoint: NodeEndpoint(address: LoadBalancerTrafficTests.node, libvirt: "qemu+ssh://\(sshd.user)@127.0.0.1:\(sshd.port)/system",
                                                                cpus: 2, memoryKiB: 4 << 20, hostKey: try sshd.hostKeyLine(), fileRoot: root.path),
                                        identity: sshd.userKey, socket: nil)
        }

        deinit { stopMaster() }

        /// Stops HAProxy's master (not this process's child: it daemonized) and waits until it is gone.
        func stopMaster() {
            guard let pid = masterPID else { return }
            kill(pid, SIGTERM)
            for _ in 0..<200 where kill(pid, 0) == 0 { usleep(25_000) }
        }

        var masterPID: pid_t? {
            (try? String(contentsOfFile: root.path + ProxyConfig.runDirectory + "/haproxy.pid", encoding: .utf8))
                .flatMap { pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }

        /// The configuration StackLab plans for the load-balancer node from `manifests` (the node holding `installed`).
        func plan(_ manifests: String? = nil, installed: String? = nil) throws -> ProxyConfig {
            if let manifests { try repo.write("regions/lbt/all.yaml", manifests.replacingOccurrences(of: "FILEROOT", with: root.path)) }
            let plan = try EmptyNodesPlan.plan(repo: repo.path, region: "lbt", nodes: ["lbt-1", "lbt-2", "lbt-lb"]) { $0[2].proxy = installed }
            for change in plan.changes {
                if case .node(.loadProxy(let config)) = change.operation { return config }
            }
            throw Command.Failure(description: "no HAProxy change in the plan")
        }

        /// `GET /` through the http frontend with a Host header, from `namespace`: the body's first line, or `HTTP <code>`.
        func get(host: String, from namespace: String = "client", to address: String = "203.0.113.1") throws -> String {
            let output = try lab.run(namespace, "curl -s -m 2 -w 'CODE=%{http_code}' -H 'Host: \(host)' http://\(address)/ || true")
            guard let marker = output.range(of: "CODE=", options: .backwards) else { return "no answer: \(output)" }
            let code = output[marker.upperBound...].trimmingCharacters(in: .whitespacesAndNewlines)
            return code == "200" ? String(output[..<marker.lowerBound].split(separator: "\n").first ?? "") : "HTTP \(code)"
        }

        func ports(_ config: ProxyConfig) -> [String: Int] {
            Dictionary(uniqueKeysWithValues: config.ports.map { ($0.key.address.name + ($0.key.listener.map { ":\($0)" } ?? ""), $0.value) })
        }
    }

    @Test func theRenderedConfigurationCarriesTrafficAsTheManifestsSay() throws {
        let world = try World()
        let config = try world.plan()
        try world.machine.loadProxy(config)
        #expect(world.masterPID != nil, "haproxy was started as a master process")
        #expect(try world.machine.networkFiles().proxyRunning == true)
        let ports = world.ports(config)
        let a1 = try #require(ports["a1"]), b1 = try #require(ports["b1"]), raw = try #require(ports["web:8080"])
        #expect(ports["a2"] == nil, "a2's groups do not open port 22: no public domain")

        // Public domains: a1 from anywhere; b1 only from its group's network. The instance sees the load balancer.
        let seen = try world.lab.attempt([
            .init(from: "client", to: "203.0.113.1", port: a1), .init(from: "client", to: "203.0.113.1", port: b1),
            .init(from: "office", to: "198.51.100.1", port: b1),
        ], timeout: 2)
        #expect(seen[.init(from: "client", to: "203.0.113.1", port: a1)] == "10.40.0.1")
        #expect(seen[.init(from: "client", to: "203.0.113.1", port: b1)] == .some(nil), "b1's group admits only 198.51.100.0/24")
        #expect(seen[.init(from: "office", to: "198.51.100.1", port: b1)] == "10.40.0.1")

        // http routes by Host and spreads over the pool; an unknown name gets no backend; A's name never reaches B's.
        let alpha = "web.alpha.lb.lbt.example.org", beta = "api.beta.lb.lbt.example.org"
        var answers: [String] = []
        for _ in 0..<6 { answers.append(try world.get(host: alpha)) }
        #expect(Set(answers) == ["a1", "a2"], "\(answers)")
        #expect(try world.get(host: beta) == "b1")
        #expect(try world.get(host: "nobody.alpha.lb.lbt.example.org") == "HTTP 503")
        #expect(!config.text.split(separator: "\n").contains { $0.contains("10.40.0.21") && $0.contains("server a") }, "no alpha server points at b1")

        // A member failing its check (300 ms × fall 2) leaves; it returns after rise 2.
        try FileManager.default.removeItem(atPath: world.webroots["a2"]!.file("health"))
        usleep(1_500_000)
        answers = []
        for _ in 0..<6 { answers.append(try world.get(host: alpha)) }
        #expect(Set(answers) == ["a1"], "\(answers)")
        // HAProxy's stats socket on the node says so (what `show loadbalancer --live` prints).
        let health = try #require(try world.machine.proxyHealth())
        let web = health.filter { $0.backend == "lb:alpha:web:http" }
        #expect(web.first { $0.server == "a2" }?.status == "DOWN" && web.first { $0.server == "a1" }?.status == "UP", "\(web)")
        #expect(health.first { $0.backend.hasPrefix("pd:") }?.status == "no check", "public domains are forwarded unchecked")
        try world.webroots["a2"]!.write("health", "ok\n")
        usleep(1_500_000)
        answers = []
        for _ in 0..<6 { answers.append(try world.get(host: alpha)) }
        #expect(Set(answers) == ["a1", "a2"], "\(answers)")

        // A reload (a new member, a new master generation through USR2) keeps an established connection: a request
        // started before it completes after it.
        let result = world.root.file("long.out")
        let pid = try Command.start(["ip", "netns", "exec", world.lab.namespace("client"), "python3", "-c", """
            import socket, time
            s = socket.create_connection(('203.0.113.1', \(raw)), timeout=10)
            s.sendall(b'GET / HTTP/1.0\\r\\n'); time.sleep(2); s.sendall(b'\\r\\n')
            data = b''
            while True:
                chunk = s.recv(4096)
                if not chunk: break
                data += chunk
            open('\(result)', 'w').write(data.decode(errors='replace'))
            """])
        usleep(500_000)
        let grown = LoadBalancerTrafficTests.manifests.replacingOccurrences(of: "members: [a1, a2]", with: "members: [a1, a2, a3]")
            + "---\nkind: Instance\nname: a3\nregion: lbt\ntenant: alpha\nspec: {flavor: m1.small, image: ubuntu, network: private, fixedIP: 10.40.0.13}\n"
        let reloaded = try world.plan(grown, installed: config.text)
        #expect(world.ports(reloaded) == ports, "ports are kept across plans")
        try world.machine.loadProxy(reloaded)
        for _ in 0..<100 where !FileManager.default.fileExists(atPath: result) { usleep(100_000) }
        usleep(100_000)
        Command.stop(pid)
        let body = (try? String(contentsOfFile: result, encoding: .utf8)) ?? ""
        #expect(body.contains("200") && (body.hasSuffix("a1\n") || body.hasSuffix("a2\n")), "the connection opened before the reload finished: \(body)")

        // A stopped HAProxy is seen as such, and the next load starts it again.
        world.stopMaster()
        #expect(try world.machine.networkFiles().proxyRunning == false)
        try world.machine.loadProxy(reloaded)
        #expect(try world.machine.networkFiles().proxyRunning == true)
        #expect(try world.get(host: beta) == "b1")
    }

    @Test func aConfigurationHAProxyRefusesIsNeverInstalled() throws {
        let world = try World()
        let config = try world.plan()
        try world.machine.loadProxy(config)
        var broken = config
        broken.services[0].servers.append(.init(name: "bad name", ip: IPv4Address(0x0A28_000B), port: 22))
        #expect(throws: DriverError.self) { try world.machine.loadProxy(broken) }
        let installed = try String(contentsOfFile: world.root.path + ProxyConfig.file, encoding: .utf8)
        #expect(installed == config.text, "the working configuration stays")
        #expect(try world.machine.networkFiles().proxyRunning == true)
    }
}
