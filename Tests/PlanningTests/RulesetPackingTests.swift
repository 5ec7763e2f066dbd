import Foundation
import Manifests
@testable import Planning
import TestSupport
import Testing

/// A ruleset keeps its rules and counters packed (`Ruleset.Rules`, `Ruleset.Counters`). Packed, they must read,
/// order, compare and encode exactly as the lists they were made from: random lists (texts of every length, sources
/// and places that repeat or not, non-ASCII text) are packed and checked against the plain lists.
@Suite struct RulesetPackingTests {
    static let node = Address(kind: .node, region: "lab", name: "lab-1")
    static let words = ["ip daddr 10.0.0.2", "tcp dport 22", "accept", "drop", "", "counter name iifname map { \"sl-a\" : \"sl-a-out-public\" }",
                        "comment", "é→ü", "{ 10.0.0.0/8, 172.16.0.0/12 }", "\"quoted\""]

    static func rules(_ count: Int, _ random: inout SeededGenerator) -> [Ruleset.Rule] {
        (0..<count).map { _ in
            let chain = Ruleset.Chain.allCases[Int(random.next() % UInt64(Ruleset.Chain.allCases.count))]
            let text = (0..<Int(random.next() % 4)).map { _ in words[Int(random.next() % UInt64(words.count))] }.joined(separator: " ")
            let source = random.next() % 5 == 0 ? "" : "securitygroup/t\(random.next() % 3)/web#\(random.next() % 3)"
            var rule = Ruleset.Rule(chain, text, source: source)
            if random.next() % 2 == 0 {
                rule.file = UInt32(random.next() % 7)
                rule.line = Int32(random.next() % 500)
            }
            return rule
        }
    }

