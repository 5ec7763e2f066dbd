import Foundation
import Processes
#if canImport(Glibc)
import Glibc
#endif

/// Network namespaces wired by a test, with real TCP and UDP servers in them and a prober that opens real connections:
/// what a firewall does is shown with packets. Every namespace, server and veth is the test's own and goes with it.
public final class PacketLab {
    /// An attempt to reach something: from a namespace to an address and port.
    public struct Probe: Hashable, Sendable, CustomStringConvertible {
        /// What is sent, and what counts as an answer.
        public enum Kind: Hashable, Sendable {
            /// A TCP connection (or a UDP datagram, answered): the address the server saw.
            case tcp, udp
            /// An HTTP GET of this path: the body's first line, or `HTTP <code>`.
            case http(String)
            /// One UDP datagram that gets no answer: the address the lab's server logged it from.
            case datagram
            /// A DHCP request before the sender has an address: a datagram from 0.0.0.0:68 to 255.255.255.255:67 out of
            /// `device`, judged as `datagram`.
            case dhcp
            /// An ARP request for `to` sent out of `device` with the sender's own MAC and `source` as its sender address:
            /// `answered` when a reply comes back (the target took the claim and learned it), nil when not.
            case arp
        }

        public var from: String
        public var to: String
        public var port: Int
        public var kind: Kind
        /// The source address to send from (bound before connecting), and the device to send out of (SO_BINDTODEVICE).
        public var source: String?
        public var device: String?

        public init(from: String, to: String, port: Int, udp: Bool = false, get path: String? = nil, source: String? = nil, device: String? = nil) {
            self.from = from
            self.to = to
            self.port = port
            kind = path.map(Kind.http) ?? (udp ? .udp : .tcp)
            self.source = source
            self.device = device
        }

        public init(from: String, to: String, port: Int = 0, kind: Kind, source: String? = nil, device: String? = nil) {
            self.from = from
            self.to = to
            self.port = port
            self.kind = kind
            self.source = source
            self.device = device
        }

        public var description: String {
            let what: String = switch kind {
            case .tcp: ""
            case .udp: "/udp"
            case .http(let path): " GET \(path)"
            case .datagram: "/udp one-way"
            case .dhcp: " DHCP from 0.0.0.0"
            case .arp: " ARP claiming \(source ?? "?")"
            }
            let via = [source.map { "from \($0)" }, device.map { "via \($0)" }].compactMap { $0 }.joined(separator: " ")
            return "\(from) → \(to):\(port)\(what)\(via.isEmpty ? "" : " (\(via))")"
        }

        /// The prober's spec: `to,port,kind,source,device`.
        var spec: String {
            let proto: String = switch kind {
            case .tcp: "tcp"
            case .udp: "udp"
            case .http(let path): "http" + path
            case .datagram: "datagram"
            case .dhcp: "dhcp"
            case .arp: "arp"
            }
            return [to, String(port), proto, source ?? "", device ?? ""].joined(separator: ",")
        }
    }

    private let tag = UUID().uuidString.prefix(6).lowercased()
    private var namespaces: [String] = []
    private var links = 0
    /// Attempts made so far: each datagram carries a token unique to its attempt.
    private var attempts = 0
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
    /// `mac` is given to the second end (an instance's MAC).
    public func link(_ a: String, _ aEnd: String, _ aAddress: String?, _ b: String, _ bEnd: String, _ bAddress: String?, bridge: String? = nil,
                     mac: String? = nil) throws {
        // Short temporary names (an end's own name may take all 15 characters Linux allows), renamed inside each namespace.
        links += 1
        let (aTemporary, bTemporary) = ("p\(tag)\(links)a", "p\(tag)\(links)b")
        try Command.check(["ip", "link", "add", aTemporary, "netns", namespace(a), "type", "veth", "peer", "name", bTemporary, "netns", namespace(b)])
        try run(a, "ip link set \(aTemporary) name \(aEnd) && ip link set \(aEnd) up")
        try run(b, "ip link set \(bTemporary) name \(bEnd)\(mac.map { " && ip link set \(bEnd) address \($0)" } ?? "") && ip link set \(bEnd) up")
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

    /// Tries every probe (those of one namespace at once, namespaces in parallel): the address the server saw (or what
    /// the probe's kind says it answers), or nil when no answer came within `timeout` seconds.
    public func attempt(_ probes: [Probe], timeout: Double = 0.8) throws -> [Probe: String?] {
        attempts += 1
        let byNamespace = Dictionary(grouping: probes, by: \.from).sorted { $0.key < $1.key }
        // One driver starts the probers of every namespace at once and waits for them (Python reaps its children
        // whatever signal mask this process hands down; a shell's `wait` may not).
        var jobs: [String] = []
        for (index, (name, list)) in byNamespace.enumerated() {
            jobs.append("\(namespace(name))|\(list.map(\.spec).joined(separator: ";"))|\(directory)/out-\(index)|a\(attempts)n\(index)")
        }
        try Command.check(["python3", "\(directory)/probe.py", "--drive", "\(timeout)"] + jobs)
        // Datagrams get no answer: the servers log what arrived, with the token each carried.
        usleep(200_000)
        var logged: [String: String] = [:]
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] where name.hasPrefix("datagrams-") {
            let text = (try? String(contentsOfFile: "\(directory)/\(name)", encoding: .utf8)) ?? ""
            for line in text.split(separator: "\n") {
                let parts = line.split(separator: " ")
                if parts.count == 2 { logged[String(parts[0])] = String(parts[1]) }
            }
        }
        var outcome: [Probe: String?] = [:]
        for (index, (_, list)) in byNamespace.enumerated() {
            let lines = try String(contentsOfFile: "\(directory)/out-\(index)", encoding: .utf8).split(separator: "\n").map(String.init)
            for (position, (probe, line)) in zip(list, lines).enumerated() {
                switch probe.kind {
                case .datagram, .dhcp: outcome[probe] = logged["a\(attempts)n\(index)p\(position)"]
                default: outcome[probe] = line == "-" ? String?.none : line
                }
            }
        }
        return outcome
    }

