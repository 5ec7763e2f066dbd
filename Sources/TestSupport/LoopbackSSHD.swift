import Foundation
import Processes
#if canImport(Glibc)
import Glibc
#endif

/// A real OpenSSH server on a loopback address (127.0.0.1 by default; any of 127.0.0.0/8, so three "servers" can be
/// 127.0.0.2–4) with its own ed25519 host and user keys, started by a test and stopped by PID when released.
public final class LoopbackSSHD {
    /// Holds the keys and config.
    public let directory: String
    /// The port it listens on.
    public let port: UInt16
    /// The user tests log in as (the current user).
    public let user: String
    /// The address it listens on.
    public let address: String
    private var pid: pid_t

    /// Generates keys, checks the config with `sshd -t`, starts `sshd -D`, and waits until it accepts connections.
    /// With `namespace`, every command a client runs (SFTP aside) runs inside that network namespace: a "host" whose
    /// network is one a test wired, reached over loopback. `privateDirectories` (machine path → the test's directory)
    /// are bind-mounted in a mount namespace of each session's own, SFTP included: a node StackLab owns (file root `/`)
    /// writes its `/etc/stacklab` into the test's directory, and the machine's own is never touched (its mount point is
    /// made if missing, empty).
    public init(address: String = "127.0.0.1", namespace: String? = nil, privateDirectories: [String: String] = [:]) throws {
        self.address = address
        directory = NSTemporaryDirectory() + "/stacklab-sshd-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: "/run/sshd", withIntermediateDirectories: true)
        for key in ["host_key", "user_key"] {
            try Command.check(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", key, "-f", "\(directory)/\(key)"])
        }
        try FileManager.default.copyItem(atPath: "\(directory)/user_key.pub", toPath: "\(directory)/authorized_keys")
        port = try Self.freePort(address: address)
        user = String(cString: getpwuid(geteuid()).pointee.pw_name)
        var config = """
            Port \(port)
            ListenAddress \(address)
            HostKey \(directory)/host_key
            AuthorizedKeysFile \(directory)/authorized_keys
            PasswordAuthentication no
            KbdInteractiveAuthentication no
            PermitRootLogin prohibit-password
            UsePAM no
            StrictModes no
            PidFile none
            Subsystem sftp internal-sftp
            """
        if let namespace {
            let directory = self.directory
            config += "\nForceCommand \(directory)/in-namespace \(namespace)"
            var wrapper = "#!/bin/sh\n"
            if !privateDirectories.isEmpty {
                for mountPoint in privateDirectories.keys { try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true) }
                let mounts = privateDirectories.sorted { $0.key < $1.key }.map { "mount --bind '\($0.value)' '\($0.key)'" }.joined(separator: " && ")
                wrapper += "[ -n \"$STACKLAB_PRIVATE_MOUNTS\" ] || exec env STACKLAB_PRIVATE_MOUNTS=1 unshare -m --propagation private sh -c \"\(mounts) && exec \\\"\\$0\\\" \\\"\\$1\\\"\" \"$0\" \"$1\"\n"
            }
            wrapper += """
                case "$SSH_ORIGINAL_COMMAND" in
                  internal-sftp|*sftp-server) exec /usr/lib/openssh/sftp-server ;;
                esac
                exec ip netns exec "$1" sh -c "$SSH_ORIGINAL_COMMAND"

                """
            try wrapper.write(toFile: "\(directory)/in-namespace", atomically: true, encoding: .utf8)
            chmod("\(directory)/in-namespace", 0o755)
        }
        try config.write(toFile: "\(directory)/sshd_config", atomically: true, encoding: .utf8)
        try Command.check(["/usr/sbin/sshd", "-t", "-f", "\(directory)/sshd_config"])
        pid = try Command.start(["/usr/sbin/sshd", "-D", "-e", "-f", "\(directory)/sshd_config"])
        try waitUntilListening()
    }

    deinit {
        if pid > 0 { Command.stop(pid) }
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Stops the server (a node going down); `start()` brings it back with the same keys and port.
    public func stop() {
        if pid > 0 { Command.stop(pid) }
        pid = 0
    }

    /// Starts the server again after `stop()`.
    public func start() throws {
        guard pid == 0 else { return }
        pid = try Command.start(["/usr/sbin/sshd", "-D", "-e", "-f", "\(directory)/sshd_config"])
        try waitUntilListening()
    }

    /// The host key line (`ssh-ed25519 AAAA… host_key`), as a Node's `ssh.hostKey` pins it.
    public func hostKeyLine() throws -> String {
        try String(contentsOfFile: "\(directory)/host_key.pub", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The user's private key file.
    public var userKey: String { "\(directory)/user_key" }

    /// The host key's fingerprint as `ssh-keygen -l` prints it (`SHA256:…`).
    public func hostKeyFingerprint() throws -> String {
        let output = try Command.check(["ssh-keygen", "-l", "-E", "sha256", "-f", "\(directory)/host_key.pub"])
        return String(output.split(separator: " ")[1])
    }

    private func waitUntilListening() throws {
        for _ in 0..<200 {
            if Self.accepts(address: address, port: port) { return }
            usleep(25_000)
        }
        throw Command.Failure(description: "sshd did not start listening on \(address):\(port)")
    }

    /// Whether something accepts TCP connections at `text`:`port`.
    public static func accepts(address text: String, port: UInt16) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = loopback(text, port: port)
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }

    private static func loopback(_ text: String, port: UInt16) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr(text)
        return address
    }

    /// A port nothing listens on now at a loopback `address` (bound to port 0, then released).
    public static func freePort(address text: String = "127.0.0.1") throws -> UInt16 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = loopback(text, port: 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw Command.Failure(description: "cannot find a free loopback port") }
        return UInt16(bigEndian: address.sin_port)
    }
}
