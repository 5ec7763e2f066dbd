import Foundation
import Manifests
import Planning
import TestSupport
import Testing
import Drivers
@testable import SimulatedNodes

/// The watched generations are always the generations every node would give if asked, and only nodes whose files
/// changed are asked again: host files rewritten, node directories made later, new regions, saved observations
/// (never part of a generation), and the kernel dropping events.
/// Every file is written through a descriptor that closes on exec: the kernel reports a file's close-after-write when its
/// last descriptor closes, and a process another test forks meanwhile holds copies of every descriptor without that flag
/// until it exits, so the event would come late, naming a node already read (an extra read, never a wrong answer; it
/// is what made these tests flaky beside others). A child still holds them between its fork and its exec.
@Suite struct GenerationWatchTests {
    static func node(_ region: String, _ name: String) -> Address { Address(kind: .node, region: region, name: name) }

    final class Cloud {
        let state: Scratch
        var drivers: [Address: any NodeDriver] = [:]
        let watch = GenerationWatch()

        init() throws {
            state = try Scratch("state")
            for (region, name) in [("lab", "n1"), ("lab", "n2"), ("lab", "n3"), ("edge", "e1")] { try add(region, name) }
        }

        func add(_ region: String, _ name: String) throws {
            drivers[GenerationWatchTests.node(region, name)] = try SimulatedNode(
                endpoint: NodeEndpoint(address: GenerationWatchTests.node(region, name), libvirt: "simulated", cpus: 4, memoryKiB: 8 << 20),
                stateDirectory: state.path)
        }

        func path(_ relative: String) -> String { "\(state.path)/nodes/\(relative)" }

        /// Asks the watch and checks it against every node asked directly; returns the nodes it read again.
        func check(_ comment: Comment, sourceLocation: Testing.SourceLocation = #_sourceLocation) -> [String] {
            let watched = watch.generations(of: drivers, stateDirectory: state.path)
            let direct = Dictionary(uniqueKeysWithValues: drivers.map { ($0.key, ($0.value as? any GenerationTracking)?.generation()) })
            #expect(watched == direct, comment, sourceLocation: sourceLocation)
            #expect(watch.failure == nil, sourceLocation: sourceLocation)
            return watch.lastRead.map(\.description)
        }

        /// Asks the watch for `drivers` only; returns the nodes it read again.
        func ask(_ drivers: [Address: any NodeDriver]) -> [String] {
            _ = watch.generations(of: drivers, stateDirectory: state.path)
            return watch.lastRead.map(\.description)
        }

        func generation(_ address: Address) -> String? { (drivers[address] as? any GenerationTracking)?.generation() }

        /// Replaces a file as the simulated hosts do: written aside, then renamed over it.
        func replace(_ relative: String, with text: String) throws {
            try GenerationWatchTests.write(path(relative) + ".tmp-\(getpid())", text)
            #expect(rename(path(relative) + ".tmp-\(getpid())", path(relative)) == 0)
        }
    }

    /// Writes `text` to `path` through a descriptor that closes on exec (see the suite's comment).
    static func write(_ path: String, _ text: String) throws {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        try #require(descriptor >= 0, "\(path): \(String(cString: strerror(errno)))")
        defer { close(descriptor) }
        #expect(text.utf8.withContiguousStorageIfAvailable { Glibc.write(descriptor, $0.baseAddress, $0.count) } == text.utf8.count)
    }

