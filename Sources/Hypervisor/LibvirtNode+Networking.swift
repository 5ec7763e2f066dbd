import Foundation
import Hosts
import Manifests
import Planning
import SSH

/// A node's DHCP configuration and ruleset, through its host face: files under `/etc/stacklab/` (under the node's
/// file root), dnsmasq told to reread its hosts, and the ruleset loaded with `nft -f` in one transaction. A node with
/// a file root (a test host sharing a machine) gets the files and an `nft -c` check, never a change to the machine's
/// own interfaces or ruleset; a simulated node keeps the files beside its host file.
extension LibvirtNode {
    static let dnsmasqDirectory = "/etc/stacklab/dnsmasq"
    /// One file per instance on the node, named by its fixed IP, served by `stacklab metadata serve`.
    static let metadataDirectory = "/etc/stacklab/metadata"
    static let rulesetFile = "/etc/stacklab/firewall/stacklab.nft"
    /// What `nft list table` showed right after StackLab loaded the ruleset: a live ruleset that differs was changed by hand.
    static let listedFile = "/etc/stacklab/firewall/listed"

    /// Where a simulated node keeps these files.
    var localRoot: String? { hostFile.map { String($0.dropLast(".xml".count)) } }

    /// Whether commands may change the machine itself (a production node's root is `/`).
    private var ownsMachine: Bool { remote != nil && root.isEmpty }

    /// What the node has: its DHCP configuration, its installed ruleset, and whether the live ruleset differs from it.
    func installedNetworking() throws(DriverError) -> (dhcp: NodeDHCP?, firewall: Ruleset?, drift: String?) {
        var files: [String: String] = [:]
        var live: String?
        var listed: String?
        if remote != nil {
            let script = """
                cd "$STACKLAB_ROOT/" || exit 0
                for f in .\(Self.dnsmasqDirectory)/*.conf .\(Self.dnsmasqDirectory)/*.hosts .\(Self.metadataDirectory)/*.json .\(Self.rulesetFile); do
                  [ -f "$f" ] && { printf '\\n@@file %s\\n' "${f#.}"; cat "$f"; }
                done
                if [ -z "$STACKLAB_ROOT" ] && [ -f .\(Self.rulesetFile) ]; then
                  printf '\\n@@live\\n'; \(Ruleset.listing)
                  printf '\\n@@listed\\n'; cat .\(Self.listedFile) 2>/dev/null
                fi
                printf '\\n'
                """
            let output = try runOnHost(script)
            var section: String?
            var text = ""
            // Every section is followed by the newline that precedes the next marker (a file need not end with one).
            func close() {
                guard let section else { return }
                if text.hasSuffix("\n") { text.removeLast() }
                if section == "@@live" { live = text } else if section == "@@listed" { listed = text } else { files[String(section.dropFirst("@@file ".count))] = text }
            }
            for line in output.split(separator: "\n", omittingEmptySubsequences: false).dropLast(output.hasSuffix("\n") ? 1 : 0) {
                if line.hasPrefix("@@file ") || line == "@@live" || line == "@@listed" {
                    close()
                    section = String(line)
                    text = ""
                } else {
                    text += line + "\n"
                }
            }
            close()
        } else if let base = localRoot {
            let fm = FileManager.default
            for directory in [Self.dnsmasqDirectory, Self.metadataDirectory] {
                for name in (try? fm.contentsOfDirectory(atPath: base + directory)) ?? [] {
                    files[directory + "/" + name] = try? String(contentsOfFile: base + directory + "/" + name, encoding: .utf8)
                }
            }
            files[Self.rulesetFile] = try? String(contentsOfFile: base + Self.rulesetFile, encoding: .utf8)
        }
        var metadata: [String: InstanceMetadata] = [:]
        for (path, text) in files where path.hasPrefix(Self.metadataDirectory + "/") && path.hasSuffix(".json") {
            metadata[String((path as NSString).lastPathComponent.dropLast(".json".count))] = try? JSONDecoder().decode(InstanceMetadata.self, from: Data(text.utf8))
        }
        var networks: [NodeNetwork] = []
        for (path, configuration) in files.sorted(by: { $0.key < $1.key }) where path.hasPrefix(Self.dnsmasqDirectory + "/") && path.hasSuffix(".conf") {
            let name = String((path as NSString).lastPathComponent.dropLast(".conf".count))
            if var network = NodeNetwork(network: name, configuration: configuration, hostsFile: files[Self.dnsmasqDirectory + "/\(name).hosts"] ?? "") {
                for index in network.hosts.indices { network.hosts[index].metadata = metadata[network.hosts[index].ip.description] }
                networks.append(network)
            }
        }
        let ruleset = files[Self.rulesetFile].flatMap(Ruleset.init(parsing:))
        var drift: String?
        if let ruleset, let recorded = ruleset.recordedDigest, recorded != ruleset.digest {
            drift = "the installed ruleset was edited by hand (its rules no longer match the digest StackLab wrote)"
        } else if let live, let listed, ruleset != nil, live != listed {
            drift = live.isEmpty ? "StackLab's table is gone from the kernel" : "changed by hand (nft list differs from what was loaded)"
        }
        return (networks.isEmpty && files.isEmpty ? nil : NodeDHCP(networks: networks), ruleset, drift)
    }

