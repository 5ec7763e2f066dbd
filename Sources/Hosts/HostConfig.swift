import Crypto
import Foundation
import Manifests
import Planning

/// One thing a node's host must have: a file (content and mode), or a command guarded so that a second run does
/// nothing (`creates`: a path that exists once it ran; `unless`: a check that succeeds once it ran).
public struct HostItem: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case file(path: String, content: [UInt8], mode: Int32)
        case command(run: String, creates: String?, unless: String?)
    }

    /// What people read (`file /etc/stacklab/node.json`, `make /var/lib/stacklab/instances`).
    public var name: String
    public var kind: Kind

    /// Creates an item.
    public init(name: String, kind: Kind) {
        self.name = name
        self.kind = kind
    }

    /// Hex sha256 of a file item's content.
    public var sha256: String? {
        guard case .file(_, let content, _) = kind else { return nil }
        return SHA256.hash(data: content).map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }
}

/// What each node's host must have, derived from the manifests: its identity, the region catalog, its storage
/// layout, the Swift rings it serves, and the directories its roles use. Services are enabled only on SSH hosts whose
/// file root is `/` (a simulated node or a test host must not start services on the machine running StackLab).
public enum HostConfig {
    /// The items of `node`, in the order they are converged. `rings` are the saved ring builders (by ring address);
    /// a ring without one is installed by the first apply instead.
    public static func items(for node: Resource<NodeSpec>, model: DesiredModel, rings: [Address: StoredRing]) throws -> [HostItem] {
        let spec = node.spec
        var items: [HostItem] = []
        func file(_ path: String, _ content: [UInt8], mode: Int32 = 0o644) {
            items.append(HostItem(name: "file \(path)", kind: .file(path: path, content: content, mode: mode)))
        }
        func directory(_ path: String) {
            items.append(HostItem(name: "directory \(path)", kind: .command(run: "mkdir -p -- \"$STACKLAB_ROOT\"\(shellQuote(path))", creates: path, unless: nil)))
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]

        struct Identity: Encodable {
            var region: String, name: String, address: String, roles: [String], zone: String
        }
        file("/etc/stacklab/node.json", Array(try encoder.encode(Identity(
            region: node.region ?? "", name: node.name, address: spec.address.value.description,
            roles: spec.roles.value.map(\.value.rawValue).sorted(), zone: spec.zone?.value ?? node.name))) + [0x0A])
        file("/etc/stacklab/catalog.json", Array(try encoder.encode(catalog(model))) + [0x0A])

        let networks = model.networks.filter { $0.region == node.region }.map(\.name).sorted()
        if spec.has(.compute) {
            directory("/var/lib/stacklab/instances")
            directory("/var/lib/stacklab/images")
            // FlatDHCP multi-host: the node routes its instances, and its ruleset sees bridged traffic too.
            file("/etc/sysctl.d/60-stacklab.conf", Array("net.ipv4.ip_forward = 1\nnet.bridge.bridge-nf-call-iptables = 1\nnet.ipv4.tcp_fwmark_accept = 1\n".utf8))
            file("/etc/systemd/system/stacklab-metadata.service", Array(Self.metadataUnit.utf8))
            file("/etc/systemd/system/stacklab-dnsmasq@.service", Array(Self.dnsmasqUnit.utf8))
        }
        if spec.has(.volume) { directory("/var/lib/stacklab/volumes") }
        if spec.has(.loadbalancer) {
            directory("/etc/stacklab/haproxy")
            file("/etc/systemd/system/stacklab-haproxy.service", Array(Self.haproxyUnit.utf8))
        }
        if spec.has(.storage) {
            struct Storage: Encodable {
                struct Device: Encodable { var name: String, bytes: UInt64, weight: Double, mount: String }
                var devices: [Device]
            }
            let disks = spec.disks?.value ?? []
            for disk in disks { directory("/srv/node/\(disk.name.value)") }
            file("/etc/stacklab/storage.json", Array(try encoder.encode(Storage(devices: disks.map {
                .init(name: $0.name.value, bytes: $0.size.value.bytes, weight: $0.effectiveWeight, mount: "/srv/node/\($0.name.value)")
            }))) + [0x0A])
        }
        if spec.has(.storage) || spec.has(.controller) {
            for ring in model.rings.filter({ $0.region == node.region }).sorted(by: { $0.name < $1.name }) {
                guard let stored = rings[ring.address] else { continue }
                let type = ring.fileName.replacingOccurrences(of: ".ring.gz", with: "")
                file("/etc/swift/\(ring.fileName)", Array(try RingPlanner.file(of: stored, type: type)))
            }
        }
        // Services run on real servers only: never on a simulated node (this machine) nor on a test host with a file root.
        if !spec.isSimulated, (spec.fileRoot?.value ?? "/") == "/" {
            var services: [String] = []
            if spec.has(.compute) {
                items.append(HostItem(name: "sysctl stacklab", kind: .command(
                    run: "modprobe br_netfilter; systemctl daemon-reload && sysctl -q -p /etc/sysctl.d/60-stacklab.conf", creates: nil,
                    unless: "[ \"$(sysctl -n net.ipv4.ip_forward)\" = 1 ] && [ \"$(sysctl -n net.bridge.bridge-nf-call-iptables 2>/dev/null)\" = 1 ] && [ \"$(sysctl -n net.ipv4.tcp_fwmark_accept)\" = 1 ]")))
                services += ["libvirtd", "stacklab-metadata"]
                // dnsmasq starts once the first apply wrote its configuration; the DHCP change restarts it.
                for network in networks {
                    items.append(HostItem(name: "enable stacklab-dnsmasq@\(network)", kind: .command(
                        run: "systemctl enable stacklab-dnsmasq@\(network)", creates: nil, unless: "systemctl is-enabled --quiet stacklab-dnsmasq@\(network)")))
                }
            }
            if spec.has(.storage) { services += ["swift-object", "swift-container", "swift-account"] }
            if spec.has(.controller) { services.append("swift-proxy") }
            for service in services {
                items.append(HostItem(name: "service \(service)", kind: .command(
                    run: "systemctl enable --now \(service)", creates: nil, unless: "systemctl is-active --quiet \(service)")))
            }
        }
        return items
    }

