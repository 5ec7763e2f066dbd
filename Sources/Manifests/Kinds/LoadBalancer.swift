import YAML

/// How a load balancer's listener is reached.
public enum ListenerProtocol: String, Sendable, CaseIterable, Codable {
    /// HTTP on the region's shared port 80, routed by Host (`<name>.<tenant>.lb.<region>.<suffix>`).
    case http
    /// TCP on a port of the region's public-domain range (TLS passes through).
    case tcp
}

/// How a load balancer spreads connections over its members.
public enum BalanceAlgorithm: String, Sendable, CaseIterable, Codable {
    case roundrobin, leastconn, source
}

/// How a member's health is checked.
public enum HealthCheckType: String, Sendable, CaseIterable, Codable {
    /// A TCP connect to the member's port.
    case tcp
    /// `GET path` expecting a status.
    case http
}

/// A tenant's load balancer, run by HAProxy on the region's `loadbalancer` nodes.
public struct LoadBalancerSpec: ResourceSpec, DecodableSpec {
    public static let kind = Kind.loadBalancer
    static let fields = ["listeners", "members", "balance", "healthCheck", "stickiness"]

    /// One way in: the protocol and the members' port it reaches.
    public struct Listener: Sendable, Encodable, Hashable {
        public var proto: Located<ListenerProtocol>
        /// The port on each member.
        public var port: Located<Int>

        static let fields = ["protocol", "port"]
        private enum CodingKeys: String, CodingKey { case proto = "protocol", port }
    }

    /// A member's health check.
    public struct HealthCheck: Sendable, Encodable, Hashable {
        /// tcp (default) or http.
        public var type: Located<HealthCheckType>?
        /// The path an http check requests (default `/`).
        public var path: Located<String>?
        /// The status an http check expects (default 200).
        public var expect: Located<Int>?
        /// Milliseconds between checks (default 2000).
        public var intervalMilliseconds: Located<Int>?
        /// Passing checks before a member is used again (default 2).
        public var rise: Located<Int>?
        /// Failing checks before a member is taken out (default 3).
        public var fall: Located<Int>?

        static let fields = ["type", "path", "expect", "interval", "rise", "fall"]

        /// The check's type in force.
        public var effectiveType: HealthCheckType { type?.value ?? .tcp }
        /// The interval in force, in milliseconds.
        public var effectiveInterval: Int { intervalMilliseconds?.value ?? 2000 }
        /// Rise and fall in force.
        public var effectiveRise: Int { rise?.value ?? 2 }
        public var effectiveFall: Int { fall?.value ?? 3 }
    }

    /// Where it is reached (at least one; one http listener at most).
    public var listeners: Located<[Listener]>
    /// The tenant's instances in the same region it sends to, by name.
    public var members: Located<[Located<String>]>
    /// roundrobin (default), leastconn or source.
    public var balance: Located<BalanceAlgorithm>?
    /// How members are checked (default: a TCP connect every 2 s, rise 2, fall 3).
    public var healthCheck: Located<HealthCheck>?
    /// `cookie`: an http client keeps its member (`none` by default).
    public var stickiness: Located<Stickiness>?

    /// Whether an http client keeps its member.
    public enum Stickiness: String, Sendable, CaseIterable, Codable {
        case none, cookie
    }

    static func decode(from d: ManifestDecoder, what: @autoclosure () -> String) throws(YAMLError) -> LoadBalancerSpec? {
        var listeners: Located<[Listener]>?, members: Located<[Located<String>]>?, balance: Located<BalanceAlgorithm>?
        var healthCheck: Located<HealthCheck>?, stickiness: Located<Stickiness>?
        guard try d.mapping(what(), required: ["listeners", "members"], { key throws(YAMLError) in
            switch key.value {
            case "listeners": listeners = try d.list("listeners") { () throws(YAMLError) in try decodeListener(d) }
            case "members": members = try d.list("members") { () throws(YAMLError) in try d.name("members") }
            case "balance": balance = try d.choice("balance", BalanceAlgorithm.self)
            case "healthCheck": healthCheck = try decodeHealthCheck(d)
            case "stickiness": stickiness = try d.choice("stickiness", Stickiness.self)
            default: try d.unknownField(key, in: what(), known: fields)
            }
        }) != nil, let listeners, let members else { return nil }
        return LoadBalancerSpec(listeners: listeners, members: members, balance: balance, healthCheck: healthCheck, stickiness: stickiness)
    }

    private static func decodeListener(_ d: ManifestDecoder) throws(YAMLError) -> Listener? {
        var proto: Located<ListenerProtocol>?, port: Located<Int>?
        guard try d.mapping("a listener", required: ["protocol", "port"], { key throws(YAMLError) in
            switch key.value {
            case "protocol": proto = try d.choice("protocol", ListenerProtocol.self)
            case "port": port = try d.int("port", in: 1...65535)
            default: try d.unknownField(key, in: "a listener", known: Listener.fields)
            }
        }) != nil, let proto, let port else { return nil }
        return Listener(proto: proto, port: port)
    }

