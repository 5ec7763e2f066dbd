import Manifests
import Testing
import Planning

/// A domain's UUID is kept by libvirt and by the instance's metadata: it must never change for an instance.
@Suite struct DomainIdentityTests {
    @Test func aDomainsUUIDIsTheOneItWasGivenFromTheStart() {
        // Values computed by the first implementation (two hashers, formatted with String(radix:)); the instance's
        // domain on a node and its metadata's instance-id hold them.
        #expect(DesiredDomain.uuid(for: Address(kind: .instance, region: "pkt", tenant: "beta", name: "b1")) == Self.first("instance/pkt/beta/b1"))
        for name in ["a", "web-1", "vm-0", "a-much-longer-instance-name-0123456789", "ü"] {
            for tenant in ["t0", "acme", "x"] {
                let address = Address(kind: .instance, region: "r0", tenant: tenant, name: name)
                let uuid = DesiredDomain.uuid(for: address)
                #expect(uuid == Self.first(address.description))
                #expect(uuid.count == 36 && uuid.split(separator: "-").map(\.count) == [8, 4, 4, 4, 12])
                #expect(uuid.dropFirst(14).first == "5", "version 5 layout")
            }
        }
    }

    /// The first implementation, kept here as the reference.
    private static func first(_ text: String) -> String {
        var high = StableHasher()
        high.combine("uuid-high")
        high.combine(text)
        var low = StableHasher()
        low.combine("uuid-low")
        low.combine(text)
        let a = (high.value & 0xFFFF_FFFF_FFFF_0FFF) | 0x0000_0000_0000_5000
        let b = (low.value & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000
        func hex(_ value: UInt64, _ digits: Int) -> String {
            let text = String(value, radix: 16)
            return String(repeating: "0", count: digits - text.count) + text
        }
        let left = hex(a, 16), right = hex(b, 16)
        return "\(left.prefix(8))-\(left.dropFirst(8).prefix(4))-\(left.suffix(4))-\(right.prefix(4))-\(right.suffix(12))"
    }
}
