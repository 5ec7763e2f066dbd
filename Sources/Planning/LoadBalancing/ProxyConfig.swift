import Manifests

/// A load-balancer node's HAProxy configuration: the region's public domains (one tcp frontend per instance whose
/// security groups open the public-domain port) and its tenants' load balancers (tcp listeners on ports of the
/// region's range; http listeners behind one frontend on port 80, routed by Host). Every load-balancer node of a
/// region renders the same services. The ports handed out, and the freed ports still waiting before reuse, are written
/// in the file as comments: read back from the nodes, they keep allocations sticky as floating IPs' DNAT rules do.
public struct ProxyConfig: Sendable, Codable, Hashable {
    /// The node it is for.
    public var node: Address
    /// Where the master's pid file and the stats socket live on the node (under its file root).
    public var runDirectory: String
    /// Frontends with their backends, in name order.
    public var services: [Service]
    /// Ports freed and not yet handed out again.
    public var held: [HeldPort]

    /// Creates a configuration.
    public init(node: Address, runDirectory: String, services: [Service], held: [HeldPort]) {
        self.node = node
        self.runDirectory = runDirectory
        self.services = services.sorted { $0.name < $1.name }
        self.held = held.sorted { $0.port < $1.port }
    }

    /// One server of a backend: an instance's fixed IP and port.
    public struct Server: Sendable, Codable, Hashable {
        public var name: String
        public var ip: IPv4Address
        public var port: Int

        public init(name: String, ip: IPv4Address, port: Int) {
            self.name = name
            self.ip = ip
            self.port = port
        }
    }

    /// How a backend's servers are checked.
    public struct Check: Sendable, Codable, Hashable {
        /// `GET path` expecting `expect`; nil: a TCP connect.
        public var path: String?
        public var expect: Int
        public var intervalMilliseconds: Int
        public var rise: Int
        public var fall: Int

        public init(path: String?, expect: Int, intervalMilliseconds: Int, rise: Int, fall: Int) {
            self.path = path
            self.expect = expect
            self.intervalMilliseconds = intervalMilliseconds
            self.rise = rise
            self.fall = fall
        }
    }

    /// A frontend and its backend.
    public struct Service: Sendable, Codable, Hashable {
        public enum Mode: String, Sendable, Codable { case tcp, http }

        /// The proxy section name (`pd:aha6wufp0t`, `lb:devops:web:tcp443`, `lb:devops:web:http`).
        public var name: String
        /// What it serves, and which port of the range it holds (tcp).
        public var owner: PortOwner
        public var mode: Mode
        /// The port it listens on (80 for http).
        public var port: Int
        /// The DNS name it answers to (http routes by it).
        public var host: String
        public var servers: [Server]
        public var balance: BalanceAlgorithm
        public var check: Check?
        /// Cookie stickiness (http).
        public var cookie: Bool
        /// The sources admitted (tcp); nil admits any.
        public var sources: [IPv4Network]?

        public init(name: String, owner: PortOwner, mode: Mode, port: Int, host: String, servers: [Server], balance: BalanceAlgorithm,
                    check: Check?, cookie: Bool, sources: [IPv4Network]?) {
            self.name = name
            self.owner = owner
            self.mode = mode
            self.port = port
            self.host = host
            self.servers = servers
            self.balance = balance
            self.check = check
            self.cookie = cookie
            self.sources = sources
        }
    }

    /// A port freed at `hour` (hours since the epoch) by `owner`, not handed out to anyone else before the region's
    /// reuse wait has passed.
    public struct HeldPort: Sendable, Codable, Hashable {
        public var port: Int
        public var owner: PortOwner
        public var hour: Int32

        public init(port: Int, owner: PortOwner, hour: Int32) {
            self.port = port
            self.owner = owner
            self.hour = hour
        }
    }

    /// The port every http listener shares.
    public static let httpPort = 80
    /// The installed file.
    public static let file = "/etc/stacklab/haproxy/haproxy.cfg"
    /// Where the pid file and stats socket live, before any file root.
    public static let runDirectory = "/run/stacklab"

    /// The master process's pid file.
    public var pidFile: String { runDirectory + "/haproxy.pid" }
    /// The stats socket (admin level, for `show servers state` and seamless reloads).
    public var statsSocket: String { runDirectory + "/haproxy.sock" }

    /// The ports handed out, by owner.
    public var ports: [PortOwner: Int] {
        Dictionary(services.filter { $0.mode == .tcp }.map { ($0.owner, $0.port) }, uniquingKeysWith: { first, _ in first })
    }

    /// The whole file: a header with the digest of the rest, then `global`, `defaults` and the services.
    public var text: String {
        let body = self.body
        return "\(Self.header)\(node) (managed by StackLab: a hand edit is drift, and is undone)\n# stacklab-digest \(Self.digest(of: body))\n" + body
    }

