import Foundation
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

    /// Every name and hash a domain is known by on its node (the port its ruleset binds, its volumes' names, its MAC, the
    /// spec and shape hashes in its metadata) is what the first implementation made: hashes of `address.description` and
    /// of numbers written in decimal, as strings. A faster way to make them must make the same bytes.
    @Test func aDomainsNamesAndHashesAreTheFirstImplementations() {
        let addresses = [Address(kind: .instance, region: "r0", tenant: "t0", name: "vm-0"), Address(kind: .instance, region: "pkt", tenant: "beta", name: "ü-1"),
                         Address(kind: .volume, region: "r0", tenant: "acme", name: "data"), Address(kind: .flavor, name: "m1.small"),
                         Address(kind: .node, region: "r9", name: "n-17")]
        for address in addresses {
            #expect(DesiredDomain.port(for: address) == "sl-" + String(Self.hex(["port", address.description]).prefix(12)))
            #expect(DesiredDomain.volumePrefix(for: address) == "i-" + Self.hex([address.description]))
            #expect(DesiredDomain.volumeName(for: address) == "v-" + Self.hex([address.description]))
            var byAddress = StableHasher(), byText = StableHasher()
            byAddress.combine(address)
            byText.combine(address.description)
            #expect(byAddress.value == byText.value)
            for attempt in 0..<3 {
                var hasher = StableHasher()
                hasher.combine(address.description)
                if attempt > 0 { hasher.combine(String(attempt)) }
                let value = hasher.value
                let mac = "52:54:00:" + [value >> 16, value >> 8, value].map { String(format: "%02x", UInt8(truncatingIfNeeded: $0)) }.joined(separator: ":")
                #expect(DesiredDomain.mac(for: address, attempt: attempt) == mac)
            }
        }
        for value: UInt64 in [0, 1, 0xF, 0x10, 0xFFFF_FFFF, 0x0123_4567_89AB_CDEF, .max] {
            var hasher = StableHasher()
            hasher.combine(value)  // any hasher: only the formatting of its value is checked
            #expect(hasher.hex == String(repeating: "0", count: 16 - String(hasher.value, radix: 16).count) + String(hasher.value, radix: 16))
        }
        for number: UInt64 in [0, 7, 10, 4_294_967_296, .max] {
            var byNumber = StableHasher(), byText = StableHasher()
            byNumber.combine(decimal: number)
            byText.combine(String(number))
            #expect(byNumber.value == byText.value)
        }
        let address = Address(kind: .instance, region: "r0", tenant: "t0", name: "vm-0")
        for (disks, ip) in [([DesiredDomain.Disk(pool: "stacklab-instances", volume: "i-1-root", bytes: 10 << 30, device: "vda", image: "http://img/cirros"),
                              .init(pool: "stacklab-instances", volume: "i-1-ephemeral", bytes: 20 << 30, device: "vdb", image: nil)], "10.0.0.3"),
                            ([], "192.168.255.254")] {
            let domain = DesiredDomain(address: address, node: Address(kind: .node, region: "r0", name: "n-1"), name: "t0:vm-0", vcpus: 4,
                                       memoryKiB: 8 << 20, disks: disks, interface: .init(bridge: "br100", mac: "52:54:00:aa:bb:cc", ip: IPv4Address(parsing: ip)!),
                                       running: true, flavor: "m1.large", image: "cirros")
            var shape = [address.description, domain.name]
            for disk in disks { shape += [disk.pool, disk.volume, disk.device, disk.image ?? ""] }
            shape += [domain.interface.bridge, DesiredDomain.port(for: address), domain.interface.mac, domain.interface.ip.description, domain.image]
            #expect(domain.shapeHash == Self.hex(shape))
            #expect(domain.specHash == Self.hex([domain.shapeHash, "4", "\(8 << 20)"] + disks.map { "\($0.bytes)" } + ["m1.large"]))
        }
        // Pinned outright: the reference above could drift with the code.
        #expect(DesiredDomain.port(for: address) == "sl-d9821857e8a8")
        #expect(DesiredDomain.volumePrefix(for: address) == "i-0d90e14a5f259b10")
    }

    /// A hash of strings as the first implementation made it: each string's bytes and 0xFF, FNV-1a, 16 hex digits.
    private static func hex(_ parts: [String]) -> String {
        var value: UInt64 = 0xcbf2_9ce4_8422_2325
        for part in parts {
            for byte in Array(part.utf8) + [0xFF] { value = (value ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
        }
        let text = String(value, radix: 16)
        return String(repeating: "0", count: 16 - text.count) + text
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
