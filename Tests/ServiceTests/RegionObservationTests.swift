import Manifests
import Planning
import Testing
@testable import Service

/// What the dashboard's region page shows of public domains: the ports the load-balancer nodes' installed
/// configurations hand out, read from the loop's last observation (a page never asks a node).
@Suite struct RegionObservationTests {
    @Test func publicPortsAreReadFromTheInstalledConfiguration() throws {
        let node = Address(kind: .node, region: "lab", name: "lab-lb")
        let web1 = Address(kind: .instance, region: "lab", tenant: "acme", name: "web-1")
        let shop = Address(kind: .loadBalancer, region: "lab", tenant: "acme", name: "shop")
        let config = ProxyConfig(node: node, runDirectory: ProxyConfig.runDirectory, services: [
            .init(name: "pd:\(PublicDomain.label(for: web1))", owner: PortOwner(address: web1), mode: .tcp, port: 11004, host: "x.lb.lab.example.org",
                  servers: [.init(name: "web-1", ip: IPv4Address(0x0A14_000A), port: 22)], balance: .roundrobin, check: nil, cookie: false, sources: nil),
            .init(name: "lb:acme:shop:tcp443", owner: PortOwner(address: shop, listener: 443), mode: .tcp, port: 11005, host: "shop.acme.lb.lab.example.org",
                  servers: [], balance: .roundrobin, check: nil, cookie: false, sources: nil),
        ], held: [])
        var observed = ObservedNode(address: node, domains: [], networks: [])
        observed.proxy = config.text
        let observation = RegionObservation([observed])
        #expect(observation.publicPorts == [web1: 11004], "instances only; a listener's port is its load balancer's")
        #expect(RegionObservation([ObservedNode(address: node, domains: [], networks: [])]).publicPorts.isEmpty)
    }
}
