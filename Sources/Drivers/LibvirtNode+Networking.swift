import Foundation
import Hosts
import Manifests
import Planning
import SSH

/// A node's DHCP configuration and ruleset, through its machine: files under `/etc/stacklab/`, dnsmasq told to reread
/// its hosts, and the ruleset loaded in one transaction (see `NodeMachine`). Here: what the files mean.
extension LibvirtNode {
    /// What the node has: its DHCP configuration, its installed ruleset, and whether the live ruleset differs from it.
    func installedNetworking() throws(DriverError) -> (dhcp: NodeDHCP?, firewall: Ruleset?, drift: String?, proxy: (text: String?, drift: String?)) {
        let found = try machine.networkFiles()
        let files = found.files, live = found.live, listed = found.listed
        var metadata: [String: InstanceMetadata] = [:]
        for (path, text) in files where path.hasPrefix(NetworkFiles.metadataDirectory + "/") && path.hasSuffix(".json") {
            metadata[String((path as NSString).lastPathComponent.dropLast(".json".count))] = try? JSONDecoder().decode(InstanceMetadata.self, from: Data(text.utf8))
        }
        var networks: [NodeNetwork] = []
        for (path, configuration) in files.sorted(by: { $0.key < $1.key }) where path.hasPrefix(NetworkFiles.dnsmasqDirectory + "/") && path.hasSuffix(".conf") {
            let name = String((path as NSString).lastPathComponent.dropLast(".conf".count))
            if var network = NodeNetwork(network: name, configuration: configuration, hostsFile: files[NetworkFiles.dnsmasqDirectory + "/\(name).hosts"] ?? "") {
                for index in network.hosts.indices { network.hosts[index].metadata = metadata[network.hosts[index].ip.description] }
                networks.append(network)
            }
        }
        let ruleset = files[NetworkFiles.rulesetFile].flatMap(Ruleset.init(parsing:))
        var drift: String?
        if let ruleset, let recorded = ruleset.recordedDigest, recorded != ruleset.digest {
            drift = "the installed ruleset was edited by hand (its rules no longer match the digest StackLab wrote)"
        } else if let live, let listed, ruleset != nil, live != listed {
            drift = live.isEmpty ? "StackLab's table is gone from the kernel" : "changed by hand (nft list differs from what was loaded)"
        }
        let dhcpFiles = files.keys.contains { $0 != ProxyConfig.file }
        return (networks.isEmpty && !dhcpFiles ? nil : NodeDHCP(networks: networks), ruleset, drift, Self.installedProxy(found))
    }

    /// The node's installed HAProxy configuration, and why HAProxy is not running it as StackLab installed it.
    static func installedProxy(_ found: NetworkFiles) -> (text: String?, drift: String?) {
        guard let text = found.files[ProxyConfig.file] else { return (nil, nil) }
        if !ProxyConfig.isIntact(text) {
            return (text, "haproxy.cfg was edited by hand (it no longer matches the digest StackLab wrote)")
        }
        if found.proxyRunning == false { return (text, "HAProxy is not running") }
        return (text, nil)
    }

    /// Writes the DHCP files (removing those of networks the node no longer serves) and, on a production node, gives
    /// each bridge its gateway address and has the network's dnsmasq reread its hosts.
    func configureDHCP(_ dhcp: NodeDHCP) throws(DriverError) {
        var files: [(path: String, content: String)] = []
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        for network in dhcp.networks {
            files.append(("\(NetworkFiles.dnsmasqDirectory)/\(network.network).conf", network.configuration))
            files.append(("\(NetworkFiles.dnsmasqDirectory)/\(network.network).hosts", network.hostsFile))
            for host in network.hosts {
                guard let metadata = host.metadata, let json = try? encoder.encode(metadata) else { continue }
                files.append(("\(NetworkFiles.metadataDirectory)/\(host.ip).json", String(decoding: json, as: UTF8.self)))
            }
        }
        try machine.writeNetworkFiles(files, dhcp: dhcp)
    }

    /// Each backend server's health as the node's HAProxy reports it; nil when it runs none to ask.
    public func proxyHealth() throws(DriverError) -> [ProxyServerHealth]? {
        try machine.proxyHealth()
    }

    /// The node's traffic counters now (nil where its kernel's ruleset is not StackLab's to read).
    public func trafficReading() throws(DriverError) -> TrafficReading? {
        try machine.trafficReading()
    }

    /// Deletes counters no rule counts into any more, once they are metered.
    public func deleteTrafficCounters(_ names: [String]) throws(DriverError) {
        try machine.deleteTrafficCounters(names)
    }

    /// Installs the ruleset file and loads it atomically (no rules: removes StackLab's table and the file). The file is
    /// checked with `nft -c` on the node first, so a ruleset the kernel refuses never replaces a working one.
    func loadFirewall(_ ruleset: Ruleset) throws(DriverError) {
        try machine.loadRuleset(ruleset)
    }
}
