import TestSupport

/// Manifest text shared by the tests that drive real nodes (a private libvirtd behind its own sshd).
enum RealNodeManifests {
    /// A Node document for a real node reached through `server`, with its files under `root`.
    static func node(_ name: String, server: LoopbackSSHD, root: Scratch, roles: String, disks: String? = nil) throws -> String {
        """
        kind: Node
        name: \(name)
        spec:
          address: \(server.address)
          ssh: {user: \(server.user), port: \(server.port), hostKey: "\(try server.hostKeyLine())"}
          libvirt: qemu+ssh://\(server.user)@\(server.address):\(server.port)/system
          fileRoot: \(root.path)
          roles: [\(roles)]
          cpus: 4
          memory: 8GiB
        \(disks.map { "  disks: \($0)\n" } ?? "")
        """
    }

    /// A simulated storage node (the third server a region needs).
    static func storageNode(_ name: String, address: String) -> String {
        "kind: Node\nname: \(name)\nspec: {address: \(address), libvirt: simulated, roles: [storage], cpus: 4, memory: 8GiB, disks: [{name: sdb, size: 1TB}]}\n"
    }

    /// A region named `name` with its network on 10.`octet`.0.0/24 (and `extra` region spec lines).
    static func region(_ name: String, octet: Int, in repo: Scratch, extra: String = "") throws {
        try repo.write("regions/\(name)/region.yaml", "kind: Region\nname: \(name)\nspec:\n  sponsor: \(name) test\n\(extra)")
        try repo.write("regions/\(name)/network.yaml", """
            kind: Network
            name: private
            spec: {bridge: br100, fixedRange: 10.\(octet).0.0/24, gateway: 10.\(octet).0.1, dns: [10.\(octet).0.2]}
            """)
    }

    /// Flavor m1.tiny and one instance of tenant acme using it.
    static func tinyInstance(_ name: String, region: String, node: String? = nil) -> String {
        """
        kind: Flavor
        name: m1.tiny
        spec: {vcpus: 1, ram: 128MiB, disk: 5GiB}
        ---
        kind: Instance
        name: \(name)
        region: \(region)
        tenant: acme
        spec: {flavor: m1.tiny, image: ubuntu, network: private\(node.map { ", node: \($0)" } ?? "")}

        """
    }
}
