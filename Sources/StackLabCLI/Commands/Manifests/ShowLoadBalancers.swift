import Drivers
import Foundation
import Manifests
import Planning
import Reconcile

/// `stacklab show loadbalancer --live` and `stacklab show instance --live`: what the region's load-balancer nodes
/// serve, read from the configuration each one has installed, and each backend server's health from HAProxy's stats
/// socket on the node.
struct LoadBalancerStatus: Encodable {
    var address: String
    /// `http www.devops.lb.sina.stacklab.org:80 → members:80`, `tcp www.devops.lb.sina.stacklab.org:11003 → members:443`.
    var listeners: [String]
    var nodes: [NodeHealth]

    struct NodeHealth: Encodable {
        var node: String
        /// nil: the node runs no HAProxy to ask (a simulated node, or HAProxy stopped).
        var servers: [ProxyServerHealth]?
    }

    /// Observes the load-balancer nodes of the regions of `balancers`.
    static func observe(_ balancers: [Resource<LoadBalancerSpec>], reconciler: Reconciler) throws -> [LoadBalancerStatus] {
        let regions = Set(balancers.compactMap(\.region)).sorted()
        let (installed, drivers) = try ProxyNodes.observe(regions: regions, reconciler: reconciler)
        var health: [Address: [ProxyServerHealth]?] = [:]
        for (address, driver) in drivers where installed[address] != nil {
            health[address] = try (driver as? any LibvirtBacked).flatMap { try $0.libvirtNode.proxyHealth() }
        }
        return balancers.sorted { $0.address < $1.address }.map { balancer in
            let domains = reconciler.model.regions.first { $0.name == balancer.region }?.spec.publicDomains?.value
            let host = domains.map { PublicDomain.name(forBalancer: balancer.address, domains: $0) } ?? "(no public domains)"
            let ports = installed.values.lazy.compactMap { $0 }.first?.ports ?? [:]
            let listeners = balancer.spec.listeners.value.map { listener in
                let port = listener.proto.value == .http ? ProxyConfig.httpPort : ports[PortOwner(address: balancer.address, listener: listener.port.value)]
                return "\(listener.proto.value.rawValue) \(host):\(port.map(String.init) ?? "(no port yet: apply allocates one)") → members:\(listener.port.value)"
            }
            let prefix = "lb:\(balancer.tenant ?? ""):\(balancer.name):"
            let nodes = installed.keys.filter { $0.region == balancer.region }.sorted().map { node in
                NodeHealth(node: node.name, servers: (health[node] ?? nil).map { $0.filter { $0.backend.hasPrefix(prefix) } })
            }
            return LoadBalancerStatus(address: balancer.address.description, listeners: listeners, nodes: nodes)
        }
    }

    var text: String {
        var out = address + "\n" + listeners.map { "  \($0)\n" }.joined()
        if nodes.isEmpty { out += "  on no load-balancer node yet (apply installs it)\n" }
        for node in nodes {
            guard let servers = node.servers else {
                out += "  \(node.node): installed; no HAProxy to ask (a simulated node, or HAProxy is stopped: see stacklab drift)\n"
                continue
            }
            out += "  \(node.node):\n" + servers.map { "    \($0.backend) \($0.server): \($0.status)\($0.check.map { " (\($0))" } ?? "")\n" }.joined()
        }
        return out
    }
}

/// An instance's public domain as the region's load-balancer nodes serve it.
struct PublicDomainStatus: Encodable {
    var address: String
    /// `name:port`, nil when it has none.
    var publicDomain: String?
    var why: String?

    static func observe(_ instances: [Resource<InstanceSpec>], reconciler: Reconciler) throws -> [PublicDomainStatus] {
        let (installed, _) = try ProxyNodes.observe(regions: Set(instances.compactMap(\.region)).sorted(), reconciler: reconciler)
        return instances.sorted { $0.address < $1.address }.map { instance in
            let domains = reconciler.model.regions.first { $0.name == instance.region }?.spec.publicDomains?.value
            let port = installed.filter { $0.key.region == instance.region }.values.lazy.compactMap { $0?.ports[PortOwner(address: instance.address)] }.first
            guard let domains else { return PublicDomainStatus(address: instance.address.description, why: "region '\(instance.region ?? "")' has no publicDomains") }
            guard let port else {
                return PublicDomainStatus(address: instance.address.description,
                                          why: "none served: its security groups must open port \(domains.effectiveInstancePort), and apply installs it")
            }
            return PublicDomainStatus(address: instance.address.description, publicDomain: "\(PublicDomain.name(for: instance.address, domains: domains)):\(port)")
        }
    }

    var text: String { "\(address)  public domain \(publicDomain ?? "none (\(why ?? ""))")\n" }
}

/// The load-balancer nodes of some regions and what each has installed.
enum ProxyNodes {
    static func observe(regions: [String], reconciler: Reconciler) throws -> (installed: [Address: ProxyConfig.Installed?], drivers: [Address: any NodeDriver]) {
        let balancerNodes = reconciler.model.nodes.filter { regions.contains($0.region ?? "") && $0.spec.has(.loadbalancer) }
        let endpoints = balancerNodes.map(NodeEndpoint.init)
        let drivers = try reconciler.drivers(for: endpoints)
        var installed: [Address: ProxyConfig.Installed?] = [:]
        for node in try reconciler.observe(drivers) { installed[node.address] = node.proxy.flatMap(ProxyConfig.Installed.init(parsing:)) }
        return (installed, drivers)
    }
}
