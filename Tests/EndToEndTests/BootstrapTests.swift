import Foundation
import Hosts
import Manifests
import Processes
import TestSupport
import Testing

/// `stacklab bootstrap` against three real OpenSSH servers on 127.0.0.2, .3 and .4 (their own host keys, one
/// authorized user key, a file root each), from a temporary manifests repository.
@Suite(.serialized) struct BootstrapTests {
    final class Region {
        let servers: [LoopbackSSHD]
        let roots: [Scratch]
        let repo: Scratch
        let state: Scratch

        init() throws {
            servers = try ["127.0.0.2", "127.0.0.3", "127.0.0.4"].map { try LoopbackSSHD(address: $0) }
            // One operator key for all three servers.
            for server in servers.dropFirst() {
                try FileManager.default.removeItem(atPath: "\(server.directory)/authorized_keys")
                try FileManager.default.copyItem(atPath: "\(servers[0].directory)/user_key.pub", toPath: "\(server.directory)/authorized_keys")
            }
            roots = try servers.map { _ in try Scratch("host-root") }
            repo = try Fixtures.deployment()
            state = try Scratch("state")
            try repo.write("regions/boot/region.yaml", "kind: Region\nname: boot\nspec:\n  sponsor: Bootstrap test\n")
            try writeNodes()
            try GitCLI.commitAll(in: repo.path)
        }

        /// The Node manifests; `hostKeys[i]` nil leaves node i's key unpinned.
        func writeNodes(hostKeys: [String?]? = nil) throws {
            var text = ""
            for (index, server) in servers.enumerated() {
                let key = try hostKeys.map { $0[index] } ?? server.hostKeyLine()
                let roles = index == 0 ? "[controller, compute, storage, volume]" : "[compute, storage, volume]"
                text += """
                    ---
                    kind: Node
                    name: boot-\(index + 1)
                    spec:
                      address: \(server.address)
                      ssh: {user: \(server.user), port: \(server.port)\(key.map { ", hostKey: \"\($0)\"" } ?? "")}
                      libvirt: qemu+ssh://\(server.user)@\(server.address):\(server.port)/system
                      fileRoot: \(roots[index].path)
                      roles: \(roles)
                      cpus: 2
                      memory: 4GiB
                      disks: [{name: sdb, size: 2TB}, {name: sdc, size: 2TB}]

                    """
            }
            try repo.write("regions/boot/nodes.yaml", text)
        }

        func bootstrap(_ extra: [String] = []) throws -> Command.Result {
            try StackLabBinary.run(["bootstrap", "boot", "--identity", servers[0].userKey, "--repo", repo.path, "--state-dir", state.path] + extra)
        }
    }

    @Test func threeServersConvergeAndASecondRunChangesNothing() throws {
        let region = try Region()
        let dry = try region.bootstrap(["--dry-run"])
        #expect(dry.status == 2, "\(dry.output)")
        #expect(!FileManager.default.fileExists(atPath: region.roots[0].file("etc/stacklab/node.json")), "a dry run changes nothing")

        let first = try region.bootstrap()
        #expect(first.status == 0, "\(first.output)")
        #expect(first.output.contains("✓ boot-1:") && first.output.contains("✓ boot-3:"))
        #expect(first.output.contains("Bootstrap made"), "\(first.output)")
        for (index, root) in region.roots.enumerated() {
            let identity = try String(contentsOfFile: root.file("etc/stacklab/node.json"), encoding: .utf8)
            #expect(identity.contains("\"name\" : \"boot-\(index + 1)\""))
            #expect(FileManager.default.fileExists(atPath: root.file("var/lib/stacklab/instances")))
            #expect(FileManager.default.fileExists(atPath: root.file("srv/node/sdc")))
            let catalog = try String(contentsOfFile: root.file("etc/stacklab/catalog.json"), encoding: .utf8)
            #expect(catalog.contains("http://127.0.0.2:5000/v3"), "the controller's endpoints are in every node's catalog")
        }
        let second = try region.bootstrap()
        #expect(second.status == 0)
        #expect(second.output.contains("No changes: 3 nodes are in shape."), "\(second.output)")

        // A file changed behind StackLab's back is put back, and only it.
        try "tampered\n".write(toFile: region.roots[1].file("etc/stacklab/node.json"), atomically: true, encoding: .utf8)
        let healed = try region.bootstrap()
        #expect(healed.output.contains("boot-2: ~ file /etc/stacklab/node.json") && healed.output.contains("Bootstrap made 1 change"), "\(healed.output)")
    }

