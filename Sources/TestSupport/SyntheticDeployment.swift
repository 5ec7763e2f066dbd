import Foundation

/// Writes a large but valid StackLab deployment for benchmarks: regions of 100 nodes, tenants with instances.
public struct SyntheticDeployment {
    public var nodes: Int
    public var instances: Int
    public var nodesPerRegion = 100
    public var instancesPerFile = 60
    public var tenants = 300
    /// Extra ingress rules in each tenant's `web` group (every fifth one from the group itself rather than a CIDR).
    public var extraRulesPerGroup = 0
    /// Each node's instance storage (`instanceStorage`), when not the default.
    public var instanceStorage: String?

    /// A deployment of `nodes` nodes and `instances` instances.
    public init(nodes: Int, instances: Int) {
        self.nodes = nodes
        self.instances = instances
    }

    /// Regions of `nodesPerRegion` nodes.
    public var regions: Int { max(1, (nodes + nodesPerRegion - 1) / nodesPerRegion) }

    /// Writes the files under `root` and returns how many were written.
    public func write(to root: String) throws -> Int {
        var written = 0
        func put(_ path: String, _ text: String) throws {
            let url = URL(fileURLWithPath: root).appendingPathComponent(path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try text.write(to: url, atomically: false, encoding: .utf8)
            written += 1
        }
        try put("manifests/catalog.yaml", Self.catalog)
        var remaining = nodes
        for r in 0..<regions {
            let region = Self.regionName(r)
            let count = min(nodesPerRegion, remaining)
            remaining -= count
            try put("regions/\(region)/region.yaml", """
                kind: Region
                name: \(region)
                spec:
                  sponsor: Sponsor \(r)
                  cpuAllocationRatio: 16
                  ramAllocationRatio: 1.5

                """)
            var nodesText = ""
            for n in 0..<count {
                let storage = n % 10 < 3
                let roles = "[" + (n == 0 ? "controller, " : "") + "compute" + (storage ? ", storage, volume" : "") + "]"
                nodesText += """
                    ---
                    kind: Node
                    name: \(region)-n\(n)
                    spec:
                      address: 10.\(200 + r / 250).\(r % 250).\(n + 1)
                      libvirt: simulated
                      roles: \(roles)
                      cpus: 64
                      memory: 512GiB
                      zone: z\(n % 4)

                    """
                if let instanceStorage { nodesText += "  instanceStorage: \(instanceStorage)\n" }
                if storage {
                    nodesText += "  disks:\n"
                    for d in 0..<12 { nodesText += "    - {name: sd\(Self.diskLetter(d)), size: 2TB}\n" }
                }
            }
            try put("regions/\(region)/nodes.yaml", nodesText)
            try put("regions/\(region)/network.yaml", """
                kind: Network
                name: private
                spec:
                  mode: FlatDHCP
                  multiHost: true
                  bridge: br100
                  fixedRange: 10.\(r % 200).0.0/16
                  gateway: 10.\(r % 200).0.1
                  dns: [10.\(r % 200).0.2]
                  floatingRange: 100.\(64 + r / 256).\(r % 256).0/24

                """)
            try put("regions/\(region)/rings.yaml", ["account", "container", "object"].map { ring in
                "---\nkind: Ring\nname: \(ring)\nspec:\n  partPower: \(ring == "object" ? 16 : 12)\n  replicas: 3\n  minPartHours: 1\n"
            }.joined())
        }
        for t in 0..<tenants {
            try put("manifests/tenants/\(Self.tenantName(t))/tenant.yaml", """
                kind: Tenant
                name: \(Self.tenantName(t))
                spec:
                  displayName: Tenant \(t)
                  billing: payAsYouGo
                ---
                kind: Keypair
                name: ops
                tenant: \(Self.tenantName(t))
                spec:
                  publicKey: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBenchmarkKeyForTenant\(t)xxxxxxxxxxxxxxxx ops@\(Self.tenantName(t))
                ---
                kind: SecurityGroup
                name: web
                tenant: \(Self.tenantName(t))
                spec:
                  rules:
                    - {protocol: tcp, ports: 443, cidr: 0.0.0.0/0}
                    - {protocol: tcp, ports: 22, cidr: 10.0.0.0/8}

                """ + (0..<extraRulesPerGroup).map { k in
                    k % 5 == 0 ? "    - {protocol: tcp, ports: \(9000 + k), group: web}\n"
                        : "    - {protocol: \(k % 2 == 0 ? "udp" : "tcp"), ports: \(10000 + 10 * k)-\(10005 + 10 * k), cidr: 172.\(16 + k % 16).\(k % 250).0/24}\n"
                }.joined())
        }
        var file = ""
        var inFile = 0
        var fileIndex = 0
        for i in 0..<instances {
            let r = i % regions
            let t = i % tenants
            let host = i / regions
            file += """
                ---
                kind: Instance
                name: vm-\(i)
                region: \(Self.regionName(r))
                tenant: \(Self.tenantName(t))
                spec:
                  flavor: \(["m1.tiny", "m1.small", "ssd.tiny", "ssd.small"][i % 4])
                  image: ubuntu-24.04
                  network: private
                  keypair: ops
                  securityGroups: [web]
                  zone: z\(i % min(4, nodesPerRegion))
                  state: running
                  billing: \(i % 7 == 0 ? "monthly" : "hourly")
                  userData: "#cloud-config\\nhostname: vm-\(i)\\npackages: [nginx, prometheus-node-exporter]\\n"

                """
            if i % 10 == 0 { file += "  fixedIP: 10.\(r % 200).\(2 + host / 250).\(1 + host % 250)\n" }
            inFile += 1
            if inFile == instancesPerFile || i == instances - 1 {
                try put("manifests/tenants/\(Self.tenantName(fileIndex % tenants))/instances-\(fileIndex).yaml", file)
                file = ""
                inFile = 0
                fileIndex += 1
            }
        }
        return written
    }

    /// The name of region `index`.
    public static func regionName(_ index: Int) -> String { "r\(index)" }
    /// The name of tenant `index`.
    public static func tenantName(_ index: Int) -> String { "t\(index)" }
    /// The device letter of a node's disk `index` (b, c…).
    public static func diskLetter(_ index: Int) -> String { String(UnicodeScalar(UInt8(ascii: "b") + UInt8(index))) }

    /// Flavors, images and the price list every synthetic deployment shares.
    public static let catalog = """
        kind: Flavor
        name: m1.tiny
        spec: {vcpus: 1, ram: 512MiB, disk: 1GiB}
        ---
        kind: Flavor
        name: m1.small
        spec: {vcpus: 1, ram: 2GiB, disk: 20GiB}
        ---
        kind: Flavor
        name: ssd.tiny
        spec: {vcpus: 1, ram: 512MiB, disk: 1GiB, diskType: ssd}
        ---
        kind: Flavor
        name: ssd.small
        spec: {vcpus: 1, ram: 2GiB, disk: 20GiB, diskType: ssd}
        ---
        kind: Image
        name: ubuntu-24.04
        spec: {format: qcow2, source: images/ubuntu-24.04.qcow2, os: ubuntu-24.04}
        ---
        kind: PriceList
        name: standard
        spec:
          currency: CNY
          flavors:
            m1.tiny: {hourly: 0.17, monthly: 100}
            m1.small: {hourly: 0.33, monthly: 200}
            ssd.tiny: {hourly: 0.25, monthly: 150}
            ssd.small: {hourly: 0.5, monthly: 300}

        """
}
