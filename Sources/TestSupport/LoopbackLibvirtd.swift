import Foundation
import Processes
#if canImport(Glibc)
import Glibc
#endif

/// A real libvirtd with the QEMU driver, private to a test: its own network namespace (with a `br100` bridge that
/// reaches nothing), its own mount namespace (its own `/etc/libvirt` with a qemu.conf that runs guests as root, its
/// own `/run/libvirt`, `/var/lib/libvirt`, `/var/cache/libvirt`, `/var/log/libvirt`, and `/etc/passwd` and
/// `/etc/group` copies that add the `libvirt-qemu` user and `kvm` group libvirt resolves at start), and its socket
/// under a temporary directory. Nothing on the machine is changed but four empty mount points. Stopped by PID,
/// its guests with it.
public final class LoopbackLibvirtd {
    /// Holds the configuration, state and socket.
    public let directory: String
    /// The read-write socket.
    public var socket: String { "\(directory)/sock/libvirt-sock" }
    /// The URI that reaches it directly (for checks with virsh).
    public var localURI: String { "qemu:///system?socket=\(socket)" }
    /// The network namespace its guests live in.
    public let namespace: String
    private var pid: pid_t = 0

    /// Whether this machine has what it needs (libvirtd, QEMU, qemu-img, nc, unshare, ip).
    public static var isInstalled: Bool {
        ["/usr/sbin/libvirtd", "/usr/bin/qemu-system-x86_64", "/usr/bin/qemu-img", "/usr/bin/nc", "/usr/bin/unshare"].allSatisfy {
            FileManager.default.isExecutableFile(atPath: $0)
        }
    }

    /// Starts the daemon and waits for its socket.
    public init() throws {
        let tag = UUID().uuidString.prefix(8).lowercased()
        directory = NSTemporaryDirectory() + "/stacklab-libvirtd-\(tag)"
        namespace = "stacklab-lv-\(tag)"
        let fm = FileManager.default
        for sub in ["etc", "run", "lib", "cache", "log", "sock"] {
            try fm.createDirectory(atPath: "\(directory)/\(sub)", withIntermediateDirectories: true)
        }
        for mountPoint in ["/run/libvirt", "/var/lib/libvirt", "/var/cache/libvirt", "/var/log/libvirt"] {
            try fm.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        }
        var passwd = try String(contentsOfFile: "/etc/passwd", encoding: .utf8)
        if !passwd.contains("\nlibvirt-qemu:") { passwd += "libvirt-qemu:x:64055:64055::/var/lib/libvirt:/usr/sbin/nologin\n" }
        var group = try String(contentsOfFile: "/etc/group", encoding: .utf8)
        if !group.contains("\nkvm:") && !group.hasPrefix("kvm:") { group += "kvm:x:64054:libvirt-qemu\n" }
        if !group.contains("\nlibvirt-qemu:") { group += "libvirt-qemu:x:64055:\n" }
        try passwd.write(toFile: "\(directory)/passwd", atomically: true, encoding: .utf8)
        try group.write(toFile: "\(directory)/group", atomically: true, encoding: .utf8)
        try """
            user = "root"
            group = "root"
            swtpm_user = "root"
            swtpm_group = "root"
            dynamic_ownership = 0
            remember_owner = 0
            namespaces = []
            cgroup_controllers = []
            stdio_handler = "file"

            """.write(toFile: "\(directory)/etc/qemu.conf", atomically: true, encoding: .utf8)
        try """
            unix_sock_dir = "\(directory)/sock"
            auth_unix_rw = "none"
            auth_unix_ro = "none"

            """.write(toFile: "\(directory)/etc/libvirtd.conf", atomically: true, encoding: .utf8)
        try Command.check(["ip", "netns", "add", namespace])
        try Command.check(["ip", "netns", "exec", namespace, "ip", "link", "set", "lo", "up"])
        try Command.check(["ip", "netns", "exec", namespace, "ip", "link", "add", "br100", "type", "bridge"])
        try Command.check(["ip", "netns", "exec", namespace, "ip", "link", "set", "br100", "up"])
        let mounts = [("etc", "/etc/libvirt"), ("run", "/run/libvirt"), ("lib", "/var/lib/libvirt"), ("cache", "/var/cache/libvirt"),
                      ("log", "/var/log/libvirt"), ("passwd", "/etc/passwd"), ("group", "/etc/group")]
            .map { "mount --bind \(directory)/\($0.0) \($0.1)" }.joined(separator: " && ")
        pid = try Command.start(["unshare", "-m", "--propagation", "private", "sh", "-c",
                                 "\(mounts) && exec ip netns exec \(namespace) /usr/sbin/libvirtd -f \(directory)/etc/libvirtd.conf -p \(directory)/libvirtd.pid"])
        for _ in 0..<200 {
            if fm.fileExists(atPath: socket), (try? Command.run(["virsh", "-c", localURI, "version"]))?.status == 0 { return }
            usleep(50_000)
        }
        stop()
        throw Command.Failure(description: "libvirtd did not open \(socket)")
    }