    private static let server = """
        import os, socket, sys, threading
        ready, tcp, udp = sys.argv[1], [int(p) for p in sys.argv[2].split(',') if p], [int(p) for p in sys.argv[3].split(',') if p]
        log = open(os.path.join(os.path.dirname(ready), 'datagrams-' + os.path.basename(ready)), 'a', buffering=1)
        def serve_tcp(s):
            while True:
                c, peer = s.accept()
                try: c.sendall((peer[0] + '\\n').encode())
                finally: c.close()
        def serve_udp(s):
            while True:
                data, peer = s.recvfrom(512)
                text = data.decode(errors='replace')
                if text.startswith('token '):
                    log.write(text.split()[1] + ' ' + peer[0] + '\\n')
                elif peer[0] != '0.0.0.0':
                    s.sendto((peer[0] + '\\n').encode(), peer)
        for port in tcp:
            s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('0.0.0.0', port)); s.listen(64)
            threading.Thread(target=serve_tcp, args=(s,), daemon=True).start()
            try:
                s6 = socket.socket(socket.AF_INET6); s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                s6.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s6.bind(('::', port)); s6.listen(64)
                threading.Thread(target=serve_tcp, args=(s6,), daemon=True).start()
            except OSError:
                pass
        for port in udp:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('0.0.0.0', port))
            threading.Thread(target=serve_udp, args=(s,), daemon=True).start()
        open(ready, 'w').close()
        threading.Event().wait()
        """

    private static let prober = """
        import socket, struct, subprocess, sys, threading, time
        if sys.argv[1] == '--drive':
            running = []
            for job in sys.argv[3:]:
                ns, spec, out, token = job.split('|')
                running.append(subprocess.Popen(['ip', 'netns', 'exec', ns, sys.executable, sys.argv[0], spec, sys.argv[2], token], stdout=open(out, 'w')))
            sys.exit(max([p.wait() for p in running] + [0]))
        probes, timeout, token = [p.split(',') for p in sys.argv[1].split(';')], float(sys.argv[2]), sys.argv[3]
        out = ['-'] * len(probes)
        SO_BINDTODEVICE = 25
        def bind(s, source, device, port=0):
            if device: s.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, device.encode())
            if source or port: s.bind((source or '0.0.0.0', port))
        def arp(i, target, source, device):
            mac = bytes.fromhex(open('/sys/class/net/%s/address' % device).read().strip().replace(':', ''))
            s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0806)); s.bind((device, 0x0806))
            spa, tpa = socket.inet_aton(source), socket.inet_aton(target)
            s.send(b'\\xff' * 6 + mac + b'\\x08\\x06' + struct.pack('!HHBBH', 1, 0x0800, 6, 4, 1) + mac + spa + b'\\x00' * 6 + tpa)
            s.settimeout(timeout); end = time.time() + timeout
            while time.time() < end:
                try: frame = s.recv(128)
                except OSError: break
                if len(frame) >= 42 and frame[20:22] == b'\\x00\\x02' and frame[28:32] == tpa and frame[38:42] == spa:
                    out[i] = 'answered'; break
        def attempt(i, host, port, proto, source, device):
            try:
                if proto == 'arp':
                    return arp(i, host, source, device)
                if proto in ('datagram', 'dhcp'):
                    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                    payload = ('token %sp%d' % (token, i)).encode()
                    if proto == 'dhcp':
                        s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1); bind(s, None, device, 68)
                        s.sendto(payload, ('255.255.255.255', 67))
                    else:
                        bind(s, source, device); s.sendto(payload, (host, int(port)))
                    out[i] = 'sent'; return
                if proto.startswith('http'):
                    import http.client
                    c = http.client.HTTPConnection(host, int(port), timeout=timeout, source_address=(source, 0) if source else None)
                    if device:
                        c.sock = socket.socket(); c.sock.settimeout(timeout); bind(c.sock, source, device); c.sock.connect((host, int(port)))
                    c.request('GET', proto[4:]); r = c.getresponse(); body = r.read().decode()
                    out[i] = (body.strip().splitlines() or [''])[0] if r.status == 200 else 'HTTP %d' % r.status
                    return
                family = socket.AF_INET6 if ':' in host else socket.AF_INET
                if proto == 'tcp':
                    s = socket.socket(family, socket.SOCK_STREAM); s.settimeout(timeout); bind(s, source, device)
                    s.connect(socket.getaddrinfo(host, int(port), family, socket.SOCK_STREAM)[0][4]); data = s.recv(64)
                else:
                    s = socket.socket(family, socket.SOCK_DGRAM); s.settimeout(timeout); bind(s, source, device)
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