    /// Everything below the header.
    var body: String {
        var text = """
            global
                pidfile \(pidFile)
                stats socket \(statsSocket) mode 600 level admin expose-fd listeners

            defaults
                mode tcp
                timeout connect 5s
                timeout client 1h
                timeout server 1h
                timeout check 5s

            """
        for hold in held { text += "# stacklab-held \(hold.port) \(hold.owner) \(hold.hour)\n" }
        let http = services.filter { $0.mode == .http }
        if !http.isEmpty {
            text += "\nfrontend http-in\n    mode http\n    bind :\(Self.httpPort)\n    timeout http-request 10s\n    option forwardfor\n"
            for service in http { text += "    use_backend \(service.name) if { hdr(host),field(1,:) -i \(service.host) }\n" }
        }
        for service in services {
            text += "\n# \(service.owner): \(service.host)\(service.mode == .tcp ? ":\(service.port)" : "")\n"
            if service.mode == .tcp {
                text += "# stacklab-port \(service.port) \(service.owner)\n"
                text += "frontend \(service.name)\n    mode tcp\n    bind :\(service.port)\n"
                if let sources = service.sources {
                    text += "    tcp-request connection reject unless { src \(sources.map(\.description).joined(separator: " ")) }\n"
                }
                text += "    default_backend \(service.name)\n"
            }
            text += "backend \(service.name)\n    mode \(service.mode.rawValue)\n    balance \(service.balance.rawValue)\n"
            if let path = service.check?.path {
                text += "    option httpchk GET \(path)\n    http-check expect status \(service.check!.expect)\n"
            }
            if service.cookie { text += "    cookie SERVERID insert indirect nocache\n" }
            for server in service.servers {
                var line = "    server \(server.name) \(server.ip):\(server.port)"
                if let check = service.check { line += " check inter \(check.intervalMilliseconds) rise \(check.rise) fall \(check.fall)" }
                if service.cookie { line += " cookie \(server.name)" }
                text += line + "\n"
            }
        }
        return text
    }

    static func digest(of body: String) -> String {
        var hasher = StableHasher()
        hasher.combine(body)
        return hasher.hex
    }

    /// What a node's installed file says: the ports handed out and held, and whether the file is as StackLab wrote it
    /// (its digest line matches the rest). Nil when the text is not one of StackLab's.
    public struct Installed: Sendable, Hashable {
        public var ports: [PortOwner: Int]
        public var held: [HeldPort]
        public var intact: Bool
        /// The load balancers it serves.
        public var loadBalancers: Set<Address> {
            Set(ports.keys.map(\.address).filter { $0.kind == .loadBalancer }).union(httpBalancers)
        }
        var httpBalancers: Set<Address>

        /// Reads back an installed file.
        public init?(parsing text: String) {
            guard text.hasPrefix(ProxyConfig.header) else { return nil }
            var ports: [PortOwner: Int] = [:], held: [HeldPort] = [], http: Set<Address> = []
            // Only comment lines carry what is read back; the two header lines are the digest's business.
            for line in text.split(separator: "\n").dropFirst(2) where line.hasPrefix("# ") {
                let words = line.split(separator: " ")
                if words.count == 4, words[0] == "#", words[1] == "stacklab-port", let port = Int(words[2]), let owner = PortOwner(parsing: String(words[3])) {
                    ports[owner] = port
                } else if words.count == 5, words[0] == "#", words[1] == "stacklab-held", let port = Int(words[2]),
                          let owner = PortOwner(parsing: String(words[3])), let hour = Int32(words[4]) {
                    held.append(HeldPort(port: port, owner: owner, hour: hour))
                } else if words.count >= 2, words[0] == "#", words[1].hasSuffix(":"), let owner = PortOwner(parsing: String(words[1].dropLast())), owner.listener == nil,
                          owner.address.kind == .loadBalancer {
                    http.insert(owner.address)
                }
            }
            self.ports = ports
            self.held = held
            httpBalancers = http
            intact = ProxyConfig.isIntact(text)
        }
    }

    /// The first words of every file StackLab writes.
    static let header = "# StackLab: HAProxy of "

    /// Whether an installed file is as StackLab wrote it: its header, then a digest line matching the rest.
    public static func isIntact(_ text: String) -> Bool {
        guard text.hasPrefix(header), let first = text.firstIndex(of: "\n") else { return false }
        let second = text[text.index(after: first)...]
        guard second.hasPrefix("# stacklab-digest "), let end = second.firstIndex(of: "\n") else { return false }
        return second[second.index(second.startIndex, offsetBy: "# stacklab-digest ".count)..<end] == digest(of: String(second[second.index(after: end)...]))
    }