    @Test func packedRulesReadBackAsTheListInChainOrder() {
        var random = SeededGenerator(seed: 7)
        for round in 0..<300 {
            let list = Self.rules(Int(random.next() % 40), &random)
            let ruleset = Ruleset(node: Self.node, rules: list)
            // The order a ruleset always had: by chain, each chain's rules as given.
            let expected = list.enumerated().sorted { ($0.element.chain, $0.offset) < ($1.element.chain, $1.offset) }.map(\.element)
            #expect(Array(ruleset.rules) == expected, "round \(round)")
            #expect(ruleset.rules.count == list.count)
            #expect(Array(Ruleset.Rules(list)) == list, "packing alone keeps the order")
            for position in 0..<ruleset.rules.count { #expect(ruleset.rules.chain(at: position) == expected[position].chain) }
        }
    }

    @Test func rulesInstallAsOthersExactlyWhenChainTextAndSourceAreEqual() {
        var random = SeededGenerator(seed: 11)
        var equalPairs = 0
        for round in 0..<600 {
            let first = Self.rules(Int(random.next() % 6), &random)
            // Half the time the same rules, placed elsewhere or with one rule's text, source or chain changed.
            var second = random.next() % 2 == 0 ? first : Self.rules(Int(random.next() % 6), &random)
            if !second.isEmpty, random.next() % 2 == 0 {
                let index = Int(random.next() % UInt64(second.count))
                switch random.next() % 4 {
                case 0: second[index].text += "x"
                case 1: second[index].source = "x" + second[index].source
                case 2: second[index].chain = second[index].chain == .forward ? .input : .forward
                default: second[index].line = 999
                }
            }
            let plain = first.count == second.count && zip(first, second).allSatisfy { $0.chain == $1.chain && $0.text == $1.text && $0.source == $1.source }
            if plain { equalPairs += 1 }
            #expect(Ruleset.Rules(first).installsAs(Ruleset.Rules(second)) == plain, "round \(round)")
            #expect((Ruleset.Rules(first) == Ruleset.Rules(second)) == (first == second), "equality still counts where rules are written")
        }
        #expect(equalPairs > 100, "the random pairs compare equal often enough to test it")
    }

    @Test func packedRulesAndCountersEncodeAsTheirLists() throws {
        var random = SeededGenerator(seed: 3)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        for _ in 0..<50 {
            let list = Self.rules(Int(random.next() % 12), &random)
            let counters = (0..<Int(random.next() % 5)).flatMap { index in
                TrafficCounter.Direction.allCases.flatMap { direction in
                    TrafficCounter.Scope.allCases.map {
                        TrafficCounter(instance: Address(kind: .instance, region: "lab", tenant: "t\(index % 2)", name: "vm-\(index)"), direction: direction, scope: $0)
                    }
                }
            }.shuffled(using: &random)
            let packed = Ruleset.Rules(list)
            #expect(try encoder.encode(packed) == encoder.encode(list))
            #expect(try JSONDecoder().decode(Ruleset.Rules.self, from: encoder.encode(list)) == Ruleset.Rules(list.map {
                Ruleset.Rule($0.chain, $0.text, source: $0.source)  // where a rule is written is not encoded
            }))
            let packedCounters = Ruleset.Counters(counters)
            #expect(Array(packedCounters) == counters.sorted())
            #expect(try encoder.encode(packedCounters) == encoder.encode(counters.sorted()))
            #expect(try JSONDecoder().decode(Ruleset.Counters.self, from: encoder.encode(counters)) == packedCounters)
        }
    }

    @Test func rulesShareStorageOnlyAsOneValue() {
        var random = SeededGenerator(seed: 5)
        let rules = Ruleset.Rules(Self.rules(10, &random))
        let copy = rules
        #expect(copy.sharesStorage(with: rules))
        #expect(!Ruleset.Rules(Array(rules)).sharesStorage(with: rules), "equal rules packed again are another value")
        #expect(Ruleset.Rules(Array(rules)) == rules)
    }

    @Test func compactedRulesReadCompareAndEncodeAsThePlainOnes() throws {
        var random = SeededGenerator(seed: 13)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var deflatedSeen = 0
        for round in 0..<200 {
            // Long enough to be deflated most of the time; sometimes too short (kept plain).
            let list = Self.rules(Int(random.next() % 120), &random)
            let plain = Ruleset.Rules(list)
            let compacted = plain.compacted()
            if !compacted.sharesStorage(with: plain) { deflatedSeen += 1 }
            #expect(Array(compacted) == list, "round \(round)")
            #expect(compacted == plain && plain == compacted)
            #expect(compacted.hashValue == plain.hashValue)
            #expect(compacted.installsAs(plain) && plain.installsAs(compacted))
            #expect(compacted.count == plain.count && compacted.isEmpty == plain.isEmpty)
            #expect(try encoder.encode(compacted) == encoder.encode(plain))
            #expect(compacted.compacted().sharesStorage(with: compacted), "compacting twice changes nothing")
            var grown = compacted
            grown.append(.init(.input, "accept", source: "x"))
            #expect(Array(grown) == list + [.init(.input, "accept", source: "x")], "a compacted list still grows")
            // A different list compacted compares unequal to this one, compacted or not.
            var other = list
            if !other.isEmpty {
                other[other.count / 2].text += " drop"
                #expect(Ruleset.Rules(other).compacted() != compacted && !Ruleset.Rules(other).compacted().installsAs(plain))
            }
        }
        #expect(deflatedSeen > 100, "most lists were long enough to deflate")
    }

    static func counters(_ instances: Int, _ random: inout SeededGenerator) -> [TrafficCounter] {
        (0..<instances).flatMap { index in
            TrafficCounter.Direction.allCases.flatMap { direction in
                TrafficCounter.Scope.allCases.map {
                    TrafficCounter(instance: Address(kind: .instance, region: "lab", tenant: "t\(random.next() % 3)", name: "vm-\(index)"), direction: direction, scope: $0)
                }
            }
        }.shuffled(using: &random)
    }

    @Test func compactedCountersReadCompareAndEncodeAsThePlainOnes() throws {
        var random = SeededGenerator(seed: 19)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var deflatedSeen = 0
        for round in 0..<100 {
            let list = Self.counters(Int(random.next() % 30), &random)
            let plain = Ruleset.Counters(list)
            let compacted = plain.compacted()
            if compacted.isCompacted { deflatedSeen += 1 }
            #expect(Array(compacted) == list.sorted(), "round \(round)")
            #expect(compacted == plain && plain == compacted)
            #expect(compacted.hashValue == plain.hashValue)
            #expect(compacted.count == list.count && compacted.isEmpty == list.isEmpty)
            #expect(try encoder.encode(compacted) == encoder.encode(plain))
            #expect(compacted.compacted() == compacted)
            let ruleset = Ruleset(node: Self.node, rules: [], counters: list)
            var kept = ruleset
            kept.counters = compacted
            #expect(kept.nft == ruleset.nft && kept.digest == ruleset.digest)
            // Other counters compacted compare unequal to these, compacted or not.
            if !list.isEmpty {
                let shorter = Ruleset.Counters(Array(list.dropFirst()))
                #expect(shorter.compacted() != compacted && shorter != compacted && compacted != shorter)
                var renamed = list
                renamed[0] = TrafficCounter(instance: Address(kind: .instance, region: "lab", tenant: "t9", name: "vm-x"), direction: list[0].direction, scope: list[0].scope)
                let other = Ruleset.Counters(renamed)
                #expect(other.compacted() != compacted && other != compacted && compacted != other, "as many counters, one of them another's")
            }
        }
        #expect(deflatedSeen > 50, "most lists were long enough to deflate")
    }

    @Test func aCompactedRegionPlanEncodesAsThePlanItWasMadeFrom() throws {
        var random = SeededGenerator(seed: 17)
        var plan = RegionPlan(region: "lab")
        for index in 0..<4 {
            let node = Address(kind: .node, region: "lab", name: "lab-\(index)")
            plan.changes.append(Change(address: Address(kind: .firewall, region: "lab", name: node.name), target: .node(node), action: .create, reason: .new,
                                       operation: .loadFirewall(Ruleset(node: node, rules: Self.rules(80, &random), counters: Self.counters(12, &random)))))
            plan.changes.append(Change(address: Address(kind: .instance, region: "lab", tenant: "t", name: "vm-\(index)"), target: .node(node), action: .power,
                                       reason: .powerState, operation: .setPower(domain: "t:vm-\(index)", running: true)))
        }
        let compacted = plan.compacted()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        #expect(try encoder.encode(compacted) == encoder.encode(plan))
        #expect(compacted.changes == plan.changes)
        let nfts = { (plan: RegionPlan) in plan.changes.compactMap { change -> String? in
            if case .node(.loadFirewall(let ruleset)) = change.operation { ruleset.nft } else { nil }
        } }
        #expect(nfts(compacted) == nfts(plan))
    }
}
