import Manifests
@testable import Planning
import TestSupport
import Testing

/// An installed ruleset is read back on every observation, a byte at a time when it is ASCII without carriage
/// returns. That reading must equal the Character-at-a-time one for every text: a rendered ruleset, and seeded
/// edits of it of the kind a hand edit or a torn file makes.
@Suite struct RulesetParsingTests {
    static let node = Address(kind: .node, region: "lab", name: "lab-1")

    static func ruleset() -> Ruleset {
        let vm = Address(kind: .instance, region: "lab", tenant: "acme", name: "vm-1")
        var rules: [Ruleset.Rule] = []
        for port in 0..<6 {
            rules.append(.init(.forward, "iifname \"vnet\(port)\" ip saddr != 10.0.0.\(port + 2) drop", source: "\(vm) anti-spoofing"))
            rules.append(.init(.input, "iifname \"vnet\(port)\" tcp dport 22 accept", source: "securitygroup/lab/acme/ssh rule \(port)"))
        }
        rules.append(.init(.postrouting, "ip saddr 10.0.0.0/24 oifname \"eth0\" masquerade", source: "network/lab/private"))
        rules.append(.init(.prerouting, "ip daddr 192.0.2.10 dnat to 10.0.0.2", source: "floatingip/lab/acme/fip-1"))
        let counters = TrafficCounter.Direction.allCases.flatMap { direction in
            TrafficCounter.Scope.allCases.map { TrafficCounter(instance: vm, direction: direction, scope: $0) }
        }
        return Ruleset(node: node, rules: rules, counters: counters)
    }

    @Test func aRenderedRulesetReadsBackTheSameEitherWay() throws {
        let ruleset = Self.ruleset()
        let parsed = try #require(Ruleset(parsing: ruleset.nft))
        #expect(parsed.rules == ruleset.rules)
        #expect(parsed.counters == ruleset.counters)
        #expect(parsed.recordedDigest == ruleset.digest)
        #expect(parsed == Ruleset(parsingCharacters: ruleset.nft))
    }

    @Test func editedTextsReadTheSameEitherWay() {
        let text = Array(Self.ruleset().nft.utf8)
        let pieces = [" ", "\t", "\n", "}", "{", "\"", " comment \"", "{ comment \"", "\" }", "chain ", "type ", "counter ",
                      "comment \"stacklab ", "x", "#"].map { Array($0.utf8) }
        var random = SeededGenerator(seed: 43)
        var differing: [String] = []
        for _ in 0..<3_000 {
            var bytes = text
            for _ in 0..<(1 + Int(random.next() % 4)) {
                let at = Int(random.next() % UInt64(bytes.count + 1))
                if random.next() % 3 == 0, at < bytes.count {
                    bytes.removeSubrange(at..<min(bytes.count, at + Int(random.next() % 12)))
                } else {
                    bytes.insert(contentsOf: pieces[Int(random.next() % UInt64(pieces.count))], at: at)
                }
            }
            let edited = String(decoding: bytes, as: UTF8.self)
            if Ruleset(parsing: edited) != Ruleset(parsingCharacters: edited) { differing.append(edited) }
        }
        #expect(differing.isEmpty, "\(differing.count) texts read differently; first:\n\(differing.first ?? "")")
    }
}
