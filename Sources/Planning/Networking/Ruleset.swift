import Manifests

/// A compute node's nftables ruleset: StackLab's own tables (`ip stacklab` for routing, NAT and the SWS filter, `bridge
/// stacklab` for what may enter the bridges from each instance port), one rule per line, each with a comment naming
/// what it comes from. Loaded atomically (both tables are declared, deleted and declared again in one `nft -f`
/// transaction), so a node never runs half a ruleset.
public struct Ruleset: Sendable, Codable, Hashable {
    /// The tables' name, in the `ip` and `bridge` families.
    public static let table = "stacklab"

    /// The families StackLab keeps a table in, in the order they are written.
    public enum Family: String, Sendable, CaseIterable {
        case ip, bridge
    }

    /// The base chains StackLab hooks, in the order they are written.
    public enum Chain: String, Sendable, Codable, CaseIterable, Comparable {
        case forward, input, prerouting, output, postrouting
        /// Frames entering a bridge from a port (the instance ports' anti-spoofing).
        case ports
        /// What each instance port sends and receives, counted (bandwidth billing): frames that passed `ports`, and
        /// frames leaving the bridge through a port.
        case trafficOut = "traffic-out", trafficIn = "traffic-in"

        /// The table it lives in.
        public var family: Family {
            switch self {
            case .forward, .input, .prerouting, .output, .postrouting: .ip
            case .ports, .trafficOut, .trafficIn: .bridge
            }
        }

        /// The chain's `type … hook … priority …` line. The filter chains run just before the default priority, so
        /// nothing another table (libvirt's) accepts first gets around them.
        var declaration: String {
            switch self {
            case .forward: "type filter hook forward priority filter - 10; policy accept;"
            case .input: "type filter hook input priority filter - 10; policy accept;"
            case .prerouting: "type nat hook prerouting priority dstnat; policy accept;"
            case .output: "type nat hook output priority -100; policy accept;"
            case .postrouting: "type nat hook postrouting priority srcnat; policy accept;"
            case .ports: "type filter hook prerouting priority filter - 10; policy accept;"
            case .trafficOut: "type filter hook prerouting priority filter; policy accept;"
            case .trafficIn: "type filter hook postrouting priority filter; policy accept;"
            }
        }