    @Test func onlyNodesWhoseFilesChangedAreReadAgainAndTheAnswerIsAlwaysTheDirectOne() throws {
        let cloud = try Cloud()
        #expect(cloud.check("first call").count == 4, "the first call reads every node")
        #expect(cloud.check("nothing changed") == [])
        // The same drivers again with nothing changed: the very answer of the last call, nothing looked up.
        let answer = cloud.watch.generations(of: cloud.drivers, stateDirectory: cloud.state.path)
        #expect(cloud.watch.generations(of: cloud.drivers, stateDirectory: cloud.state.path).sharesStorage(with: answer))

        // A host file rewritten (a new inode, as every write of a simulated host makes).
        let before = cloud.generation(Self.node("lab", "n1"))
        let host = try String(contentsOfFile: cloud.path("lab/n1.xml"), encoding: .utf8)
        try cloud.replace("lab/n1.xml", with: host)
        #expect(cloud.check("host file rewritten") == ["node/lab/n1"])
        #expect(cloud.generation(Self.node("lab", "n1")) != before)

        // The node's own directory made after the watch started, nested, then a file added deep inside it: the new
        // directories are watched as they appear.
        try FileManager.default.createDirectory(atPath: cloud.path("lab/n2/etc/stacklab/dnsmasq"), withIntermediateDirectories: true)
        try Self.write(cloud.path("lab/n2/etc/stacklab/dnsmasq/hosts"), "dhcp-host=aa:bb\n")
        #expect(cloud.check("node directory made") == ["node/lab/n2"])
        let withHosts = cloud.generation(Self.node("lab", "n2"))
        try Self.write(cloud.path("lab/n2/etc/stacklab/dnsmasq/leases"), "x")
        #expect(cloud.check("a file added in a directory made after the watch started") == ["node/lab/n2"])
        #expect(cloud.generation(Self.node("lab", "n2")) != withHosts)
        try FileManager.default.createDirectory(atPath: cloud.path("lab/n2/etc/swift"), withIntermediateDirectories: true)
        try Self.write(cloud.path("lab/n2/etc/swift/object.ring.gz"), "ring")
        #expect(cloud.check("a ring installed") == ["node/lab/n2"])

        // A saved observation is not part of a generation: writing one reads nothing again.
        try cloud.replace("lab/n3.observed", with: "{}\n")
        #expect(cloud.check("saved observation written") == [])

        // A region whose directory appears after the watch started, and a write to its node afterwards.
        try cloud.add("late", "l1")
        #expect(cloud.check("new region") == ["node/late/l1"])
        try cloud.replace("late/l1.xml", with: try String(contentsOfFile: cloud.path("late/l1.xml"), encoding: .utf8))
        #expect(cloud.check("host file in the new region rewritten") == ["node/late/l1"])

        // A caller asking for one region's nodes only (the service's per-region runs): a change to another region's
        // node, drained meanwhile, is still read when that node is asked for.
        let lab = cloud.drivers.filter { $0.key.region == "lab" }
        #expect(cloud.ask(lab) == [])
        try cloud.replace("late/l1.xml", with: try String(contentsOfFile: cloud.path("late/l1.xml"), encoding: .utf8))
        #expect(cloud.ask(lab) == [], "the change is not in lab")
        #expect(cloud.check("every node again, after a change drained while only lab was asked for") == ["node/late/l1"])

        // A node that left: its host file removed.
        try FileManager.default.removeItem(atPath: cloud.path("edge/e1.xml"))
        #expect(cloud.check("host file removed") == ["node/edge/e1"])
        #expect(cloud.generation(Self.node("edge", "e1")) == nil)
    }

    @Test func withoutWatchesEveryGenerationIsReadEveryTimeAndTheTreeIsNotWalkedAgainAtOnce() throws {
        let cloud = try Cloud()
        try FileManager.default.createDirectory(atPath: cloud.path("lab/n2/etc/stacklab/metadata"), withIntermediateDirectories: true)
        cloud.watch.watchLimit = 3  // as if fs.inotify.max_user_watches were reached
        let direct = { Dictionary(uniqueKeysWithValues: cloud.drivers.map { ($0.key, ($0.value as? any GenerationTracking)?.generation()) }) }
        #expect(cloud.watch.generations(of: cloud.drivers, stateDirectory: cloud.state.path) == direct())
        #expect(cloud.watch.failure?.contains("max_user_watches") == true, "\(cloud.watch.failure ?? "watched")")
        #expect(cloud.watch.lastRead.count == 4)
        try cloud.replace("lab/n1.xml", with: try String(contentsOfFile: cloud.path("lab/n1.xml"), encoding: .utf8))
        cloud.watch.watchLimit = nil  // room again, but no new attempt before the retry interval
        #expect(cloud.watch.generations(of: cloud.drivers, stateDirectory: cloud.state.path) == direct())
        #expect(cloud.watch.lastRead.count == 4, "every node read again, every time")
        #expect(cloud.watch.failure != nil)
    }

    @Test func aStateDirectoryWithoutNodesYetIsWatchedOnceTheyAppear() throws {
        let state = try Scratch("state")
        let watch = GenerationWatch()
        #expect(watch.generations(of: [:], stateDirectory: state.path).isEmpty)
        #expect(watch.failure == nil, "no nodes yet is not a failure to watch")
        let address = Self.node("lab", "n1")
        let node = try SimulatedNode(endpoint: NodeEndpoint(address: address, libvirt: "simulated", cpus: 4, memoryKiB: 8 << 20),
                                     stateDirectory: state.path)
        #expect(watch.generations(of: [address: node], stateDirectory: state.path)[address] == .some(node.generation()))
        #expect(watch.generations(of: [address: node], stateDirectory: state.path)[address] == .some(node.generation()))
        #expect(watch.lastRead == [], "watched since the nodes directory appeared")
    }