    deinit { stop() }

    /// Makes `root` a node's file root with the image the tests' instances boot from (`ubuntu`, an empty 64 MiB qcow2).
    public static func prepareFileRoot(_ root: String) throws {
        let images = (root as NSString).appendingPathComponent("var/lib/stacklab/images")
        try FileManager.default.createDirectory(atPath: images, withIntermediateDirectories: true)
        try Command.check(["qemu-img", "create", "-q", "-f", "qcow2", "\(images)/ubuntu.qcow2", "64M"])
    }

    /// Writes image `name` into `root`'s images: a disk whose boot sector keeps its one CPU busy for `busySeconds`
    /// (counted on the BIOS timer, so a slow host does not stretch it) and then halts, for tests that need a guest's
    /// counters to measure real work. With 0 it halts at once (an idle guest).
    public static func addBusyImage(_ name: String, busySeconds: Int, to root: String) throws {
        let ticks = UInt16(min(Double(busySeconds) * 18.2065, 65_535))
        // 16-bit real mode at 0:7C00: ds = 0; sti; bx = ticks now (0:046C); until ticks - bx ≥ N: loop; then cli; hlt.
        var code: [UInt8] = [0x31, 0xC0, 0x8E, 0xD8, 0xFB, 0x8B, 0x1E, 0x6C, 0x04,
                             0xA1, 0x6C, 0x04, 0x29, 0xD8, 0x3D, UInt8(ticks & 0xFF), UInt8(ticks >> 8), 0x72, 0xF6,
                             0xFA, 0xF4, 0xEB, 0xFD]
        code += [UInt8](repeating: 0, count: 510 - code.count) + [0x55, 0xAA]
        let images = (root as NSString).appendingPathComponent("var/lib/stacklab/images")
        try FileManager.default.createDirectory(atPath: images, withIntermediateDirectories: true)
        let raw = "\(images)/\(name).raw"
        try Data(code + [UInt8](repeating: 0, count: 1 << 20)).write(to: URL(fileURLWithPath: raw))
        try Command.check(["qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", raw, "\(images)/\(name).qcow2"])
        try FileManager.default.removeItem(atPath: raw)
    }

    /// The names of the running guests, as `virsh list` shows them.
    public func runningDomains() throws -> [String] {
        try Command.check(["virsh", "-c", localURI, "list", "--name"]).split(separator: "\n").map(String.init).filter { !$0.isEmpty }.sorted()
    }

    /// Stops every guest, the daemon and the namespace.
    public func stop() {
        guard pid > 0 else { return }
        if let names = try? Command.check(["virsh", "-c", localURI, "list", "--name"]) {
            for name in names.split(separator: "\n") where !name.isEmpty { _ = try? Command.run(["virsh", "-c", localURI, "destroy", String(name)]) }
        }
        Command.stop(pid)
        pid = 0
        // Guests that outlived the daemon still live in its namespace.
        if let pids = try? Command.check(["ip", "netns", "pids", namespace]) {
            for line in pids.split(separator: "\n") { if let guest = Int32(line) { kill(guest, SIGKILL) } }
        }
        _ = try? Command.run(["ip", "netns", "delete", namespace])
        try? FileManager.default.removeItem(atPath: directory)
    }
}