        public static func < (lhs: Chain, rhs: Chain) -> Bool { allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)! }
    }

    /// One rule and where it comes from.
    public struct Rule: Sendable, Codable, Hashable, CustomStringConvertible {
        /// Its chain.
        public var chain: Chain
        /// The rule as nft reads it, without its comment.
        public var text: String
        /// The document it comes from (`securitygroup/devops/web#1`, `filter/sws-internal#2`, `region/sina`), its comment.
        public var source: String
        /// Where that document (or rule) is written: file index and line, when known (not read back from a node). Not
        /// encoded: a file index means something only to the load that made it, and a plan outlives it.
        public var file: UInt32?
        public var line: Int32?

        private enum CodingKeys: String, CodingKey { case chain, text, source }

        /// Creates a rule.
        public init(_ chain: Chain, _ text: String, source: String, at location: SourceLocation? = nil) {
            self.chain = chain
            self.text = text
            self.source = source
            file = location?.file.index
            line = location?.line
        }

        /// `chain: text` — what a plan's diff shows and compares.
        public var description: String { "\(chain.rawValue): \(text)" }

        /// Its line in the nft file.
        var nft: String { "\(text) comment \"\(source)\"" }

        /// For a floating IP's DNAT rule (`prerouting`: `ip daddr F dnat to X`, its comment naming the FloatingIP): the
        /// FloatingIP and its public address; nil for every other rule. A ruleset read back from a node is text, and
        /// this is the one place where such a rule is read as a binding.
        public var floatingBinding: (floatingIP: Address, ip: IPv4Address)? {
            guard chain == .prerouting, let address = Address(parsing: source), address.kind == .floatingIP else { return nil }
            let words = text.split(separator: " ")
            guard words.count == 6, words[0] == "ip", words[1] == "daddr", let ip = IPv4Address(parsing: words[2]) else { return nil }
            return (address, ip)
        }
    }

    /// The node it is for.
    public var node: Address
    /// The rules, chain by chain in `Chain` order, each chain in evaluation order.
    public var rules: [Rule]
    /// The named traffic counters the rules of `trafficOut` and `trafficIn` count into, by name.
    public var counters: [TrafficCounter]
    /// Read back from a node: the digest StackLab wrote beside the rules when it installed them. Rules that no longer
    /// match it were changed by hand.
    public var recordedDigest: String?

    /// Creates a ruleset.
    public init(node: Address, rules: [Rule], counters: [TrafficCounter] = [], recordedDigest: String? = nil) {
        self.recordedDigest = recordedDigest
        self.node = node
        self.counters = counters.sorted()
        self.rules = rules.enumerated().sorted { ($0.element.chain, $0.offset) < ($1.element.chain, $1.offset) }.map(\.element)
    }

    /// A digest of the rules as loaded (text and comments, in order).
    public var digest: String {
        var hasher = StableHasher()
        for rule in rules { hasher.combine(rule.chain.rawValue); hasher.combine(rule.nft) }
        for counter in counters { hasher.combine(counter.name); hasher.combine(counter.comment) }
        return hasher.hex
    }

    /// The file `nft -f` loads: replaces StackLab's rules in one transaction and touches no other table. The `ip` table
    /// is deleted and declared again; the `bridge` table is flushed (its rules go) and declared again, so the traffic
    /// counters it holds carry on across reloads (see `TrafficReading`).
    public var nft: String {
        var text = "#!/usr/sbin/nft -f\n# StackLab firewall of \(node) (managed by StackLab: a hand edit is drift, and is undone)\n"
        for family in Family.allCases {
            text += "table \(family.rawValue) \(Self.table)\n\(family == .bridge ? "flush" : "delete") table \(family.rawValue) \(Self.table)\n"
        }
        for family in Family.allCases {
            text += "table \(family.rawValue) \(Self.table) {\n"
            if family == .ip { text += "\tcomment \"stacklab \(node) \(digest)\"\n" }
            if family == .bridge {
                for counter in counters { text += "\tcounter \(counter.name) { comment \"\(counter.comment)\" }\n" }
            }
            for chain in Chain.allCases where chain.family == family {
                text += "\tchain \(chain.rawValue) {\n\t\t\(chain.declaration)\n"
                for rule in rules where rule.chain == chain { text += "\t\t\(rule.nft)\n" }
                text += "\t}\n"
            }
            text += "}\n"
        }
        return text
    }

    /// The shell command that lists what the kernel holds of StackLab's tables (what drift is judged by): rules and
    /// chains, without the counters' values (`-s`) or the counter objects (a rule's counter cannot be deleted while a
    /// rule counts into it; one no rule uses is the meter's to delete once it has read it).
    public static var listing: String {
        "{ " + Family.allCases.map { "nft -s list table \($0.rawValue) \(table) 2>/dev/null; " }.joined() + "} | sed '/^\\tcounter .* {$/,/^\\t}$/d'"
    }

    /// The shell command that removes StackLab's tables from the kernel.
    public static var removal: String {
        Family.allCases.map { "{ nft list table \($0.rawValue) \(table) >/dev/null 2>&1 && nft delete table \($0.rawValue) \(table); }" }.joined(separator: "; ")
    }

    /// Reads back a file `nft` wrote (an installed ruleset); nil when it is not one of StackLab's.
    public init?(parsing text: String) {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: true).makeIterator()
        var node: Address?
        var rules: [Rule] = []
        var chain: Chain?
        var recordedDigest: String?
        var counters: [TrafficCounter] = []
        while let raw = lines.next() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("comment \"stacklab ") {
                let words = line.dropFirst("comment \"stacklab ".count).dropLast().split(separator: " ")
                node = words.first.flatMap { Address(parsing: String($0)) }
                recordedDigest = words.count > 1 ? String(words[1]) : nil
            } else if chain == nil, line.hasPrefix("counter "), let open = line.range(of: "{ comment \""), line.hasSuffix("\" }"),
                      let counter = TrafficCounter(comment: String(line[open.upperBound...].dropLast(3))) {
                counters.append(counter)
            } else if line.hasPrefix("chain "), line.hasSuffix("{") {
                chain = Chain(rawValue: line.dropFirst("chain ".count).dropLast().trimmingCharacters(in: .whitespaces))
            } else if line == "}" {
                chain = nil
            } else if let chain, !line.hasPrefix("type "), let comment = line.range(of: " comment \"", options: .backwards), line.hasSuffix("\"") {
                rules.append(Rule(chain, String(line[..<comment.lowerBound]), source: String(line[comment.upperBound...].dropLast())))
            }
        }
        guard let node else { return nil }
        self.node = node
        self.rules = rules
        self.counters = counters.sorted()
        self.recordedDigest = recordedDigest
    }

    /// What changes from `old` to this ruleset, rule by rule (`+ forward: …`, `- input: …`), in chain order.
    public func diff(from old: Ruleset?) -> [Change.FieldChange] {
        let before = old?.rules ?? []
        let was = Set(before.map(\.nft))
        let now = Set(rules.map(\.nft))
        var fields = before.filter { !now.contains($0.nft) }.map { Change.FieldChange(field: "- rule", old: "\($0) (\($0.source))", new: "") }
        fields += rules.filter { !was.contains($0.nft) }.map { Change.FieldChange(field: "+ rule", old: "", new: "\($0) (\($0.source))") }
        if fields.isEmpty, let old, old.rules.map(\.nft) != rules.map(\.nft) {
            fields.append(.init(field: "rule order", old: "as installed", new: "as rendered"))
        }
        return fields
    }
}
