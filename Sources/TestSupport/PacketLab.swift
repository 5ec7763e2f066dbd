import Foundation
import Processes
#if canImport(Glibc)
import Glibc
#endif

/// Network namespaces wired by a test, with real TCP and UDP servers in them and a prober that opens real connections:
/// what a firewall does is shown with packets. Every namespace, server and veth is the test's own and goes with it.
public final class PacketLab {
    /// A connection attempt: from a namespace to an address and port.
    public struct Probe: Hashable, Sendable, CustomStringConvertible {
        public var from: String
        public var to: String
        public var port: Int
        public var udp: Bool
        /// An HTTP GET of this path instead of a bare connection: the answer is the body's first line.
        public var path: String?

        public init(from: String, to: String, port: Int, udp: Bool = false, get path: String? = nil) {
            self.from = from
            self.to = to
            self.port = port
            self.udp = udp
            self.path = path
        }

        public var description: String { "\(from) → \(to):\(port)\(udp ? "/udp" : "")\(path.map { " GET \($0)" } ?? "")" }
    }

    private let tag = UUID().uuidString.prefix(6).lowercased()
    private var namespaces: [String] = []
    private var servers: [pid_t] = []
    private let directory: String

    /// Whether this machine can run it (root, `ip`, `nft`, `python3`).
    public static var isAvailable: Bool {
        geteuid() == 0 && ["/usr/sbin/ip", "/usr/sbin/nft", "/usr/bin/python3"].allSatisfy { FileManager.default.isExecutableFile(atPath: $0) }
    }

    public init() throws {
        directory = NSTemporaryDirectory() + "/stacklab-packetlab-\(tag)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try Self.server.write(toFile: "\(directory)/server.py", atomically: true, encoding: .utf8)
        try Self.prober.write(toFile: "\(directory)/probe.py", atomically: true, encoding: .utf8)
    }

