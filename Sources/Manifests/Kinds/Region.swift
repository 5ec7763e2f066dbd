import YAML

/// Whether a region serves tenants or is the CI gate's staging ground.
public enum Environment: String, Sendable, CaseIterable, Codable {
    case production, staging
}

/// A region: one sponsor's site, at least three servers. Region-wide settings live here.
public struct RegionSpec: ResourceSpec, DecodableSpec {
    public static let kind = Kind.region
    static let fields = ["sponsor", "description", "environment", "cpuAllocationRatio", "ramAllocationRatio", "maxDeleteShare", "internalRanges", "objectStore", "creditCheck", "alarmWebhooks", "publicDomains"]

    /// Who provides the hardware.
    public var sponsor: Located<String>?
    /// Free text.
    public var description: Located<String>?
    /// production or staging (default production).
    public var environment: Located<Environment>?
    /// vCPUs scheduled per physical CPU (default 16).
    public var cpuAllocationRatio: Located<FixedPoint>?
    /// RAM scheduled per physical byte (default 1.5).
    public var ramAllocationRatio: Located<FixedPoint>?
    /// Largest share of the region's instances one plan may delete without `--allow-mass-delete` (default 0.25).
    public var maxDeleteShare: Located<FixedPoint>?
    /// The provider's internal networks, which the SWS egress filter keeps instances from opening connections to
    /// unless a Filter allows it (default 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16).
    public var internalRanges: Located<[Located<IPv4Network>]>?

    /// Whether new instances of a tenant whose balance is below zero are held back at plan time (default false).
    public var creditCheck: Located<Bool>?
    /// The webhook hosts (`hooks.example.org`, `hooks.example.org:8443`) tenants' alarms may notify.
    public var alarmWebhooks: Located<[Located<String>]>?
    /// Public domains and load balancers: the DNS suffix, the ports handed out, the instance port.
    public var publicDomains: Located<PublicDomains>?
    /// The region's Swift cluster, where volume snapshots are kept.
    public var objectStore: Located<ObjectStore>?

    /// How StackLab reaches a region's Swift proxy: its URL, a tempauth user, and the environment variable holding the
    /// key (keys never live in the manifests).
    public struct ObjectStore: Sendable, Encodable, Hashable {
        public var proxy: Located<String>
        public var user: Located<String>
        /// Default `STACKLAB_SWIFT_KEY`.
        public var keyEnv: Located<String>?
        /// The reseller admin StackLab acts as on the tenants' accounts (their containers and quotas): a tempauth user
        /// with `.reseller_admin`, and its key's variable (default `STACKLAB_SWIFT_RESELLER_KEY`).
        public var reseller: Located<Reseller>?

        public struct Reseller: Sendable, Encodable, Hashable {
            public var user: Located<String>
            public var keyEnv: Located<String>?

            /// The key's variable in force.
            public var effectiveKeyEnv: String { keyEnv?.value ?? "STACKLAB_SWIFT_RESELLER_KEY" }
        }

        /// The key's variable in force.
        public var effectiveKeyEnv: String { keyEnv?.value ?? "STACKLAB_SWIFT_KEY" }

        static func keyVariable(_ d: ManifestDecoder) throws(YAMLError) -> Located<String>? {
            try d.parsed("keyEnv", expected: "an environment variable name", hint: "write e.g. STACKLAB_SWIFT_KEY") { text in
                !text.isEmpty && text.allSatisfy { $0 == "_" || ($0.isASCII && ($0.isUppercase || $0.isNumber)) } ? text : nil
            }
        }

