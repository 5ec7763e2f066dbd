import Foundation
import Manifests
@testable import Planning
import TestSupport
import Testing

/// What a long-running planner keeps by the hundred thousand is held smaller than it reads: a ring builder's state
/// deflated (`KeptBytes`), a meter's resource only when it is not its address, a domain's origin boxed, an instance's
/// UUID derived from its address. Each must read, compare, hash and encode exactly as the plain fields did: the
/// `Was…` types below are the fields as they were held, with the encoding Swift made for them.
@Suite struct KeptValuesTests {
    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }()

    static let instance = Address(kind: .instance, region: "lab", tenant: "t1", name: "vm-1")
    static let node = Address(kind: .node, region: "lab", name: "lab-1")

    @Test func keptBytesReadCompareHashAndEncodeAsTheirData() throws {
        var random = SeededGenerator(seed: 11)
        for round in 0..<40 {
            // Repetitive JSON-like text (deflates) and random bytes (does not), of every size around the 1 KiB floor.
            let size = Int(random.next() % 6000)
            let data = round % 3 == 0
                ? Data((0..<size).map { _ in UInt8(truncatingIfNeeded: random.next()) })
                : Data(String(repeating: "{\"id\":\(round),\"parts\":[1,2,3]},", count: size / 30 + 1).utf8.prefix(size))
            let plain = KeptBytes(data)
            let kept = plain.compacted()
            #expect(kept.data == data, "round \(round)")
            #expect(kept.count == data.count)
            #expect(kept == plain && plain == kept)
            #expect(kept.hashValue == plain.hashValue)
            #expect(kept.compacted() == kept)
            #expect(try Self.encoder.encode(kept) == Self.encoder.encode(data))
            #expect(try JSONDecoder().decode(KeptBytes.self, from: Self.encoder.encode(data)) == plain)
            if round % 3 != 0 && data.count >= 1024 { #expect(kept.isCompacted, "text of \(data.count) bytes deflates") }
            if data.count < 1024 { #expect(!kept.isCompacted, "under 1 KiB is kept as it is") }
            var other = data
            if !other.isEmpty { other[other.count / 2] ^= 1 } else { other.append(0) }
            #expect(KeptBytes(other).compacted() != kept, "a byte apart is not equal")
        }
    }

    @Test func aKeptRegionPlanHoldsRingBuilderStatesDeflatedAndEncodesThemAsBefore() throws {
        let state = Data(String(repeating: "{\"device\":\"sdb\",\"ip\":\"10.200.0.1\",\"parts\":35},", count: 500).utf8)
        var plan = RegionPlan(region: "lab")
        plan.changes.append(Change(address: Address(kind: .ring, region: "lab", name: "object"), target: .region("lab"), action: .create, reason: .new,
                                   operation: .saveRingBuilder(state: state, checksum: "c1", previous: nil)))
        let kept = plan.compacted()
        guard case .region(.saveRingBuilder(let held, "c1", nil)) = kept.changes[0].operation else {
            Issue.record("the ring change is not a ring change any more")
            return
        }
        #expect(held.isCompacted && held.data == state)
        #expect(try Self.encoder.encode(kept) == Self.encoder.encode(plan))
        #expect(kept.changes == plan.changes)
    }

    struct WasMeter: Codable, Hashable {
        var resource: MeterResource
        var address: Address
        var tenant: String
        var kind: MeterKind
        var item: String
        var quantity: Int64
        var period: ChargePeriod
        var priceList: String
    }

    @Test func aMeterReadsAndEncodesItsEightFieldsWhateverItsResource() throws {
        let volume = Address(kind: .volume, region: "lab", tenant: "t1", name: "data")
        for (resource, address) in [(MeterResource.address(Self.instance), Self.instance), (.volume(region: "lab", volume: "v-0123"), volume),
                                    (.address(volume), Self.instance)] {
            let meter = Meter(resource: resource, address: address, tenant: "t1", kind: .volume, item: "20 GB", quantity: 20, period: .gbMonth, priceList: "std")
            let was = WasMeter(resource: resource, address: address, tenant: "t1", kind: .volume, item: "20 GB", quantity: 20, period: .gbMonth, priceList: "std")
            #expect(meter.resource == resource && meter.address == address)
            #expect(try Self.encoder.encode(meter) == Self.encoder.encode(was))
            #expect(try JSONDecoder().decode(Meter.self, from: Self.encoder.encode(was)) == meter)
            // A new address leaves the resource as it was; a resource set to the address is held as the address again.
            var moved = meter
            moved.address = Self.node
            #expect(moved.resource == resource && moved.address == Self.node)
            moved.address = address
            #expect(moved == meter && moved.hashValue == meter.hashValue)
            var reset = meter
            reset.resource = .address(address)
            reset.resource = resource
            #expect(reset == meter && reset.hashValue == meter.hashValue)
        }
    }

    @Test func aDomainEncodesItsOriginOnlyWhileItMoves() throws {
        var domain = DesiredDomain(address: Self.instance, node: Self.node, name: "t1:vm-1", vcpus: 1, memoryKiB: 524_288,
                                   disks: [.init(pool: "stacklab", volume: "vm-1-root", bytes: 1 << 30, device: "vda", image: "cirros")],
                                   interface: .init(bridge: "br100", mac: DesiredDomain.mac(for: Self.instance), ip: IPv4Address(0x0A00_0002)), running: true,
                                   flavor: "m1.tiny", image: "cirros")
        #expect(domain.origin == nil)
        #expect(try !String(decoding: Self.encoder.encode(domain), as: UTF8.self).contains("origin"))
        let source = Address(kind: .node, region: "lab", name: "lab-2")
        domain.origin = source
        let text = try String(decoding: Self.encoder.encode(domain), as: UTF8.self)
        #expect(text.contains("\"origin\":\"node\\/lab\\/lab-2\""), "\(text)")
        let read = try JSONDecoder().decode(DesiredDomain.self, from: Self.encoder.encode(domain))
        #expect(read == domain && read.origin == source && read.hashValue == domain.hashValue)
        var stopped = read
        stopped.origin = nil
        #expect(stopped != domain)
        #expect(try JSONDecoder().decode(DesiredDomain.self, from: Self.encoder.encode(stopped)).origin == nil)
    }

    struct WasMetadata: Codable {
        var uuid: String
        var address: Address
        var hostname: String
        var localIPv4: IPv4Address
        var publicIPv4: IPv4Address?
        var availabilityZone: String
        var keyName: String?
        var publicKey: String?
        var userData: String?
        var publicDomain: String?
    }

    @Test func anInstancesMetadataHoldsItsDomainsUUIDUnlessMadeWithAnother() throws {
        let ip = IPv4Address(0x0A00_0002)
        var metadata = InstanceMetadata(address: Self.instance, hostname: "vm-1", localIPv4: ip, publicIPv4: nil, availabilityZone: "z1",
                                        keyName: "ops", publicKey: "ssh-ed25519 AAAA ops", userData: nil)
        metadata.publicDomain = "abc.lb.lab.example:11000"
        let derived = DesiredDomain.uuid(for: Self.instance)
        #expect(metadata.uuid == derived && metadata.answer("/latest/meta-data/instance-id") == derived)
        let was = WasMetadata(uuid: derived, address: Self.instance, hostname: "vm-1", localIPv4: ip, publicIPv4: nil, availabilityZone: "z1",
                              keyName: "ops", publicKey: "ssh-ed25519 AAAA ops", userData: nil, publicDomain: "abc.lb.lab.example:11000")
        #expect(try Self.encoder.encode(metadata) == Self.encoder.encode(was))
        #expect(try JSONDecoder().decode(InstanceMetadata.self, from: Self.encoder.encode(was)) == metadata)
        #expect(InstanceMetadata(uuid: derived, address: Self.instance, hostname: "vm-1", localIPv4: ip, publicIPv4: nil, availabilityZone: "z1",
                                 keyName: "ops", publicKey: "ssh-ed25519 AAAA ops", userData: nil) == {
            var plain = metadata
            plain.publicDomain = nil
            return plain
        }())

        // Another UUID is held, read and encoded as given.
        var foreign = was
        foreign.uuid = "00000000-0000-5000-8000-000000000001"
        let read = try JSONDecoder().decode(InstanceMetadata.self, from: Self.encoder.encode(foreign))
        #expect(read.uuid == foreign.uuid && read != metadata)
        #expect(try Self.encoder.encode(read) == Self.encoder.encode(foreign))

        // A new address keeps the UUID it had; back at its own address it is the derived one again.
        var moved = metadata
        moved.address = Address(kind: .instance, region: "lab", tenant: "t1", name: "vm-2")
        #expect(moved.uuid == derived)
        moved.address = Self.instance
        #expect(moved == metadata && moved.hashValue == metadata.hashValue)
    }
}