    private static func decodeHealthCheck(_ d: ManifestDecoder) throws(YAMLError) -> Located<HealthCheck>? {
        var check = HealthCheck()
        guard let mapping = try d.mapping("'healthCheck'", { key throws(YAMLError) in
            switch key.value {
            case "type": check.type = try d.choice("type", HealthCheckType.self)
            case "path":
                check.path = try d.parsed("path", expected: "an absolute URL path", hint: "write e.g. /healthz") { text in
                    text.hasPrefix("/") && text.utf8.count <= 1024 && text.unicodeScalars.allSatisfy { $0.value > 0x20 && $0.value < 0x7F } ? text : nil
                }
            case "expect": check.expect = try d.int("expect", in: 100...599)
            case "interval":
                check.intervalMilliseconds = try d.parsed("interval", expected: "a duration like 500ms or 2s", hint: "write e.g. 2s (at least 100ms, at most 1h)") {
                    Self.milliseconds($0)
                }
            case "rise": check.rise = try d.int("rise", in: 1...100)
            case "fall": check.fall = try d.int("fall", in: 1...100)
            default: try d.unknownField(key, in: "'healthCheck'", known: HealthCheck.fields)
            }
        }) else { return nil }
        return Located(check, at: d.location(mapping.mark))
    }

    /// `500ms` → 500, `2s` → 2000, `1m` → 60000; nil outside 100 ms…1 h or for anything else.
    static func milliseconds(_ text: String) -> Int? {
        let (digits, scale): (Substring, Int)
        if text.hasSuffix("ms") {
            (digits, scale) = (text.dropLast(2), 1)
        } else if text.hasSuffix("s") {
            (digits, scale) = (text.dropLast(), 1000)
        } else if text.hasSuffix("m") {
            (digits, scale) = (text.dropLast(), 60_000)
        } else {
            return nil
        }
        guard digits.count <= 7, let count = Int(digits), count > 0 else { return nil }
        let value = count * scale
        return (100...3_600_000).contains(value) ? value : nil
    }
}

/// A region's public domains: every instance reachable as `<label>.lb.<region>.<suffix>:<port>` through the region's
/// `loadbalancer` nodes, and the tenants' load balancers under the same name.
public struct PublicDomains: Sendable, Encodable, Hashable {
    /// The DNS suffix (`stacklab.org`): names are `<label>.lb.<region>.<suffix>`.
    public var suffix: Located<String>
    /// The TCP ports handed out to instances and tcp listeners.
    public var ports: Located<PortRange>
    /// The port on each instance a public domain reaches (default 22).
    public var instancePort: Located<Int>?
    /// Hours a freed port waits before it is handed out again (default 24).
    public var reuseAfterHours: Located<Int>?

    static let fields = ["suffix", "ports", "instancePort", "reuseAfter"]

    /// The instance port in force.
    public var effectiveInstancePort: Int { instancePort?.value ?? 22 }
    /// The reuse wait in force, in hours.
    public var effectiveReuseAfterHours: Int { reuseAfterHours?.value ?? 24 }

    /// The DNS zone of a region's public domains: `lb.<region>.<suffix>`.
    public func zone(region: String) -> String { "lb.\(region).\(suffix.value)" }

    static func decode(from d: ManifestDecoder) throws(YAMLError) -> Located<PublicDomains>? {
        var suffix: Located<String>?, ports: Located<PortRange>?, instancePort: Located<Int>?, reuse: Located<Int>?
        guard let mapping = try d.mapping("'publicDomains'", required: ["suffix", "ports"], { key throws(YAMLError) in
            switch key.value {
            case "suffix":
                suffix = try d.parsed("suffix", expected: "a DNS name", hint: "write e.g. stacklab.org") { text in
                    Self.isDNSName(text) ? text.lowercased() : nil
                }
            case "ports": ports = try d.portRange("ports")
            case "instancePort": instancePort = try d.int("instancePort", in: 1...65535)
            case "reuseAfter":
                reuse = try d.parsed("reuseAfter", expected: "a period in hours or days", hint: "write e.g. 24h or 7d") { VolumeSpec.Snapshot.hours($0) }
            default: try d.unknownField(key, in: "'publicDomains'", known: fields)
            }
        }) else { return nil }
        if let range = ports, range.value.lower < 1024 {
            d.report(.error("the public-domain ports \(range.value) start below 1024", at: range.location,
                            hint: "hand out unprivileged ports, e.g. 11000-11999 (port 80 is the http listeners' own)"))
            return nil
        }
        guard let suffix, let ports else { return nil }
        return Located(PublicDomains(suffix: suffix, ports: ports, instancePort: instancePort, reuseAfterHours: reuse), at: d.location(mapping.mark))
    }

    /// Labels of letters, digits and inner hyphens, separated by dots; at least `minimumLabels` labels, at most 200
    /// bytes.
    static func isDNSName(_ text: String, minimumLabels: Int = 2) -> Bool {
        let labels = text.split(separator: ".", omittingEmptySubsequences: false)
        return labels.count >= minimumLabels && text.utf8.count <= 200 && labels.allSatisfy { label in
            !label.isEmpty && label.count <= 63 && label.first != "-" && label.last != "-"
                && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
        }
    }
}