    deinit {
        for pid in servers { Command.stop(pid) }
        for namespace in namespaces { _ = try? Command.run(["ip", "netns", "delete", namespace]) }
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// The system name of the lab's namespace `name`.
    public func namespace(_ name: String) -> String { "slab-\(tag)-\(name)" }

    /// Creates namespace `name` with its loopback up.
    public func add(_ name: String) throws {
        let ns = namespace(name)
        try Command.check(["ip", "netns", "add", ns])
        namespaces.append(ns)
        try run(name, "ip link set lo up")
    }

    /// Runs a shell command inside namespace `name`.
    @discardableResult
    public func run(_ name: String, _ command: String) throws -> String {
        try Command.check(["ip", "netns", "exec", namespace(name), "sh", "-c", command])
    }

    /// A veth pair between two namespaces; `address` on each end (CIDR, or nil), and `bridge` in the first to enslave its end.
    public func link(_ a: String, _ aEnd: String, _ aAddress: String?, _ b: String, _ bEnd: String, _ bAddress: String?, bridge: String? = nil) throws {
        try Command.check(["ip", "link", "add", "\(aEnd)-\(tag)", "netns", namespace(a), "type", "veth", "peer", "name", "\(bEnd)-\(tag)", "netns", namespace(b)])
        try run(a, "ip link set \(aEnd)-\(tag) name \(aEnd) && ip link set \(aEnd) up")
        try run(b, "ip link set \(bEnd)-\(tag) name \(bEnd) && ip link set \(bEnd) up")
        if let bridge { try run(a, "ip link set \(aEnd) master \(bridge)") }
        if let aAddress { try run(a, "ip addr add \(aAddress) dev \(aEnd)") }
        if let bAddress { try run(b, "ip addr add \(bAddress) dev \(bEnd)") }
    }

    /// Starts a server in namespace `name` answering on these TCP and UDP ports with the address it saw the client come
    /// from; returns once every port is bound.
    public func serve(_ name: String, tcp: [Int], udp: [Int] = []) throws {
        let ready = "\(directory)/ready-\(name)"
        let pid = try Command.start(["ip", "netns", "exec", namespace(name), "python3", "\(directory)/server.py", ready,
                                     tcp.map(String.init).joined(separator: ","), udp.map(String.init).joined(separator: ",")])
        servers.append(pid)
        for _ in 0..<200 {
            if FileManager.default.fileExists(atPath: ready) { return }
            usleep(25_000)
        }
        throw Command.Failure(description: "the server in \(name) did not start")
    }

    /// Starts a program in namespace `name` (stopped with the lab) and waits until it accepts connections on `port`.
    public func start(_ name: String, _ arguments: [String], listening port: Int) throws {
        servers.append(try Command.start(["ip", "netns", "exec", namespace(name)] + arguments))
        for _ in 0..<400 {
            if (try? run(name, "ss -Hltn 'sport = :\(port)' | grep -q LISTEN")) != nil { return }
            usleep(25_000)
        }
        throw Command.Failure(description: "\(arguments[0]) did not listen on port \(port) in \(name)")
    }

    /// Tries every probe (those of one namespace at once, namespaces in parallel): the address the server saw, or nil
    /// when no answer came within `timeout` seconds.
    public func attempt(_ probes: [Probe], timeout: Double = 0.8) throws -> [Probe: String?] {
        let byNamespace = Dictionary(grouping: probes, by: \.from).sorted { $0.key < $1.key }
        // One driver starts the probers of every namespace at once and waits for them (Python reaps its children
        // whatever signal mask this process hands down; a shell's `wait` may not).
        var jobs: [String] = []
        for (index, (name, list)) in byNamespace.enumerated() {
            let spec = list.map { "\($0.to),\($0.port),\($0.path.map { "http" + $0 } ?? ($0.udp ? "udp" : "tcp"))" }.joined(separator: ";")
            jobs.append("\(namespace(name))|\(spec)|\(directory)/out-\(index)")
        }
        try Command.check(["python3", "\(directory)/probe.py", "--drive", "\(timeout)"] + jobs)
        var outcome: [Probe: String?] = [:]
        for (index, (_, list)) in byNamespace.enumerated() {
            let lines = try String(contentsOfFile: "\(directory)/out-\(index)", encoding: .utf8).split(separator: "\n").map(String.init)
            for (probe, line) in zip(list, lines) { outcome[probe] = line == "-" ? String?.none : line }
        }
        return outcome
    }

    private static let server = """
        import socket, sys, threading
        ready, tcp, udp = sys.argv[1], [int(p) for p in sys.argv[2].split(',') if p], [int(p) for p in sys.argv[3].split(',') if p]
        def serve_tcp(s):
            while True:
                c, peer = s.accept()
                try: c.sendall((peer[0] + '\\n').encode())
                finally: c.close()
        def serve_udp(s):
            while True:
                data, peer = s.recvfrom(512)
                s.sendto((peer[0] + '\\n').encode(), peer)
        for port in tcp:
            s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('0.0.0.0', port)); s.listen(64)
            threading.Thread(target=serve_tcp, args=(s,), daemon=True).start()
        for port in udp:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('0.0.0.0', port))
            threading.Thread(target=serve_udp, args=(s,), daemon=True).start()
        open(ready, 'w').close()
        threading.Event().wait()
        """

    private static let prober = """
        import socket, subprocess, sys, threading
        if sys.argv[1] == '--drive':
            running = []
            for job in sys.argv[3:]:
                ns, spec, out = job.split('|')
                running.append(subprocess.Popen(['ip', 'netns', 'exec', ns, sys.executable, sys.argv[0], spec, sys.argv[2]], stdout=open(out, 'w')))
            sys.exit(max([p.wait() for p in running] + [0]))
        probes, timeout = [p.split(',') for p in sys.argv[1].split(';')], float(sys.argv[2])
        out = ['-'] * len(probes)
        def attempt(i, host, port, proto):
            try:
                if proto.startswith('http'):
                    import urllib.request, urllib.error
                    try:
                        body = urllib.request.urlopen('http://%s:%s%s' % (host, port, proto[4:]), timeout=timeout).read().decode()
                        out[i] = (body.strip().splitlines() or [''])[0]
                    except urllib.error.HTTPError as e:
                        out[i] = 'HTTP %d' % e.code
                    return
                if proto == 'tcp':
                    s = socket.create_connection((host, int(port)), timeout=timeout); s.settimeout(timeout)
                    data = s.recv(64)
                else:
                    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(timeout)
                    s.sendto(b'probe', (host, int(port))); data = s.recv(64)
                s.close()
                if data: out[i] = data.decode().strip()
            except Exception:
                pass
        threads = [threading.Thread(target=attempt, args=(i, *p)) for i, p in enumerate(probes)]
        for t in threads: t.start()
        for t in threads: t.join()
        print('\\n'.join(out))
        """
}
