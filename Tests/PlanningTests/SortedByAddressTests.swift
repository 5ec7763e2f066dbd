import Manifests
@testable import Planning
import Testing

/// Sorting by address through the tenant's and name's first bytes gives exactly the order of `Address.<`.
@Suite struct SortedByAddressTests {
    @Test func prefixesOrderAsAddressesDo() {
        var generator = SystemRandomNumberGenerator()
        let tenants: [String?] = [nil, "a", "acme", "acme-east", "acme-eastern-1", "acme-eastern-2", "t1", "t10", "t2", "zz"]
        let stems = ["vm", "vm-1", "vm-10", "web", "web-server-01", "web-server-02", "db"]
        for round in 0..<50 {
            var addresses: [Address] = []
            for _ in 0..<(round * 7 + 3) {
                let stem = stems.randomElement(using: &generator)!
                let name = Bool.random(using: &generator) ? stem : "\(stem)-\(Int.random(in: 0..<200, using: &generator))"
                addresses.append(Address(kind: .instance, region: "r0", tenant: tenants.randomElement(using: &generator)!, name: name))
            }
            #expect(AddressPrefix.of(addresses) != nil)
            let sorted = addresses.sortedByAddress { $0 }
            #expect(sorted.addresses == addresses.sorted(), "round \(round)")
            #expect(sorted.elements == sorted.addresses)
        }
    }

    @Test func addressesThePrefixesCannotOrderAreSortedAsAddresses() {
        let mixed = [Address(kind: .instance, region: "r1", tenant: "t", name: "b"), Address(kind: .instance, region: "r0", tenant: "t", name: "a")]
        #expect(AddressPrefix.of(mixed) == nil, "two regions")
        let unicode = [Address(kind: .instance, region: "r0", tenant: "t", name: "é"), Address(kind: .instance, region: "r0", tenant: "t", name: "e")]
        #expect(AddressPrefix.of(unicode) == nil, "not ASCII")
        let empty = [Address(kind: .instance, region: "r0", tenant: "", name: "b"), Address(kind: .instance, region: "r0", tenant: nil, name: "a")]
        #expect(AddressPrefix.of(empty) == nil, "an empty tenant")
        for addresses in [mixed, unicode] { #expect(addresses.sortedByAddress { $0 }.addresses == addresses.sorted()) }
    }
}