    @Test func lostEventsAndMovedDirectoriesReadEverythingAgain() throws {
        let cloud = try Cloud()
        _ = cloud.check("first call")
        try FileManager.default.createDirectory(atPath: cloud.path("lab/n2/etc/stacklab/metadata"), withIntermediateDirectories: true)
        #expect(cloud.check("node directory made") == ["node/lab/n2"])

        // More events than the kernel queues: it drops them and says so; every node is read again.
        let queued = Int((try? String(contentsOfFile: "/proc/sys/fs/inotify/max_queued_events", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? 16384
        var created = 0
        for index in 0...(queued + 16) {
            let descriptor = open(cloud.path("lab/n2/etc/stacklab/metadata/f\(index)"), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            if descriptor >= 0 {
                created += 1
                close(descriptor)
            }
        }
        #expect(created > queued)
        #expect(cloud.check("events dropped by the kernel").count == 4)
        #expect(cloud.check("nothing changed since") == [], "watching again after an overflow")
        try Self.write(cloud.path("lab/n2/etc/stacklab/metadata/after"), "x")
        #expect(cloud.check("a file added after the overflow") == ["node/lab/n2"], "the watches were made again")

        // A watched directory moved away and back: paths below it went stale, so everything is read again.
        #expect(rename(cloud.path("lab/n2"), cloud.path("lab/n2.away")) == 0)
        #expect(rename(cloud.path("lab/n2.away"), cloud.path("lab/n2")) == 0)
        #expect(cloud.check("node directory moved away and back").count == 4)
        try Self.write(cloud.path("lab/n2/etc/stacklab/metadata/later"), "y")
        #expect(cloud.check("a file added after the move") == ["node/lab/n2"])
    }
    /// A watching node source lists a region directory again only after an event in it, and its answer is always what
    /// listing every directory gives: host files added, removed and renamed, regions added and removed, a region
    /// directory moved away and back, events the kernel dropped, and callers asking for some regions only.
    @Test func heldNodesAreListedAgainOnlyWhereAnEventHappenedAndAreAlwaysTheDirectListing() throws {
        let cloud = try Cloud()
        let nodes = LocalNodes(stateDirectory: cloud.state.path, watching: true)
        let watch = try #require(nodes.watch)
        func check(_ comment: Comment, regions: Set<String>? = nil, sourceLocation: Testing.SourceLocation = #_sourceLocation) {
            let held = nodes.heldNodes(in: regions).map(\.address)
            #expect(held == LocalNodes.simulatedNodes(stateDirectory: cloud.state.path, regions: regions), comment, sourceLocation: sourceLocation)
        }
        func unchanged() -> Set<String> { watch.unchangedListings(stateDirectory: cloud.state.path) }

        check("first call")
        #expect(unchanged() == ["", "lab", "edge"], "every directory listed under the watch")
        check("nothing changed")
        #expect(unchanged() == ["", "lab", "edge"])

        try cloud.add("lab", "n4")
        #expect(unchanged() == ["", "edge"], "a host file added: its region only")
        check("host file added")
        #expect(unchanged() == ["", "lab", "edge"])

        // A host file rewritten in place of itself (written aside, renamed over it) lists its region again: any event
        // counts, and the answer stays the direct one.
        try cloud.replace("lab/n1.xml", with: try String(contentsOfFile: cloud.path("lab/n1.xml"), encoding: .utf8))
        #expect(!unchanged().contains("lab"))
        check("host file rewritten")

        #expect(rename(cloud.path("edge/e1.xml"), cloud.path("edge/e2.xml")) == 0)
        #expect(unchanged() == ["", "lab"])
        check("host file renamed")
        try FileManager.default.removeItem(atPath: cloud.path("edge/e2.xml"))
        check("host file removed")

        // A file deep in a node's directory is not an entry of its region: the region's listing is kept.
        try FileManager.default.createDirectory(atPath: cloud.path("lab/n2/etc/stacklab"), withIntermediateDirectories: true)
        check("node directory made")
        try Self.write(cloud.path("lab/n2/etc/stacklab/hosts"), "x")
        #expect(unchanged().isSuperset(of: ["", "lab", "edge"]), "an event below a region's entries")
        check("a file deep inside a node's directory")

        try cloud.add("late", "l1")
        #expect(!unchanged().contains(""), "a region added: the nodes directory is listed again")
        check("region added")
        check("one region asked for", regions: ["late"])
        check("regions asked for, one of them without a directory", regions: ["late", "nowhere"])
        try FileManager.default.removeItem(atPath: cloud.path("late"))
        check("region removed")

        #expect(rename(cloud.path("lab"), cloud.path("lab.away")) == 0)
        #expect(rename(cloud.path("lab.away"), cloud.path("lab")) == 0)
        #expect(unchanged().isEmpty, "a watched directory moved: watched again from scratch, nothing vouched for")
        check("region directory moved away and back")
        try cloud.add("lab", "n5")
        check("host file added after the move")

        // More events than the kernel queues: nothing is vouched for until listed again.
        let queued = Int((try? String(contentsOfFile: "/proc/sys/fs/inotify/max_queued_events", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? 16384
        for index in 0...(queued + 16) {
            let descriptor = open(cloud.path("lab/n2/etc/stacklab/f\(index)"), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            if descriptor >= 0 { close(descriptor) }
        }
        #expect(rename(cloud.path("edge"), cloud.path("edge.gone")) == 0, "a region leaves while events are dropped")
        #expect(unchanged().isEmpty)
        check("events dropped by the kernel")
        #expect(unchanged() == ["", "lab", "edge.gone"])
    }
}