    /// Writes the DHCP files (removing those of networks the node no longer serves) and, on a production node, gives
    /// each bridge its gateway address and has the network's dnsmasq reread its hosts.
    func configureDHCP(_ dhcp: NodeDHCP) throws(DriverError) {
        var files: [(path: String, content: String)] = []
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        for network in dhcp.networks {
            files.append(("\(Self.dnsmasqDirectory)/\(network.network).conf", network.configuration))
            files.append(("\(Self.dnsmasqDirectory)/\(network.network).hosts", network.hostsFile))
            for host in network.hosts {
                guard let metadata = host.metadata, let json = try? encoder.encode(metadata) else { continue }
                files.append(("\(Self.metadataDirectory)/\(host.ip).json", String(decoding: json, as: UTF8.self)))
            }
        }
        let keep = Set(files.map(\.path))
        if remote != nil {
            let host = try hostFace()
            do {
                try host.write(files.map { HostFile(path: $0.path, content: Array($0.content.utf8), mode: 0o644) })
            } catch {
                throw DriverError(node: address, message: "cannot write the DHCP configuration: \(error.message)", isTransient: true)
            }
            var script = "cd \"$STACKLAB_ROOT/\" || exit 1\nfor f in .\(Self.dnsmasqDirectory)/*.conf .\(Self.dnsmasqDirectory)/*.hosts .\(Self.metadataDirectory)/*.json; do\n  case \"${f#.}\" in\n"
            for path in keep.sorted() { script += "    \(Session.quote(path))) ;;\n" }
            script += "    *) rm -f \"$f\" ;;\n  esac\ndone\n"
            if ownsMachine {
                for network in dhcp.networks {
                    script += "ip addr replace \(network.gateway)/\(network.range.prefix) dev \(Session.quote(network.bridge))\n"
                    script += "systemctl reload-or-restart stacklab-dnsmasq@\(network.network) || true\n"
                }
            }
            _ = try runOnHost(script + "true\n")
        } else if let base = localRoot {
            do {
                let fm = FileManager.default
                for directory in [Self.dnsmasqDirectory, Self.metadataDirectory] {
                    for name in (try? fm.contentsOfDirectory(atPath: base + directory)) ?? [] where !keep.contains(directory + "/" + name) {
                        try writeLocal(nil, to: base + directory + "/" + name)
                    }
                }
                for file in files { try writeLocal(Data(file.content.utf8), to: base + file.path) }
            } catch {
                throw DriverError(node: address, message: "cannot write the DHCP configuration: \(error)", isTransient: false)
            }
        }
    }

    /// Installs the ruleset file and loads it atomically (no rules: removes StackLab's table and the file). The file is
    /// checked with `nft -c` on the node first, so a ruleset the kernel refuses never replaces a working one.
    func loadFirewall(_ ruleset: Ruleset) throws(DriverError) {
        let remove = ruleset.rules.isEmpty
        if remote != nil {
            if !remove {
                let host = try hostFace()
                do {
                    try host.write(Self.rulesetFile, content: Array(ruleset.nft.utf8), mode: 0o644)
                } catch {
                    throw DriverError(node: address, message: "cannot write the ruleset: \(error.message)", isTransient: true)
                }
            }
            var script = "cd \"$STACKLAB_ROOT/\" || exit 1\n"
            if remove {
                if ownsMachine { script += "\(Ruleset.removal)\n" }
                script += "rm -f .\(Self.rulesetFile) .\(Self.listedFile)\n"
            } else {
                script += "nft -c -f .\(Self.rulesetFile) || exit 3\n"
                if ownsMachine {
                    // The metadata service knows an instance by its port's mark, which an accepted connection carries only
                    // with tcp_fwmark_accept; the bridge table sees bridged frames without br_netfilter.
                    script += "sysctl -qw net.ipv4.tcp_fwmark_accept=1\n"
                    script += "nft -f .\(Self.rulesetFile) && { \(Ruleset.listing); } > .\(Self.listedFile)\n"
                }
            }
            _ = try runOnHost(script + "true\n")
        } else if let base = localRoot {
            do {
                try writeLocal(remove ? nil : Data(ruleset.nft.utf8), to: base + Self.rulesetFile)
            } catch {
                throw DriverError(node: address, message: "cannot write the ruleset: \(error)", isTransient: false)
            }
        }
    }

    /// Runs a script through the host face; a failure carries its output.
    func runOnHost(_ script: String) throws(DriverError) -> String {
        let result: CommandResult
        let host = try hostFace()
        do {
            result = try host.run(script)
        } catch {
            throw DriverError(node: address, message: error.message, isTransient: true)
        }
        guard result.exitStatus == 0 else {
            throw DriverError(node: address, message: "a host command failed (exit \(result.exitStatus)): \(result.stderr)\(result.stdout)", isTransient: false)
        }
        return result.stdout
    }
}
