import Foundation
import Manifests
import Planning
import Processes
import Testing
@testable import Drivers
import SimulatedNodes
#if canImport(Glibc)
import Glibc
#endif

/// A node that accepts TCP connections and then never answers costs a bounded wait and a clear error, never a hang.
@Suite struct DeadlineTests {
    /// A listening socket on 127.0.0.1 (an ephemeral port) that accepts connections into its backlog and never writes.
    final class SilentListener {
        let fd: Int32
        let port: UInt16

        init() throws {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            self.fd = fd
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = 0
            let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            guard bound == 0, listen(fd, 16) == 0 else { throw POSIXError(.EADDRINUSE) }
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
            port = UInt16(bigEndian: address.sin_port)
        }

        deinit { close(fd) }
    }

    /// A well-formed host key line (what it pins does not matter: the node never gets that far).
    static func someHostKey() throws -> String {
        let directory = NSTemporaryDirectory() + "/stacklab-key-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        _ = try Command.check(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", "\(directory)/key"])
        return try String(contentsOfFile: "\(directory)/key.pub", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test func aSilentNodeIsAnErrorWithinItsDeadline() throws {
        let listener = try SilentListener()
        let machine = try RemoteMachine(endpoint: NodeEndpoint(address: Address(kind: .node, region: "lab", name: "mute"),
                                                               libvirt: "qemu+ssh://root@127.0.0.1:\(listener.port)/system", cpus: 4, memoryKiB: 1 << 20,
                                                               hostKey: try Self.someHostKey()),
                                        identity: "/nonexistent/key", socket: nil)
        machine.connectTimeout = 1
        let node = LibvirtNode(address: Address(kind: .node, region: "lab", name: "mute"), kind: .kvm, fileRoot: nil, machine: machine)
        do {
            _ = try node.observe()
            Issue.record("observing a silent node succeeded")
        } catch {
            #expect(error.isTransient)
            #expect(error.description.contains("no answer within the deadline") && error.description.contains("127.0.0.1:\(listener.port)"), "\(error)")
        }
    }

    @Test func driversRefuseEndpointsThatAreNotSimulatedOrQemuOverSSH() {
        // Endpoints also come from the state store's inventory: the driver holds them to the manifests' rule.
        for uri in ["qemu+ext:///system?command=/bin/true", "test:///etc/passwd", "qemu:///system", "qemu+ssh://h/system?netcat=/x"] {
            #expect(throws: DriverError.self, "\(uri)") {
                try LocalNodes(stateDirectory: NSTemporaryDirectory())
                    .driver(for: NodeEndpoint(address: Address(kind: .node, region: "lab", name: "x"), libvirt: uri, cpus: 1, memoryKiB: 1 << 20), identity: nil)
            }
        }
    }
}
