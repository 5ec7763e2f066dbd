import Manifests
import Zlib

extension Ruleset {
    /// A ruleset's rules, packed: every rule's text and source one after the other in one UTF-8 buffer, and for each
    /// rule its chain, where its text and source end, and where its document is written.
    ///
    /// A compute node's ruleset holds several rules per instance (security groups, port bindings, traffic maps that
    /// name every port) and a long-running planner keeps each region's last plan, so a large cloud keeps hundreds of
    /// thousands of rules. As `Rule` values each costs two heap strings beside its fields (about 200 bytes); packed it
    /// costs its text and 20 bytes. A plan kept for later (`compacted()`) holds the buffer deflated: rules name the same
    /// ports, sets and sources over and over, so it shrinks several times.
    ///
    /// A rule is made as a `Rule` when the rules are read, front to back (a `Sequence`: reading inflates a deflated
    /// buffer once per pass, never once per rule). Comparing two rulesets' rules compares the buffers.
    public struct Rules: Sequence, Sendable, Hashable, Codable {
        /// Each rule's text, then its source; deflated (zlib) when `deflated`.
        private var bytes: [UInt8] = []
        private var deflated = false
        private var entries: [Entry] = []

        fileprivate struct Entry: Hashable, Sendable {
            var chain: Chain
            /// Where the rule's text and its source end in the buffer (its text begins where the rule before ends).
            var textEnd: UInt32
            var end: UInt32
            /// `Rule.file` and `Rule.line`; `UInt32.max` and `Int32.min` for none.
            var file: UInt32
            var line: Int32
        }

        /// No rules.
        public init() {}

        /// `rules`, in their order.
        public init<Rules: Sequence>(_ rules: Rules) where Rules.Element == Rule {
            for rule in rules { append(rule) }
        }

        /// Adds `rule` at the end.
        public mutating func append(_ rule: Rule) {
            if deflated { self = Rules(self) }
            bytes.append(contentsOf: rule.text.utf8)
            let textEnd = Self.offset(bytes.count)
            bytes.append(contentsOf: rule.source.utf8)
            entries.append(Entry(chain: rule.chain, textEnd: textEnd, end: Self.offset(bytes.count), file: rule.file ?? .max, line: rule.line ?? .min))
        }

        /// An offset into the buffer. A ruleset is a file `nft` loads in one transaction and StackLab reads whole: one of
        /// 4 GiB is never rendered or read.
        private static func offset(_ count: Int) -> UInt32 {
            guard let offset = UInt32(exactly: count) else { preconditionFailure("a ruleset of \(count) bytes: more than 4 GiB of rules") }
            return offset
        }

        /// How many rules.
        public var count: Int { entries.count }
        public var isEmpty: Bool { entries.isEmpty }
        public var underestimatedCount: Int { entries.count }

        /// The buffer as it is read: inflated when it is kept deflated.
        private var plain: [UInt8] {
            deflated ? Zlib.unkept(bytes, count: Int(entries.last?.end ?? 0), what: "a ruleset's rules") : bytes
        }

        public struct Iterator: IteratorProtocol {
            fileprivate let bytes: [UInt8]
            fileprivate let entries: [Entry]
            fileprivate var position = 0

            public mutating func next() -> Rule? {
                guard position < entries.count else { return nil }
                defer { position += 1 }
                let entry = entries[position]
                let start = position == 0 ? 0 : Int(entries[position - 1].end)
                return bytes.withUnsafeBufferPointer { buffer in
                    Rule(entry.chain, String(decoding: UnsafeBufferPointer(rebasing: buffer[start..<Int(entry.textEnd)]), as: UTF8.self),
                         source: String(decoding: UnsafeBufferPointer(rebasing: buffer[Int(entry.textEnd)..<Int(entry.end)]), as: UTF8.self),
                         file: entry.file == .max ? nil : entry.file, line: entry.line == .min ? nil : entry.line)
                }
            }
        }