    @Test func aWrongHostKeyIsRefusedBeforeAnyCommandRuns() throws {
        let region = try Region()
        try Command.check(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", region.state.file("impostor")])
        let impostor = try String(contentsOfFile: region.state.file("impostor.pub"), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        try region.writeNodes(hostKeys: [try region.servers[0].hostKeyLine(), impostor, try region.servers[2].hostKeyLine()])
        let refused = try region.bootstrap()
        #expect(refused.status == 1)
        #expect(refused.output.contains("✗ boot-2:") && refused.output.contains("HOST KEY MISMATCH"), "\(refused.output)")
        let fingerprint = try region.servers[1].hostKeyFingerprint()
        #expect(refused.output.contains(fingerprint), "the server's fingerprint is shown")
        #expect(refused.output.contains("nothing was changed"))
        #expect(region.roots.allSatisfy { !FileManager.default.fileExists(atPath: $0.file("etc/stacklab/node.json")) }, "no node was touched")
    }

    @Test func aStoppedNodeFailsPreflightWhileTheOthersAreReported() throws {
        let region = try Region()
        region.servers[2].stop()
        let result = try region.bootstrap()
        #expect(result.status == 1)
        #expect(result.output.contains("✓ boot-1:") && result.output.contains("✓ boot-2:"), "\(result.output)")
        #expect(result.output.contains("✗ boot-3:") && result.output.contains("127.0.0.4:\(region.servers[2].port)"), "\(result.output)")
        #expect(result.output.contains("Preflight failed on 1 of 3 nodes: nothing was changed."))
    }

    @Test func anUnpinnedHostKeyNeedsTrustOnFirstUseWhichRecordsIt() throws {
        let region = try Region()
        try region.writeNodes(hostKeys: [nil, try region.servers[1].hostKeyLine(), try region.servers[2].hostKeyLine()])
        let refused = try region.bootstrap()
        #expect(refused.status == 1)
        let offered = try region.servers[0].hostKeyFingerprint()
        #expect(refused.output.contains("no pinned host key") && refused.output.contains(offered), "\(refused.output)")
        let trusted = try region.bootstrap(["--trust-on-first-use"])
        #expect(trusted.status == 0, "\(trusted.output)")
        #expect(trusted.output.contains("trusted on first use: ssh-ed25519 \(offered)"), "\(trusted.output)")
        let again = try region.bootstrap()
        #expect(again.status == 0 && again.output.contains("No changes"), "the recorded key is used from now on: \(again.output)")
    }

    @Test func simulatedNodesAreBootstrappedUnderTheStateDirectoryWithTheRingsApplyInstalled() throws {
        let repo = try Fixtures.deployment()
        try GitCLI.commitAll(in: repo.path)
        let state = try Scratch("state")
        #expect(try StackLabBinary.run(["apply", "--auto-approve", "--repo", repo.path, "--state-dir", state.path]).status == 0)
        let first = try StackLabBinary.run(["bootstrap", "lab", "--repo", repo.path, "--state-dir", state.path])
        #expect(first.status == 0, "\(first.output)")
        #expect(!first.output.contains("object.ring.gz"), "the rings apply installed are already in place: \(first.output)")
        let root = "\(state.path)/nodes/lab/lab-1"
        #expect(FileManager.default.fileExists(atPath: "\(root)/etc/stacklab/catalog.json"))
        #expect(FileManager.default.fileExists(atPath: "\(root)/etc/swift/object.ring.gz"))
        let second = try StackLabBinary.run(["bootstrap", "lab", "--repo", repo.path, "--state-dir", state.path])
        #expect(second.output.contains("No changes: 3 nodes are in shape."), "\(second.output)")
        #expect(try StackLabBinary.run(["plan", "--repo", repo.path, "--state-dir", state.path]).status == 0, "bootstrap left the hypervisor face converged")
    }

    @Test func factsReadTheMachineAsItIs() throws {
        // A host's memory in bytes overflows awk's integers on a large machine: it is read in KiB and scaled here.
        let meminfo = try String(contentsOfFile: "/proc/meminfo", encoding: .utf8)
        let line = try #require(meminfo.split(separator: "\n").first { $0.hasPrefix("MemTotal:") })
        let kib = try #require(UInt64(line.split(separator: " ")[1]))
        let scratch = try Scratch("facts")
        let facts = try LocalHost(node: Address(kind: .node, region: "lab", name: "x"), stateDirectory: scratch.path).facts()
        #expect(facts.memoryBytes == kib * 1024)
        #expect(facts.cpus == ProcessInfo.processInfo.activeProcessorCount)
    }
}
