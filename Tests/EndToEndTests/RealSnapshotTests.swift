import Foundation
import Manifests
import Planning
import Processes
import Snapshots
import TestSupport
import Testing

/// Volume snapshots end to end: a real node (a private libvirtd with QEMU behind its own sshd) and a real Swift
/// cluster (rings built by StackLab). A snapshot listed in the manifests is taken from a running guest's volume
/// (paused only for the local copy) and uploaded; a new Volume restored from it holds the guest's bytes.
extension SwiftSnapshotTests {
    final class SnapshotWorld {
        let daemon: LoopbackLibvirtd
        let server: LoopbackSSHD
        let root: Scratch
        let repo: Scratch
        let state: Scratch
        let proxy: String

        init(proxy: String) throws {
            try #require(LoopbackLibvirtd.isInstalled, "libvirtd, QEMU, qemu-img and nc are needed: bash .ci/setup installs them")
            self.proxy = proxy
            daemon = try LoopbackLibvirtd()
            server = try LoopbackSSHD(address: "127.0.0.5")
            root = try Scratch("snap-root")
            try LoopbackLibvirtd.prepareFileRoot(root.path)
            repo = try Fixtures.deployment()
            state = try Scratch("snap-state")
            try RealNodeManifests.region("snap", octet: 32, in: repo, extra: "  objectStore: {proxy: \"\(proxy)\", user: \"test:tester\"}\n")
            try repo.write("regions/snap/nodes.yaml", try RealNodeManifests.node("snap-1", server: server, root: root, roles: "controller, compute, volume",
                                                                                disks: "[{name: sdb, size: 1TB}]")
                           + "---\n" + RealNodeManifests.storageNode("snap-2", address: "172.16.97.2") + "---\n" + RealNodeManifests.storageNode("snap-3", address: "172.16.97.3"))
            try write(volumes: "")
        }

        /// The tenant's manifests: one running instance with volume `data` attached, plus `volumes`.
        func write(volumes: String, data: String? = "{size: 64MiB, instance: m-0, device: vdb}") throws {
            try repo.write("manifests/snap.yaml", RealNodeManifests.tinyInstance("m-0", region: "snap")
                           + (data.map { "---\nkind: Volume\nname: data\nregion: snap\ntenant: acme\nspec: \($0)\n" } ?? "") + volumes)
            try GitCLI.commitAll(in: repo.path)
        }

        /// Runs stacklab for region `snap`; on a `terminal` (`script`'s pseudo-terminal) when asked.
        func stacklab(_ arguments: [String], terminal: Bool = false) throws -> Command.Result {
            let command = ["env", "STACKLAB_SSH_IDENTITY=\(server.userKey)", "STACKLAB_LIBVIRT_SOCKET=\(server.address)=\(daemon.socket)",
                           "STACKLAB_SWIFT_KEY=testing", StackLabBinary.path] + arguments + ["--region", "snap", "--repo", repo.path, "--state-dir", state.path]
            guard terminal else { return try Command.run(command) }
            return try Command.run(["script", "-qec", command.map { "'\($0)'" }.joined(separator: " "), "/dev/null"])
        }

        /// The file of tenant volume `name` on the node.
        func volumeFile(_ name: String) -> String {
            root.file("var/lib/stacklab/volumes/\(DesiredDomain.volumeName(for: Address(kind: .volume, region: "snap", tenant: "acme", name: name)))")
        }
    }