        public func makeIterator() -> Iterator {
            Iterator(bytes: plain, entries: entries)
        }

        /// The chain of the rule at `position` (0 ..< `count`), without making the rule.
        public func chain(at position: Int) -> Chain {
            entries[position].chain
        }

        /// Whether these are `other`'s rules in chain, text and source, in the same order (where a rule is written is not
        /// installed, so it is not compared).
        public func installsAs(_ other: Rules) -> Bool {
            entries.count == other.entries.count
                && zip(entries, other.entries).allSatisfy { $0.chain == $1.chain && $0.textEnd == $1.textEnd && $0.end == $1.end }
                && sameText(as: other)
        }

        /// Whether the buffers hold the same text: compared as kept when both are kept alike (deflating is a function
        /// of the text: equal texts deflate to equal bytes), inflated otherwise.
        private func sameText(as other: Rules) -> Bool {
            deflated == other.deflated ? bytes == other.bytes : plain == other.plain
        }

        public static func == (lhs: Rules, rhs: Rules) -> Bool {
            lhs.entries == rhs.entries && lhs.sameText(as: rhs)
        }

        public func hash(into hasher: inout Hasher) {
            hasher.combine(entries)
            hasher.combine(plain)
        }

        /// Whether these rules and `other` are one value (the same buffers), as a planner that keeps a node's observed
        /// rules finds them while the node is unchanged. The caller holds the earlier rules, so their storage cannot
        /// have been reused.
        public func sharesStorage(with other: Rules) -> Bool {
            deflated == other.deflated && bytes.sharesStorage(with: other.bytes) && entries.sharesStorage(with: other.entries)
        }

        /// These rules as a plan kept for later holds them: the buffer deflated when that makes it smaller (not for a
        /// ruleset of a few rules).
        public func compacted() -> Rules {
            guard !deflated, let packed = Zlib.kept(bytes) else { return self }
            var compacted = self
            compacted.bytes = packed
            compacted.deflated = true
            return compacted
        }

        /// The rules sorted by chain, in `Chain` order, each chain's in the order they were in.
        func sortedByChain() -> Rules {
            guard zip(entries, entries.dropFirst()).contains(where: { $1.chain < $0.chain }) else { return self }
            let bytes = plain
            var sorted = Rules()
            sorted.bytes.reserveCapacity(bytes.count)
            sorted.entries.reserveCapacity(entries.count)
            for chain in Chain.allCases {
                for position in entries.indices where entries[position].chain == chain {
                    var entry = entries[position]
                    let start = position == 0 ? 0 : Int(entries[position - 1].end)
                    let shift = Int64(sorted.bytes.count) - Int64(start)
                    sorted.bytes.append(contentsOf: bytes[start..<Int(entry.end)])
                    entry.textEnd = UInt32(Int64(entry.textEnd) + shift)
                    entry.end = UInt32(Int64(entry.end) + shift)
                    sorted.entries.append(entry)
                }
            }
            return sorted
        }

        /// Read as the list of rules (`[Rule]`), as a ruleset was always written.
        public init(from decoder: any Decoder) throws {
            self.init(try [Rule](from: decoder))
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.unkeyedContainer()
            for rule in self { try container.encode(rule) }
        }
    }
}

extension Ruleset {
    /// A ruleset's traffic counters, sorted by name and packed: each instance port once, and for each counter which port
    /// and which direction and scope. A node counts four per instance; as `TrafficCounter` values each would repeat its
    /// instance's address and port (about 80 bytes), packed the four share them. A plan kept for later
    /// (`compacted()`) holds them as text, deflated; they are read front to back (a `Sequence`), so a pass inflates
    /// once.
    public struct Counters: Sequence, Sendable, Hashable, Codable {
        private var ports: [Port] = []
        private var entries: [Entry] = []
        /// When compacted: `ports` and `entries` are empty, and the counters are here.
        private var kept: Kept?

        private struct Port: Hashable, Sendable {
            var instance: Address
            var port: String
        }

