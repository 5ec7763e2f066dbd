import Manifests
import Testing
@testable import Planning

@Suite struct SchedulerTests {
    private func address(_ name: String) -> Address { Address(kind: .instance, region: "lab", tenant: "t", name: name) }

    private func hosts(_ specs: [(String, String, Int, UInt64)]) -> [Scheduler.Host] {
        specs.map { Scheduler.Host(name: $0.0, zone: $0.1, vcpus: $0.2, ramBytes: $0.3 << 30, diskBytes: 1 << 40) }
    }

    @Test func placesOnTheNodeWithMostFreeRAMDeterministically() {
        let requests = (1...4).map { Scheduler.Request(address: address("vm-\($0)"), vcpus: 1, ramBytes: 2 << 30, zone: nil, pinnedNode: nil, current: nil) }
        let result = Scheduler.place(requests, on: hosts([("a", "z1", 16, 8), ("b", "z2", 16, 8)]))
        #expect(result.failures.isEmpty)
        #expect(Set(result.placements.values) == ["a", "b"])
        #expect(result.placements.values.filter { $0 == "a" }.count == 2)
        #expect(result.pending == 4, "none runs anywhere: each is placed by room")
        #expect(Scheduler.place(requests, on: hosts([("a", "z1", 16, 8), ("b", "z2", 16, 8)])).placements == result.placements)
    }

    @Test func attachedVolumesGoOnlyWhereTheVolumePoolHasRoom() {
        var hosts = hosts([("compute-only", "z1", 16, 64), ("volumes", "z2", 16, 8)])
        hosts[0].volumeBytes = 0
        hosts[1].volumeBytes = 1 << 40
        var request = Scheduler.Request(address: address("db"), vcpus: 1, ramBytes: 1 << 30, zone: nil, pinnedNode: nil, current: nil)
        request.volumeBytes = 500 << 30
        #expect(Scheduler.place([request], on: hosts).placements[address("db")] == "volumes", "not the roomier node without a volume pool")
        request.volumeBytes = 2 << 40
        #expect(Scheduler.place([request], on: hosts).failures.first?.reason.contains("volume storage") == true)
        // Where it runs it stays, unless its volumes cannot fit there: then an error, never a silent move.
        request.volumeBytes = 10 << 30
        request.current = "compute-only"
        let stuck = Scheduler.place([request], on: hosts)
        #expect(stuck.placements.isEmpty && stuck.failures.first?.reason.contains("pin the instance to a volume node") == true)
    }

    @Test func runningInstancesStayWhereTheyAre() {
        let requests = [Scheduler.Request(address: address("old"), vcpus: 1, ramBytes: 1 << 30, zone: nil, pinnedNode: nil, current: "a")]
        let result = Scheduler.place(requests, on: hosts([("a", "z1", 16, 1), ("b", "z2", 16, 64)]))
        #expect(result.placements[address("old")] == "a")
        #expect(result.pending == 0, "kept where it runs, not placed by room")
        // In another zone than the one it runs in: placed by room (on the only node of that zone).
        var moved = requests[0]
        moved.zone = "z2"
        #expect(Scheduler.place([moved], on: hosts([("a", "z1", 16, 1), ("b", "z2", 16, 64)])).pending == 1)
    }

    @Test func pinsAndZonesAreHonoured() {
        let requests = [
            Scheduler.Request(address: address("pinned"), vcpus: 1, ramBytes: 1 << 30, zone: nil, pinnedNode: "b", current: nil),
            Scheduler.Request(address: address("zoned"), vcpus: 1, ramBytes: 1 << 30, zone: "z3", pinnedNode: nil, current: nil),
        ]
        let result = Scheduler.place(requests, on: hosts([("a", "z1", 16, 64), ("b", "z2", 16, 8), ("c", "z3", 16, 8)]))
        #expect(result.placements[address("pinned")] == "b")
        #expect(result.placements[address("zoned")] == "c")
    }

    @Test func anUnplaceableInstanceIsNamedWithTheShortfall() {
        let requests = [Scheduler.Request(address: address("huge"), vcpus: 64, ramBytes: 512 << 30, zone: nil, pinnedNode: nil, current: nil)]
        let result = Scheduler.place(requests, on: hosts([("a", "z1", 16, 64)]))
        #expect(result.placements.isEmpty)
        #expect(result.failures == [Scheduler.Failure(address: address("huge"),
            reason: "it needs 64 vCPUs, 512GiB RAM and 0B disk; the roomiest eligible node has 16 vCPUs, 64GiB RAM and 1TiB disk free")])
    }

    @Test func diskIsNeverOvercommitted() {
        let requests = (0..<3).map { Scheduler.Request(address: address("vm-\($0)"), vcpus: 1, ramBytes: 1 << 30, diskBytes: 400 << 30, zone: nil, pinnedNode: nil, current: nil) }
        let result = Scheduler.place(requests, on: hosts([("a", "z1", 16, 64)]))
        #expect(result.placements.count == 2, "two 400 GiB disks fit a 1 TiB pool, a third does not")
        #expect(result.failures.first?.reason.contains("400GiB disk") == true)
        #expect(result.failures.first?.reason.contains("224GiB disk free") == true)
    }
}

@Suite struct AddressPoolTests {
    @Test func allocatesTheLowestFreeHostSkippingReservedAddresses() {
        var pool = AddressPool(range: try! IPv4Network.parse("10.0.0.0/29").get(),
                               reserved: [IPv4Address(parsing: "10.0.0.1")!, IPv4Address(parsing: "10.0.0.2")!])
        let first = pool.claim(IPv4Address(parsing: "10.0.0.4")!)
        let again = pool.claim(IPv4Address(parsing: "10.0.0.4")!)
        let outside = pool.claim(IPv4Address(parsing: "10.0.1.4")!)
        #expect(first && !again && !outside)
        let allocated = (0..<4).map { _ in pool.allocate()?.description }
        #expect(allocated == ["10.0.0.3", "10.0.0.5", "10.0.0.6", nil])
    }

    @Test func stableHashesAreStable() {
        var hasher = StableHasher()
        hasher.combine("")
        // FNV-1a 64 of the single byte 0xFF (the separator): a fixed value on every machine.
        #expect(hasher.hex == "af64724c8602eb6e")
        #expect(DesiredDomain.mac(for: Address(kind: .instance, region: "a", tenant: "b", name: "c")).hasPrefix("52:54:00:"))
    }
}
