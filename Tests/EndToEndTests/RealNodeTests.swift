import Foundation
import Processes
import TestSupport
import Testing

/// The production path for real: a real libvirtd with QEMU (in namespaces of the test's own), reached through a
/// real sshd on 127.0.0.2 with `qemu+ssh://` exactly as a Sina server would be, converged by the `stacklab` binary.
@Suite(.serialized) struct RealNodeTests {
    final class World {
        let libvirtd: LoopbackLibvirtd
        let sshd: LoopbackSSHD
        let root: Scratch
        let repo: Scratch
        let state: Scratch

        init() throws {
            try #require(LoopbackLibvirtd.isInstalled, "libvirtd, QEMU, qemu-img and nc are needed: bash .ci/setup installs them")
            libvirtd = try LoopbackLibvirtd()
            sshd = try LoopbackSSHD(address: "127.0.0.2")
            root = try Scratch("real-root")
            try LoopbackLibvirtd.prepareFileRoot(root.path)
            repo = try Fixtures.deployment()
            state = try Scratch("state")
            try RealNodeManifests.region("real", octet: 30, in: repo)
            try repo.write("regions/real/nodes.yaml", try RealNodeManifests.node("real-1", server: sshd, root: root, roles: "controller, compute")
                           + "---\n" + RealNodeManifests.storageNode("real-2", address: "172.16.99.2") + "---\n" + RealNodeManifests.storageNode("real-3", address: "172.16.99.3"))
            try repo.write("regions/real/rings.yaml", "kind: Ring\nname: object\nspec:\n  partPower: 6\n  replicas: 2\n")
            try instances(2)
        }

        func instances(_ count: Int) throws {
            var text = "kind: Flavor\nname: m1.tiny\nspec: {vcpus: 1, ram: 128MiB, disk: 5GiB}\n"
            for index in 0..<count {
                text += "---\nkind: Instance\nname: r-\(index)\nregion: real\ntenant: acme\nspec: {flavor: m1.tiny, image: ubuntu, network: private}\n"
            }
            try repo.write("manifests/real.yaml", text)
            try GitCLI.commitAll(in: repo.path)
        }

        var environment: [String] {
            ["env", "STACKLAB_SSH_IDENTITY=\(sshd.userKey)", "STACKLAB_LIBVIRT_SOCKET=\(libvirtd.socket)"]
        }

        func stacklab(_ arguments: [String]) throws -> Command.Result {
            try Command.run(environment + [StackLabBinary.path] + arguments + ["--region", "real", "--repo", repo.path, "--state-dir", state.path])
        }
    }

    @Test func instancesConvergeOnARealLibvirtdThroughQemuSSH() throws {
        let world = try World()
        let first = try world.stacklab(["apply", "--auto-approve"])
        #expect(first.status == 0, "\(first.output)")
        #expect(first.output.contains("Verified"), "\(first.output)")
        #expect(try world.libvirtd.runningDomains() == ["acme:r-0", "acme:r-1"], "the guests really run")
        let ring = try Data(contentsOf: URL(fileURLWithPath: world.root.file("etc/swift/object.ring.gz")))
        let simulated = try Data(contentsOf: URL(fileURLWithPath: world.state.file("nodes/real/real-2/etc/swift/object.ring.gz")))
        #expect(ring == simulated, "the controller got the ring over SSH, the same as the storage nodes")
        let converged = try world.stacklab(["plan"])
        #expect(converged.status == 0, "converged: \(converged.output)")
        let withFlag = try Command.run(["env", "-u", "STACKLAB_SSH_IDENTITY", "STACKLAB_LIBVIRT_SOCKET=\(world.libvirtd.socket)", StackLabBinary.path, "plan",
                                        "--identity", world.sshd.userKey, "--region", "real", "--repo", world.repo.path, "--state-dir", world.state.path])
        #expect(withFlag.status == 0, "--identity gives the key as well: \(withFlag.output)")

        // Grown live: the running guest takes a bigger flavor within its headroom without a restart.
        try world.repo.write("manifests/real-flavor.yaml", "kind: Flavor\nname: m1.tiny2\nspec: {vcpus: 2, ram: 256MiB, disk: 5GiB}\n")
        let text = try String(contentsOfFile: world.repo.file("manifests/real.yaml"), encoding: .utf8)
        try world.repo.write("manifests/real.yaml", text.replacingOccurrences(of: "name: r-0\nregion: real\ntenant: acme\nspec: {flavor: m1.tiny,", with: "name: r-0\nregion: real\ntenant: acme\nspec: {flavor: m1.tiny2,"))
        try GitCLI.commitAll(in: world.repo.path)
        let grow = try world.stacklab(["plan"])
        #expect(grow.status == 2 && !grow.output.contains("(restarts)"), "\(grow.output)")
        let idBefore = try Command.check(["virsh", "-c", world.libvirtd.localURI, "domid", "acme:r-0"])
        #expect(try world.stacklab(["apply", "--auto-approve"]).status == 0)
        #expect(try Command.check(["virsh", "-c", world.libvirtd.localURI, "domid", "acme:r-0"]) == idBefore, "never restarted")
        #expect(try Command.check(["virsh", "-c", world.libvirtd.localURI, "vcpucount", "acme:r-0", "--live", "--active"]).trimmingCharacters(in: .whitespacesAndNewlines) == "2")

        // An unmanaged guest on the same daemon is left alone.
        try """
            <domain type='qemu'><name>handmade</name><memory unit='KiB'>65536</memory><os><type arch='x86_64'>hvm</type></os></domain>
            """.write(toFile: world.state.file("handmade.xml"), atomically: true, encoding: .utf8)
        try Command.check(["virsh", "-c", world.libvirtd.localURI, "define", world.state.file("handmade.xml")])

        // Removed from the manifests: deleted, whatever state they are in.
        try Command.check(["virsh", "-c", world.libvirtd.localURI, "suspend", "acme:r-1"])
        try world.instances(0)
        let removed = try world.stacklab(["apply", "--auto-approve", "--allow-mass-delete"])
        #expect(removed.status == 0, "\(removed.output)")
        #expect(try world.libvirtd.runningDomains().isEmpty)
        let all = try Command.check(["virsh", "-c", world.libvirtd.localURI, "list", "--all", "--name"])
        #expect(all.split(separator: "\n").map(String.init) == ["handmade"], "\(all)")
    }

    @Test func aKilledApplyOnARealNodeResumesWithEveryGuestRunningOnce() throws {
        let world = try World()
        try world.instances(5)
        let pid = try Command.start(world.environment + [StackLabBinary.path, "apply", "--auto-approve", "--parallelism", "1", "--region", "real",
                                                          "--repo", world.repo.path, "--state-dir", world.state.path])
        let deadline = Date().addingTimeInterval(120)
        while (try? world.libvirtd.runningDomains().count) ?? 0 < 2 && Date() < deadline && kill(pid, 0) == 0 { usleep(50_000) }
        kill(pid, SIGKILL)
        Command.stop(pid)
        let resumed = try world.stacklab(["apply", "--auto-approve"])
        #expect(resumed.status == 0, "\(resumed.output)")
        #expect(try world.libvirtd.runningDomains() == (0..<5).map { "acme:r-\($0)" })
        #expect(try world.stacklab(["plan"]).status == 0)
    }
}