        private struct Entry: Hashable, Sendable {
            var port: UInt32
            var direction: TrafficCounter.Direction
            var scope: TrafficCounter.Scope
        }

        /// Every counter as a line `<instance> <port> <direction> <scope>`, in order, deflated (`Zlib.kept`).
        private struct Kept: Hashable, Sendable {
            var bytes: [UInt8]
            /// The text's size in bytes.
            var size: Int
            /// How many counters.
            var count: Int
        }

        /// No counters.
        public init() {}

        /// `counters`, sorted by name.
        public init(_ counters: [TrafficCounter]) {
            entries.reserveCapacity(counters.count)
            for counter in counters.sorted() {
                let port = Port(instance: counter.instance, port: counter.port)
                if ports.last != port { ports.append(port) }
                entries.append(Entry(port: UInt32(ports.count - 1), direction: counter.direction, scope: counter.scope))
            }
        }

        /// How many counters (without inflating kept ones).
        public var count: Int { kept?.count ?? entries.count }
        public var isEmpty: Bool { count == 0 }
        /// Whether they are kept deflated.
        var isCompacted: Bool { kept != nil }

        /// Reads the counters in order.
        public struct Iterator: IteratorProtocol {
            fileprivate let counters: Counters
            fileprivate var position = 0

            public mutating func next() -> TrafficCounter? {
                guard position < counters.entries.count else { return nil }
                defer { position += 1 }
                let entry = counters.entries[position], port = counters.ports[Int(entry.port)]
                return TrafficCounter(instance: port.instance, port: port.port, direction: entry.direction, scope: entry.scope)
            }
        }

        public func makeIterator() -> Iterator { Iterator(counters: plain) }

        public var underestimatedCount: Int { count }

        /// These counters as they are read: inflated when they are kept deflated.
        private var plain: Counters {
            guard let kept else { return self }
            let text = String(decoding: Zlib.unkept(kept.bytes, count: kept.size, what: "a ruleset's counters"), as: UTF8.self)
            let counters = text.split(separator: "\n").map { line -> TrafficCounter in
                let words = line.split(separator: " ")
                guard words.count == 4, let instance = Address(parsing: String(words[0])), let direction = TrafficCounter.Direction(rawValue: String(words[2])),
                      let scope = TrafficCounter.Scope(rawValue: String(words[3])) else {
                    preconditionFailure("a ruleset's counters kept deflated read back a line that is not a counter: \(line)")
                }
                return TrafficCounter(instance: instance, port: String(words[1]), direction: direction, scope: scope)
            }
            return Counters(counters)
        }

        /// These counters as a plan kept for later holds them: as text, deflated, when that makes them smaller.
        public func compacted() -> Counters {
            guard kept == nil, !entries.isEmpty else { return self }
            var text = ""
            for counter in self { text += "\(counter.instance) \(counter.port) \(counter.direction.rawValue) \(counter.scope.rawValue)\n" }
            let bytes = Array(text.utf8)
            guard let packed = Zlib.kept(bytes) else { return self }
            var compacted = Counters()
            compacted.kept = Kept(bytes: packed, size: bytes.count, count: entries.count)
            return compacted
        }

        public static func == (lhs: Counters, rhs: Counters) -> Bool {
            switch (lhs.kept, rhs.kept) {
            case (nil, nil): lhs.ports == rhs.ports && lhs.entries == rhs.entries
            // Equal counters make equal text, and equal text deflates to equal bytes.
            case (let left?, let right?): left == right
            default: lhs.count == rhs.count && lhs.plain == rhs.plain
            }
        }

        public func hash(into hasher: inout Hasher) {
            let plain = plain
            hasher.combine(plain.ports)
            hasher.combine(plain.entries)
        }

        /// Read as the list of counters (`[TrafficCounter]`), as a ruleset was always written.
        public init(from decoder: any Decoder) throws {
            self.init(try [TrafficCounter](from: decoder))
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.unkeyedContainer()
            for counter in self { try container.encode(counter) }
        }
    }
}