    /// The metadata service unit: `stacklab metadata serve` from `/usr/local/bin` (a build with `--static-swift-stdlib`,
    /// which bootstrap does not ship).
    static let metadataUnit = """
        # StackLab: the metadata service of this compute node (managed by StackLab)
        [Unit]
        Description=StackLab instance metadata (169.254.169.254)
        After=network-online.target

        [Service]
        ExecStart=/usr/local/bin/stacklab metadata serve --root / --listen 0.0.0.0:8775
        Restart=always
        RestartSec=2

        [Install]
        WantedBy=multi-user.target

        """

    /// HAProxy for the region's public domains and load balancers, from the configuration the HAProxy change writes
    /// (checked with `haproxy -c` before it is installed; a reload hands the listening sockets over, dropping nothing).
    static let haproxyUnit = """
        # StackLab: HAProxy for this region's public domains and load balancers (managed by StackLab)
        [Unit]
        Description=StackLab HAProxy
        After=network-online.target
        ConditionPathExists=/etc/stacklab/haproxy/haproxy.cfg

        [Service]
        ExecStartPre=/usr/sbin/haproxy -c -q -f /etc/stacklab/haproxy/haproxy.cfg
        ExecStart=/usr/sbin/haproxy -Ws -f /etc/stacklab/haproxy/haproxy.cfg
        ExecReload=/usr/sbin/haproxy -c -q -f /etc/stacklab/haproxy/haproxy.cfg
        ExecReload=/bin/kill -USR2 $MAINPID
        RuntimeDirectory=stacklab
        RuntimeDirectoryPreserve=yes
        Type=notify
        Restart=always

        [Install]
        WantedBy=multi-user.target

        """

    /// One dnsmasq per network, from the configuration the DHCP change writes.
    static let dnsmasqUnit = """
        # StackLab: DHCP and DNS for one network's instances on this node (managed by StackLab)
        [Unit]
        Description=StackLab dnsmasq for network %i
        After=network-online.target
        ConditionPathExists=/etc/stacklab/dnsmasq/%i.conf

        [Service]
        ExecStart=/usr/sbin/dnsmasq --keep-in-foreground --conf-file=/etc/stacklab/dnsmasq/%i.conf --pid-file=/run/stacklab-dnsmasq-%i.pid
        ExecReload=/bin/kill -HUP $MAINPID
        Restart=always

        [Install]
        WantedBy=multi-user.target

        """

    /// The service catalog every node carries: each region's endpoints on its controllers (Keystone's multi-region
    /// catalog, as the seed ran it).
    static func catalog(_ model: DesiredModel) -> [String: [String: [String]]] {
        var catalog: [String: [String: [String]]] = [:]
        for region in model.regions {
            let controllers = model.nodes.filter { $0.region == region.name && $0.spec.has(.controller) }.sorted { $0.name < $1.name }
            var endpoints: [String: [String]] = [:]
            for controller in controllers {
                let host = controller.spec.address.value.description
                endpoints["identity", default: []].append("http://\(host):5000/v3")
                endpoints["compute", default: []].append("http://\(host):8774/v2.1")
                endpoints["image", default: []].append("http://\(host):9292")
                endpoints["object-store", default: []].append("http://\(host):8080/v1")
                endpoints["volume", default: []].append("http://\(host):8776/v3")
            }
            catalog[region.name] = endpoints
        }
        return catalog
    }
}