    /// What changes from `old` (an installed file) to this configuration, line by line (`- balance leastconn`,
    /// `+ server web-3 10.1.0.7:80 …`): lines counted as a multiset, the header and digest left out.
    public func diff(from old: String?) -> [Change.FieldChange] {
        func counts(_ text: String) -> [String: Int] {
            text.split(separator: "\n").dropFirst(2).reduce(into: [:]) { $0[$1.trimmingCharacters(in: .whitespaces), default: 0] += 1 }
        }
        let was = counts(old ?? ""), now = counts(text)
        var fields: [Change.FieldChange] = []
        for line in Set(was.keys).union(now.keys).sorted() {
            let difference = (now[line] ?? 0) - (was[line] ?? 0)
            if difference < 0 { fields += Array(repeating: .init(field: "- line", old: line, new: ""), count: -difference) }
            if difference > 0 { fields += Array(repeating: .init(field: "+ line", old: "", new: line), count: difference) }
        }
        if fields.isEmpty { fields.append(.init(field: "haproxy.cfg", old: "as installed", new: "as rendered")) }
        return fields
    }
}

/// One server of a backend as HAProxy's stats socket reports it (`show stat`): `UP`, `DOWN`, `MAINT`, `no check`…
public struct ProxyServerHealth: Sendable, Codable, Hashable {
    public var backend: String
    public var server: String
    public var status: String
    /// The last check's result (`L7OK`, `L4CON`, `L7STS`…), when checked.
    public var check: String?

    public init(backend: String, server: String, status: String, check: String?) {
        self.backend = backend
        self.server = server
        self.status = status
        self.check = check
    }

    /// The servers of `show stat`'s CSV (frontend and backend summary rows left out).
    public static func parse(stats csv: String) -> [ProxyServerHealth] {
        let lines = csv.split(separator: "\n")
        guard let header = lines.first, header.hasPrefix("# ") else { return [] }
        let columns = header.dropFirst(2).split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        guard let name = columns.firstIndex(of: "pxname"), let server = columns.firstIndex(of: "svname"), let status = columns.firstIndex(of: "status") else { return [] }
        let check = columns.firstIndex(of: "check_status")
        return lines.dropFirst().compactMap { line in
            let fields = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard fields.count > max(name, server, status), fields[server] != "FRONTEND", fields[server] != "BACKEND" else { return nil }
            let checked = check.flatMap { $0 < fields.count && !fields[$0].isEmpty ? fields[$0].trimmingCharacters(in: .whitespaces) : nil }
            return ProxyServerHealth(backend: fields[name], server: fields[server], status: fields[status], check: checked)
        }
    }
}

/// What holds a port of a region's public-domain range: an instance's public domain, or one tcp listener of a load
/// balancer (by the members' port it reaches). Written `instance/sina/devops/gerrit` or
/// `loadbalancer/sina/devops/web:443`.
public struct PortOwner: Sendable, Codable, Hashable, Comparable, CustomStringConvertible {
    public var address: Address
    public var listener: Int?

    public init(address: Address, listener: Int? = nil) {
        self.address = address
        self.listener = listener
    }

    public var description: String { listener.map { "\(address):\($0)" } ?? address.description }

    /// From its text; nil when it is not one.
    public init?(parsing text: String) {
        var addressText = Substring(text), listener: Int?
        if let colon = text.lastIndex(of: ":") {
            guard let port = Int(text[text.index(after: colon)...]) else { return nil }
            listener = port
            addressText = text[..<colon]
        }
        guard let address = Address(parsing: String(addressText)), address.kind == .instance || address.kind == .loadBalancer else { return nil }
        self.init(address: address, listener: listener)
    }

    public static func < (lhs: PortOwner, rhs: PortOwner) -> Bool {
        (lhs.address, lhs.listener ?? -1) < (rhs.address, rhs.listener ?? -1)
    }
}

/// An instance's public domain: a stable label that looks random (Sina's `aha6wufp0t`), derived from the instance's
/// address so that it never changes while the instance exists, moves included.
public enum PublicDomain {
    /// Ten characters of `[a-z0-9]`.
    public static func label(for instance: Address) -> String {
        var hasher = StableHasher()
        hasher.combine("public-domain")
        hasher.combine(instance.description)
        var value = hasher.value
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789")
        var label = ""
        for _ in 0..<10 {
            label.append(alphabet[Int(value % 36)])
            value /= 36
        }
        return label
    }

    /// `<label>.lb.<region>.<suffix>`.
    public static func name(for instance: Address, domains: PublicDomains) -> String {
        "\(label(for: instance)).\(domains.zone(region: instance.region ?? ""))"
    }

    /// An http listener's Host: `<name>.<tenant>.lb.<region>.<suffix>`.
    public static func name(forBalancer balancer: Address, domains: PublicDomains) -> String {
        "\(balancer.name).\(balancer.tenant ?? "").\(domains.zone(region: balancer.region ?? ""))"
    }
}
