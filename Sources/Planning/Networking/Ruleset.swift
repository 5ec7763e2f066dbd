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
            self.init(chain, text, source: source, file: location?.file.index, line: location?.line)
        }

        init(_ chain: Chain, _ text: String, source: String, file: UInt32?, line: Int32?) {
            self.chain = chain
            self.text = text
            self.source = source
            self.file = file
            self.line = line
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
    public var rules: Rules
    /// The named traffic counters the rules of `trafficOut` and `trafficIn` count into, by name.
    public var counters: Counters
    /// Read back from a node: the digest StackLab wrote beside the rules when it installed them. Rules that no longer
    /// match it were changed by hand.
    public var recordedDigest: String?

    /// Creates a ruleset.
    public init(node: Address, rules: [Rule], counters: [TrafficCounter] = [], recordedDigest: String? = nil) {
        self.recordedDigest = recordedDigest
        self.node = node
        self.counters = Counters(counters)
        self.rules = Rules(rules).sortedByChain()
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
    ///
    /// Every node is observed after each apply, so this runs once per node per run: a file in ASCII without carriage
    /// returns (every file StackLab writes, and most hand edits) is read a byte at a time; anything else a Character
    /// at a time, with the same result (`RulesetTests` holds the two equal).
    public init?(parsing text: String) {
        var text = text
        let ascii: Ruleset?? = text.withUTF8 { bytes in
            bytes.allSatisfy { $0 < 0x80 && $0 != 0x0D } ? .some(Self(parsingASCII: bytes)) : .none
        }
        switch ascii {
        case .some(let parsed?): self = parsed
        case .some(nil): return nil
        case .none:
            guard let parsed = Self(parsingCharacters: text) else { return nil }
            self = parsed
        }
    }

    /// `init(parsing:)` for ASCII text without carriage returns.
    init?(parsingASCII bytes: UnsafeBufferPointer<UInt8>) {
        func text(_ range: Range<Int>) -> String { String(decoding: UnsafeBufferPointer(rebasing: bytes[range]), as: UTF8.self) }
        func has(_ literal: StaticString, at offset: Int, in range: Range<Int>) -> Bool {
            let count = literal.utf8CodeUnitCount
            guard offset >= range.lowerBound, offset + count <= range.upperBound else { return false }
            for index in 0..<count where bytes[offset + index] != literal.utf8Start[index] { return false }
            return true
        }
        func find(_ literal: StaticString, in range: Range<Int>, last: Bool) -> Int? {
            let count = literal.utf8CodeUnitCount
            guard range.count >= count else { return nil }
            let starts = range.lowerBound...(range.upperBound - count)
            return last ? starts.reversed().first { has(literal, at: $0, in: range) } : starts.first { has(literal, at: $0, in: range) }
        }
        var node: Address?
        var rules: [Rule] = []
        var chain: Chain?
        var recordedDigest: String?
        var counters: [TrafficCounter] = []
        var start = 0
        while start < bytes.count {
            var end = start
            while end < bytes.count, bytes[end] != 0x0A { end += 1 }
            var lower = start, upper = end
            while lower < upper, bytes[lower] == 0x20 || bytes[lower] == 0x09 { lower += 1 }
            while upper > lower, bytes[upper - 1] == 0x20 || bytes[upper - 1] == 0x09 { upper -= 1 }
            let line = lower..<upper
            start = end + 1
            guard !line.isEmpty else { continue }
            if has("comment \"stacklab ", at: lower, in: line) {
                let words = text((lower + 18)..<max(lower + 18, upper - 1)).split(separator: " ")
                node = words.first.flatMap { Address(parsing: String($0)) }
                recordedDigest = words.count > 1 ? String(words[1]) : nil
            } else if chain == nil, has("counter ", at: lower, in: line), let open = find("{ comment \"", in: line, last: false),
                      has("\" }", at: upper - 3, in: line),
                      let counter = TrafficCounter(comment: text((open + 11)..<max(open + 11, upper - 3))) {
                counters.append(counter)
            } else if has("chain ", at: lower, in: line), bytes[upper - 1] == UInt8(ascii: "{") {
                var nameLower = lower + 6, nameUpper = upper - 1
                while nameLower < nameUpper, bytes[nameLower] == 0x20 || bytes[nameLower] == 0x09 { nameLower += 1 }
                while nameUpper > nameLower, bytes[nameUpper - 1] == 0x20 || bytes[nameUpper - 1] == 0x09 { nameUpper -= 1 }
                chain = nameLower <= nameUpper ? Chain(rawValue: text(nameLower..<nameUpper)) : nil
            } else if line.count == 1, bytes[lower] == UInt8(ascii: "}") {
                chain = nil
            } else if let chain, !has("type ", at: lower, in: line), let comment = find(" comment \"", in: line, last: true),
                      bytes[upper - 1] == UInt8(ascii: "\"") {
                rules.append(Rule(chain, text(lower..<comment), source: text((comment + 10)..<max(comment + 10, upper - 1))))
            }
        }
        guard let node else { return nil }
        self.node = node
        self.rules = Rules(rules)
        self.counters = Counters(counters)
        self.recordedDigest = recordedDigest
    }

    /// `init(parsing:)` for any text, a Character at a time (lines with other whitespace or line breaks than a
    /// generated file has).
    init?(parsingCharacters text: String) {
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
        self.rules = Rules(rules)
        self.counters = Counters(counters)
        self.recordedDigest = recordedDigest
    }

    /// Whether this ruleset's rules are `other`'s: the same chains, texts and sources in the same order (where a rule is
    /// written is not installed, so it is not compared).
    public func hasRules(of other: Ruleset) -> Bool {
        rules.installsAs(other.rules)
    }

    /// What changes from `old` to this ruleset, rule by rule (`+ forward: …`, `- input: …`), in chain order.
    public func diff(from old: Ruleset?) -> [Change.FieldChange] {
        let before = old?.rules ?? Rules()
        let was = Set(before.map(\.nft))
        let now = Set(rules.map(\.nft))
        var fields = before.filter { !now.contains($0.nft) }.map { Change.FieldChange(field: "- rule", old: "\($0) (\($0.source))", new: "") }
        fields += rules.filter { !was.contains($0.nft) }.map { Change.FieldChange(field: "+ rule", old: "", new: "\($0) (\($0.source))") }
        if fields.isEmpty, let old, !old.rules.map(\.nft).elementsEqual(rules.map(\.nft)) {
            fields.append(.init(field: "rule order", old: "as installed", new: "as rendered"))
        }
        return fields
    }
}
