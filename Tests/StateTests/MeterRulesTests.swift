import Manifests
import Planning
import State
import Testing

/// The ledger's rules both stores carry out (`StateContractTests` runs them through each store).
@Suite struct MeterRulesTests {
    static let meter = Meter(resource: .address(Address(kind: .instance, region: "lab", tenant: "acme", name: "web-1")),
                             address: Address(kind: .instance, region: "lab", tenant: "acme", name: "web-1"), tenant: "acme", kind: .instance, item: "m1.small", period: .hourly, priceList: "standard")

    static func open(item: String = "m1.small", start: Int64 = 100) -> MeterRules.OpenInterval {
        .init(id: 7, item: item, quantity: 1, period: "hourly", priceList: "standard", start: start)
    }

    @Test func aMeterOpensKeepsAmendsOrClosesTheOpenInterval() {
        #expect(MeterRules.step(Self.meter, open: nil, at: 200) == .open)
        #expect(MeterRules.step(Self.meter, open: Self.open(), at: 200) == .keep, "a replay charges nothing twice")
        #expect(MeterRules.step(Self.meter, open: Self.open(item: "m1.large"), at: 200) == .close(id: 7), "new terms from now on")
        #expect(MeterRules.step(Self.meter, open: Self.open(item: "m1.large", start: 200), at: 200) == .amend(id: 7), "nothing charged yet at the old terms")
        #expect(MeterRules.step(Self.meter, open: Self.open(item: "m1.large", start: 300), at: 200) == .amend(id: 7))
    }
}