        static func decode(from d: ManifestDecoder) throws(YAMLError) -> Located<ObjectStore>? {
            var proxy: Located<String>?, user: Located<String>?, keyEnv: Located<String>?, reseller: Located<Reseller>?
            guard let mapping = try d.mapping("'objectStore'", required: ["proxy", "user"], { key throws(YAMLError) in
                switch key.value {
                case "proxy":
                    proxy = try d.parsed("proxy", expected: "an http:// or https:// URL", hint: "write the Swift proxy's URL, e.g. http://10.0.0.1:8080") { text in
                        (text.hasPrefix("http://") || text.hasPrefix("https://")) && !text.contains(" ") ? String(text.trimmingSuffix("/")) : nil
                    }
                case "user": user = try d.string("user")
                case "keyEnv": keyEnv = try keyVariable(d)
                case "reseller":
                    var resellerUser: Located<String>?, resellerKey: Located<String>?
                    guard let inner = try d.mapping("'reseller'", required: ["user"], { key throws(YAMLError) in
                        switch key.value {
                        case "user": resellerUser = try d.string("user")
                        case "keyEnv": resellerKey = try keyVariable(d)
                        default: try d.unknownField(key, in: "'reseller'", known: ["user", "keyEnv"])
                        }
                    }), let resellerUser else { return }
                    reseller = Located(Reseller(user: resellerUser, keyEnv: resellerKey), at: d.location(inner.mark))
                default: try d.unknownField(key, in: "'objectStore'", known: ["proxy", "user", "keyEnv", "reseller"])
                }
            }), let proxy, let user else { return nil }
            return Located(ObjectStore(proxy: proxy, user: user, keyEnv: keyEnv, reseller: reseller), at: d.location(mapping.mark))
        }
    }

    /// The internal ranges in force.
    public var effectiveInternalRanges: [IPv4Network] {
        internalRanges?.value.map(\.value) ?? Self.privateRanges
    }

    /// RFC 1918's ranges, parsed once.
    static let privateRanges = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"].compactMap { try? IPv4Network.parse($0).get() }

    /// The CPU allocation ratio in force.
    public var effectiveCPURatio: Double { cpuAllocationRatio.map { Double($0.value.units) / 1e6 } ?? 16 }
    /// The RAM allocation ratio in force.
    public var effectiveRAMRatio: Double { ramAllocationRatio.map { Double($0.value.units) / 1e6 } ?? 1.5 }

    static func decode(from d: ManifestDecoder, what: @autoclosure () -> String) throws(YAMLError) -> RegionSpec? {
        var spec = RegionSpec()
        try d.mapping(what()) { key throws(YAMLError) in
            switch key.value {
            case "sponsor": spec.sponsor = try d.string("sponsor")
            case "description": spec.description = try d.string("description")
            case "environment": spec.environment = try d.choice("environment", Environment.self)
            case "cpuAllocationRatio": spec.cpuAllocationRatio = try d.positive(d.decimal("cpuAllocationRatio"), "cpuAllocationRatio")
            case "ramAllocationRatio": spec.ramAllocationRatio = try d.positive(d.decimal("ramAllocationRatio"), "ramAllocationRatio")
            case "maxDeleteShare": spec.maxDeleteShare = try d.decimal("maxDeleteShare")
            case "internalRanges": spec.internalRanges = try d.list("internalRanges") { () throws(YAMLError) in try d.cidr("internalRanges") }
            case "objectStore": spec.objectStore = try ObjectStore.decode(from: d)
            case "creditCheck": spec.creditCheck = try d.bool("creditCheck")
            case "publicDomains": spec.publicDomains = try PublicDomains.decode(from: d)
            case "alarmWebhooks":
                spec.alarmWebhooks = try d.list("alarmWebhooks") { () throws(YAMLError) in
                    try d.parsed("alarmWebhooks", expected: "a host name or host:port", hint: "write e.g. hooks.example.org or hooks.example.org:8443") { text in
                        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
                        let hostOK = PublicDomains.isDNSName(String(parts[0]), minimumLabels: 1) || IPv4Address(parsing: String(parts[0])) != nil
                        let portOK = parts.count == 1 || (parts.count == 2 && UInt16(parts[1]).map { $0 > 0 } == true)
                        return hostOK && portOK ? text.lowercased() : nil
                    }
                }
            default: try d.unknownField(key, in: what(), known: fields)
            }
        }
        return spec
    }
}

extension String {
    /// Itself without trailing `suffix`es.
    func trimmingSuffix(_ suffix: Character) -> Substring {
        var text = self[...]
        while text.last == suffix { text = text.dropLast() }
        return text
    }
}

extension ManifestDecoder {
    /// Passes `value` through if it is greater than zero; otherwise reports it.
    func positive(_ value: Located<FixedPoint>?, _ field: String) -> Located<FixedPoint>? {
        guard let value else { return nil }
        guard value.value.units > 0 else {
            report(.error("'\(field)' must be greater than zero", at: value.location))
            return nil
        }
        return value
    }
}
