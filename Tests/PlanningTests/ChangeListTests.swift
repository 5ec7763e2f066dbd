import Foundation
import Manifests
import Testing
@testable import Planning

/// A plan's changes are region arrays joined without copying: read, filtered and encoded exactly as one array.
@Suite struct ChangeListTests {
    static func change(_ name: String) -> Change {
        Change(address: Address(kind: .network, region: "lab", name: name), target: .node(Address(kind: .node, region: "lab", name: "n1")),
               action: .create, reason: .new, operation: .ensureNetwork(network: name, bridge: "br0"))
    }

    static func chunk(_ names: ClosedRange<Int>, prefix: String) -> [Change] { names.map { change("\(prefix)\($0)") } }

    @Test func readsAsTheJoinedArrayAtEveryPosition() {
        let parts = [Self.chunk(1...3, prefix: "a"), [], Self.chunk(1...1, prefix: "b"), Self.chunk(1...5, prefix: "c")]
        var list = ChangeList()
        for part in parts { list.append(chunk: part) }
        let flat = parts.flatMap { $0 }
        #expect(list.count == flat.count)
        #expect(!list.isEmpty)
        #expect(Array(list) == flat, "iteration")
        #expect((0..<flat.count).allSatisfy { list[$0] == flat[$0] }, "every position, across chunk boundaries")
        #expect(list.array == flat)
        #expect(Array(list.reversed()) == Array(flat.reversed()), "walks backwards too (random access)")
        #expect(list.firstIndex { $0.address.name == "c1" } == 4)
        #expect(ChangeList().isEmpty && ChangeList([]).isEmpty && ChangeList().array.isEmpty)
    }

    @Test func appendingSharesTheArrayAndLaterWritesToItDoNotShowThrough() {
        var region = Self.chunk(1...4, prefix: "r")
        var list = ChangeList()
        list.append(chunk: region)
        // Copy-on-write: the region's array and the list's chunk are one buffer until either is written.
        let shared = region.withUnsafeBufferPointer { theirs in list.array.withUnsafeBufferPointer { $0.baseAddress == theirs.baseAddress } }
        #expect(shared, "one chunk is returned as the very array appended")
        region[0] = Self.change("changed")
        #expect(list[0].address.name == "r1", "a write to the region's array after the append is not seen")
        list.append(Self.change("one more"))
        #expect(list.count == 5 && list[4].address.name == "one more")
        #expect(region.count == 4, "appending to the list never writes the region's array")
    }

    @Test func filterKeepsWholeChunksAndOrder() {
        var list = ChangeList()
        list.append(chunk: Self.chunk(1...3, prefix: "keep"))
        list.append(chunk: Self.chunk(1...4, prefix: "mixed"))
        let filtered = list.filter { !$0.address.name.hasPrefix("mixed") || $0.address.name.hasSuffix("2") }
        #expect(filtered.map(\.address.name) == ["keep1", "keep2", "keep3", "mixed2"])
        #expect(list.filter { _ in false }.isEmpty)
    }

    @Test func codesAsOneJSONArrayExactlyAsAnArrayDoes() throws {
        var list = ChangeList()
        list.append(chunk: Self.chunk(1...2, prefix: "a"))
        list.append(chunk: Self.chunk(1...2, prefix: "b"))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let encoded = try encoder.encode(list)
        #expect(encoded == (try encoder.encode(list.array)))
        let decoded = try JSONDecoder().decode(ChangeList.self, from: encoded)
        #expect(decoded == list)
        #expect(decoded.hashValue == list.hashValue, "equal lists hash equal however they are chunked")
    }

    @Test func replacingASubrangeEditsTheJoinedChanges() {
        var list = ChangeList()
        list.append(chunk: Self.chunk(1...3, prefix: "a"))
        list.append(chunk: Self.chunk(1...3, prefix: "b"))
        list.replaceSubrange(2..<4, with: [Self.change("x")])
        #expect(list.map(\.address.name) == ["a1", "a2", "x", "b2", "b3"])
        list.removeAll()
        #expect(list.isEmpty && list.count == 0)
    }
}