    @Test func aListedSnapshotOfARunningGuestsVolumeRestoresIntoANewVolumeByteForByte() throws {
        let swiftState = try Scratch("swift-state")
        let (cluster, keep) = try Self.cluster(state: swiftState)
        defer { withExtendedLifetime(keep) {} }
        let world = try SnapshotWorld(proxy: cluster.proxyURL)
        let first = try world.stacklab(["apply", "--auto-approve"])
        try #require(first.status == 0, "\(first.output)")

        // The guest's volume holds data (written while it is off), and the guest runs again.
        try Command.check(["virsh", "-c", world.daemon.localURI, "destroy", "acme:m-0"])
        try Command.check(["qemu-io", "-f", "qcow2", "-c", "write -P 0xcd 2M 5M", world.volumeFile("data")])
        try Command.check(["virsh", "-c", world.daemon.localURI, "start", "acme:m-0"])

        // A one-off snapshot: planned as exactly that, taken while the guest runs (it is paused only for the copy).
        try world.write(volumes: "", data: "{size: 64MiB, instance: m-0, device: vdb, snapshots: [{name: before-upgrade}]}")
        let plan = try world.stacklab(["plan"])
        #expect(plan.status == 2 && plan.output.contains("snapshot/snap/acme/data@before-upgrade"), "\(plan.output)")
        #expect(!plan.output.contains("instance/"), "nothing else changes: \(plan.output)")
        // On a terminal (`script`), the snapshot's bytes are counted as they go.
        let taken = try world.stacklab(["apply", "--auto-approve"], terminal: true)
        #expect(taken.status == 0 && taken.output.contains("Verified"), "\(taken.output)")
        #expect(taken.output.contains("snapshot/snap/acme/data@before-upgrade: 0 B\r") || taken.output.contains("snapshot/snap/acme/data@before-upgrade: 0 B\u{1B}"),
                "the transfer's line from its start: \(taken.output)")
        #expect(try world.daemon.runningDomains() == ["acme:m-0"], "the guest runs on")
        let reason = try Command.check(["virsh", "-c", world.daemon.localURI, "domstate", "--reason", "acme:m-0"])
        #expect(reason.contains("unpaused"), "paused for the copy, then resumed: \(reason)")
        let store = SnapshotStore(client: try SwiftClient.authenticate(proxy: cluster.proxyURL, user: "test:tester", key: "testing"))
        let stored = try store.list(prefix: "acme/data/")
        #expect(stored.map(\.name) == ["before-upgrade"] && stored.first?.capacity == 64 << 20, "\(stored)")
        let read = ByteSize(bytes: stored.first?.bytes ?? 0).readable
        #expect(taken.output.contains("snapshot/snap/acme/data@before-upgrade: \(read)"), "its last count is every byte stored (\(read)): \(taken.output)")
        #expect(try world.stacklab(["plan"]).status == 0, "converged")
        let shown = try world.stacklab(["show", "volume", "data", "--live"])
        #expect(shown.status == 0 && shown.output.contains("on snap-1 as v-") && shown.output.contains("snapshot before-upgrade: 64MiB"), "\(shown.output)")

        // Restore into a new Volume: planned as a create from the snapshot, and it holds the guest's bytes.
        try world.write(volumes: "---\nkind: Volume\nname: copy\nregion: snap\ntenant: acme\nspec: {size: 128MiB, from: {volume: data, snapshot: before-upgrade}}\n",
                        data: "{size: 64MiB, instance: m-0, device: vdb, snapshots: [{name: before-upgrade}]}")
        let restorePlan = try world.stacklab(["plan"])
        #expect(restorePlan.output.contains("volume/snap/acme/copy") && restorePlan.output.contains("data@before-upgrade"), "\(restorePlan.output)")
        let restored = try world.stacklab(["apply", "--auto-approve"])
        #expect(restored.status == 0 && restored.output.contains("Verified"), "\(restored.output)")
        let check = try Command.run(["qemu-io", "-r", "-U", "-f", "qcow2", "-c", "read -P 0xcd 2M 5M", world.volumeFile("copy")])
        #expect(check.status == 0 && !check.output.contains("failed"), "the guest's bytes were restored: \(check.output)")
        let info = try Command.check(["qemu-img", "info", "-U", "--output=json", world.volumeFile("copy")])
        #expect(info.contains("\"virtual-size\": \(128 << 20)"), "grown to its size: \(info)")
        #expect(try world.stacklab(["plan"]).status == 0, "converged")

        // The volume leaves the manifests: it is deleted, its snapshot survives.
        try world.write(volumes: "---\nkind: Volume\nname: copy\nregion: snap\ntenant: acme\nspec: {size: 128MiB, from: {volume: data, snapshot: before-upgrade}}\n",
                        data: nil)
        let removal = try world.stacklab(["apply", "--auto-approve"])
        #expect(removal.status == 0, "\(removal.output)")
        #expect(!removal.output.contains("snapshot/"), "no snapshot is touched: \(removal.output)")
        #expect(try store.list(prefix: "acme/data/").map(\.name) == ["before-upgrade"], "the snapshot outlives its volume")
        let orphaned = try world.stacklab(["show", "volume", "data", "--live"])
        #expect(orphaned.output.contains("left the manifests; its snapshots remain") && orphaned.output.contains("snapshot before-upgrade"), "\(orphaned.output)")
    }
}
