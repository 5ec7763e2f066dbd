import Foundation
import Processes
import TestSupport
import Testing

/// An instance moving between two real nodes (two private libvirtds with QEMU, each behind its own sshd, each with
/// its own file root) takes its disk with it: the bytes the guest wrote arrive intact, the copy's qcow2 header points
/// at the image on its new node, and the plan says what is copied and that the guest restarts.
@Suite(.serialized) struct RealMoveTests {
    final class World {
        let daemons: [LoopbackLibvirtd]
        let servers: [LoopbackSSHD]
        let roots: [Scratch]
        let repo: Scratch
        let state: Scratch

        init() throws {
            try #require(LoopbackLibvirtd.isInstalled, "libvirtd, QEMU, qemu-img and nc are needed: bash .ci/setup installs them")
            daemons = try [LoopbackLibvirtd(), LoopbackLibvirtd()]
            servers = try ["127.0.0.2", "127.0.0.3"].map { try LoopbackSSHD(address: $0) }
            try FileManager.default.removeItem(atPath: "\(servers[1].directory)/authorized_keys")
            try FileManager.default.copyItem(atPath: "\(servers[0].directory)/user_key.pub", toPath: "\(servers[1].directory)/authorized_keys")
            roots = try servers.map { _ in try Scratch("move-root") }
            for root in roots { try LoopbackLibvirtd.prepareFileRoot(root.path) }
            repo = try Fixtures.deployment()
            state = try Scratch("state")
            try RealNodeManifests.region("move", octet: 31, in: repo)
            var nodes = ""
            for (index, server) in servers.enumerated() {
                nodes += try RealNodeManifests.node("move-\(index + 1)", server: server, root: roots[index], roles: index == 0 ? "controller, compute" : "compute") + "---\n"
            }
            try repo.write("regions/move/nodes.yaml", nodes + RealNodeManifests.storageNode("move-3", address: "172.16.98.3"))
            try pin(to: "move-1")
        }

        func pin(to node: String) throws {
            try repo.write("manifests/move.yaml", RealNodeManifests.tinyInstance("m-0", region: "move", node: node))
            try GitCLI.commitAll(in: repo.path)
        }

        func stacklab(_ arguments: [String]) throws -> Command.Result {
            let sockets = zip(servers, daemons).map { "\($0.address)=\($1.socket)" }.joined(separator: ",")
            return try Command.run(["env", "STACKLAB_SSH_IDENTITY=\(servers[0].userKey)", "STACKLAB_LIBVIRT_SOCKET=\(sockets)", StackLabBinary.path]
                                   + arguments + ["--region", "move", "--repo", repo.path, "--state-dir", state.path])
        }

        /// The instance's root volume file under node `index`'s file root, if it has one.
        func rootVolume(_ index: Int) -> String? {
            let directory = roots[index].file("var/lib/stacklab/instances")
            let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
            return names.first { $0.hasSuffix("-root") }.map { "\(directory)/\($0)" }
        }
    }

    @Test func anInstanceMovingBetweenRealNodesTakesItsDiskAlong() throws {
        let world = try World()
        let first = try world.stacklab(["apply", "--auto-approve"])
        #expect(first.status == 0, "\(first.output)")
        #expect(try world.daemons[0].runningDomains() == ["acme:m-0"])

        // The guest's disk holds data: written while it is off (the test's stand-in for a guest writing).
        try Command.check(["virsh", "-c", world.daemons[0].localURI, "destroy", "acme:m-0"])
        let source = try #require(world.rootVolume(0))
        try Command.check(["qemu-io", "-f", "qcow2", "-c", "write -P 0xab 1M 3M", source])
        let data = try Command.check(["sha256sum", source]).prefix(64)

        try world.pin(to: "move-2")
        let plan = try world.stacklab(["plan"])
        #expect(plan.status == 2, "\(plan.output)")
        #expect(plan.output.contains("disks copied") && plan.output.contains("in 1 volume"), "the plan shows what it copies: \(plan.output)")
        let moved = try world.stacklab(["apply", "--auto-approve"])
        #expect(moved.status == 0, "a move no longer needs --allow-replace: \(moved.output)")
        #expect(moved.output.contains("Verified"), "\(moved.output)")

        #expect(try world.daemons[0].runningDomains().isEmpty)
        #expect(try Command.check(["virsh", "-c", world.daemons[0].localURI, "list", "--all", "--name"]).trimmingCharacters(in: .whitespacesAndNewlines).isEmpty)
        #expect(try world.daemons[1].runningDomains() == ["acme:m-0"], "the guest runs on its new node")
        #expect(world.rootVolume(0) == nil, "the old volume is gone once the copy is in place")
        let copy = try #require(world.rootVolume(1))
        let check = try Command.run(["qemu-io", "-r", "-U", "-f", "qcow2", "-c", "read -P 0xab 1M 3M", copy])
        #expect(check.status == 0 && !check.output.contains("failed"), "the guest's bytes arrived: \(check.output)")
        let info = try Command.check(["qemu-img", "info", "-U", copy])
        #expect(info.contains(world.roots[1].file("var/lib/stacklab/images/ubuntu.qcow2")), "backed by the image on its new node: \(info)")
        #expect(!data.isEmpty)
        #expect(try world.stacklab(["plan"]).status == 0, "converged")
    }
}
