import Crypto
import Foundation
import ManifestSources
import Manifests
import Planning
import Processes
import Snapshots
import TestSupport
import Testing

/// A real Swift cluster (2.38.3: proxy, and account, container and object servers on 127.0.0.2–4) serving objects
/// through rings StackLab built and installed from a region's Ring manifests; volume snapshots go in and out of it
/// as content-addressed chunks.
@Suite(.serialized, .enabled(if: LoopbackSwift.python != nil, "set STACKLAB_SWIFT_PYTHON to a python with swift==2.38.3 (.ci/run does)"))
struct SwiftSnapshotTests {
    static let ports = (account: 16202, container: 16201, object: 16200)

    /// Writes (or rewrites) the region: three storage nodes on loopback addresses, the last with `lastDisks`.
    static func writeRegion(_ repo: Scratch, lastDisks: [String] = ["sdb", "sdc"]) throws {
        var nodes = ""
        for index in 2...4 {
            let disks = (index == 4 ? lastDisks : ["sdb", "sdc"]).map { "{name: \($0), size: 100GB}" }.joined(separator: ", ")
            nodes += """
                ---
                kind: Node
                name: st-\(index)
                spec: {address: 127.0.0.\(index), libvirt: simulated, roles: [\(index == 2 ? "controller, " : "")compute, storage], cpus: 4, memory: 8GiB, disks: [\(disks)]}

                """
        }
        try repo.write("regions/store/region.yaml", "kind: Region\nname: store\nspec: {sponsor: Swift test}\n")
        try repo.write("regions/store/nodes.yaml", nodes)
        try repo.write("regions/store/network.yaml", "kind: Network\nname: private\nspec: {bridge: br100, fixedRange: 10.50.0.0/24, gateway: 10.50.0.1}\n")
        try repo.write("regions/store/rings.yaml", """
            kind: Ring
            name: account
            spec: {partPower: 8, replicas: 3, devices: {port: \(ports.account)}}
            ---
            kind: Ring
            name: container
            spec: {partPower: 8, replicas: 3, devices: {port: \(ports.container)}}
            ---
            kind: Ring
            name: object
            spec: {partPower: 10, replicas: 3, devices: {port: \(ports.object)}}
            """)
        try GitCLI.commitAll(in: repo.path)
    }

    /// The region converged by `stacklab apply`: its ring files.
    static func rings(in state: Scratch) throws -> String {
        let repo = try Fixtures.deployment()
        try writeRegion(repo)
        let applied = try StackLabBinary.run(["apply", "--auto-approve", "--region", "store", "--repo", repo.path, "--state-dir", state.path])
        try #require(applied.status == 0, "\(applied.output)")
        return state.file("nodes/store/st-3/etc/swift")
    }

    static func sha256(_ path: String) throws -> String {
        SHA256.hash(data: try Data(contentsOf: URL(fileURLWithPath: path))).map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }

    /// A Swift cluster on 127.0.0.2–4 serving through the rings `stacklab apply` built for region `store` (kept alive by
    /// the scratch directories returned with it).
    static func cluster(state: Scratch, tempauth: [String] = []) throws -> (cluster: LoopbackSwift, keep: [Scratch]) {
        let ringDirectory = try Self.rings(in: state)
        let swiftDirectory = try Scratch("swift-dir")
        for ring in ["account", "container", "object"] {
            try FileManager.default.copyItem(atPath: "\(ringDirectory)/\(ring).ring.gz", toPath: swiftDirectory.file("\(ring).ring.gz"))
        }
        let roots = try (2...4).map { _ in try Scratch("swift-node") }
        let cluster = try LoopbackSwift(swiftDirectory: swiftDirectory.path,
                                        nodes: (2...4).map { LoopbackSwift.Node(address: "127.0.0.\($0)", root: roots[$0 - 2].path, devices: ["sdb", "sdc"]) },
                                        ports: Self.ports, tempauth: tempauth)
        return (cluster, [swiftDirectory] + roots)
    }

    @Test func snapshotsUploadOnlyChangedChunksRestoreByteForByteAndSurviveAnObjectServerDown() async throws {
        let state = try Scratch("swift-state")
        let (cluster, keep) = try Self.cluster(state: state)
        defer { withExtendedLifetime(keep) {} }
        let client = try SwiftClient.authenticate(proxy: cluster.proxyURL, user: "test:tester", key: "testing")
        let store = SnapshotStore(client: client)

        // A 64 MiB volume of varied bytes.
        let volume = state.file("volume.img")
        var bytes = [UInt8](repeating: 0, count: 64 << 20)
        var seed: UInt64 = 0x5eed
        for index in stride(from: 0, to: bytes.count, by: 8) {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            withUnsafeBytes(of: seed) { for (offset, byte) in $0.enumerated() where index + offset < bytes.count { bytes[index + offset] = byte } }
        }
        try Data(bytes).write(to: URL(fileURLWithPath: volume))
        let first = try store.upload(volume: "gerrit-data", name: "monday", from: volume)
        #expect(first.chunksUploaded == 64 && first.bytesSent == 64 << 20)
        let mondaySum = try Self.sha256(volume)

        // 1 MiB changes: the next snapshot sends one chunk.
        for index in (10 << 20)..<(11 << 20) { bytes[index] ^= 0xFF }
        try Data(bytes).write(to: URL(fileURLWithPath: volume))
        let second = try store.upload(volume: "gerrit-data", name: "tuesday", from: volume, after: first.manifest)
        #expect(second.chunksUploaded == 1 && second.bytesSent == 1 << 20, "only the changed chunk: \(second.chunksUploaded)")
        let tuesdaySum = try Self.sha256(volume)

        // Each snapshot restores on its own, byte for byte.
        let restored = state.file("restored.img")
        try store.restore(volume: "gerrit-data", name: "monday", to: restored)
        #expect(try Self.sha256(restored) == mondaySum)
        try store.restore(volume: "gerrit-data", name: "tuesday", to: restored)
        #expect(try Self.sha256(restored) == tuesdaySum)

        // One object server down: uploads (quorum 2 of 3) and restores still work.
        cluster.stop("object-127.0.0.3")
        for index in (40 << 20)..<(41 << 20) { bytes[index] ^= 0x0F }
        try Data(bytes).write(to: URL(fileURLWithPath: volume))
        let third = try store.upload(volume: "gerrit-data", name: "wednesday", from: volume)
        #expect(third.chunksUploaded == 1)
        try store.restore(volume: "gerrit-data", name: "wednesday", to: restored)
        #expect(try Self.sha256(restored) == (try Self.sha256(volume)))
        try store.restore(volume: "gerrit-data", name: "monday", to: restored)
        #expect(try Self.sha256(restored) == mondaySum)

        // Deleting monday deletes only the chunk no other snapshot uses (the original of the chunk tuesday changed);
        // the others still restore.
        let deletion = try store.delete(volume: "gerrit-data", name: "monday")
        #expect(deletion.chunksDeleted == 1 && deletion.chunksKept == 63, "\(deletion)")
        #expect(try store.list(prefix: "gerrit-data/").map(\.name).sorted() == ["tuesday", "wednesday"])
        try store.restore(volume: "gerrit-data", name: "tuesday", to: restored)
        #expect(try Self.sha256(restored) == tuesdaySum)
    }

    /// Ring files StackLab plans for the region in `repo` at `hour`, from the builders it saved before (`stored`).
    static func plannedRings(_ repo: Scratch, stored: [String: StoredRing], hour: Int32, into directory: String) throws -> [String: RingPlan] {
        let loaded = try Loader().load(DirectorySource(root: repo.path))
        let nodes = loaded.model.nodes.filter { $0.region == "store" }
        var plans: [String: RingPlan] = [:]
        for ring in loaded.model.rings where ring.region == "store" {
            let plan = try RingPlanner.plan(ring: ring, nodes: nodes, stored: stored[ring.name], hour: hour)
            try RingPlanner.file(for: plan).write(to: URL(fileURLWithPath: "\(directory)/\(ring.name).ring.gz"))
            plans[ring.name] = plan
        }
        return plans
    }

    @Test func aRebalanceStackLabPlansAfterADiskIsAddedKeepsEverySnapshotReadable() async throws {
        let repo = try Fixtures.deployment()
        try Self.writeRegion(repo)
        let swiftDirectory = try Scratch("swift-dir")
        let first = try Self.plannedRings(repo, stored: [:], hour: 1000, into: swiftDirectory.path)
        let roots = try (2...4).map { _ in try Scratch("swift-node") }
        let cluster = try LoopbackSwift(swiftDirectory: swiftDirectory.path,
                                        nodes: (2...4).map { LoopbackSwift.Node(address: "127.0.0.\($0)", root: roots[$0 - 2].path, devices: ["sdb", "sdc"]) },
                                        ports: Self.ports)
        let store = SnapshotStore(client: try SwiftClient.authenticate(proxy: cluster.proxyURL, user: "test:tester", key: "testing"))
        let state = try Scratch("swift-state")
        let volume = state.file("volume.img")
        try Data((0..<(16 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 2654435761 >> 7) }).write(to: URL(fileURLWithPath: volume))
        let sum = try Self.sha256(volume)
        _ = try store.upload(volume: "data", name: "before", from: volume)

        // A disk is added to st-4; StackLab rebalances a day later (past min_part_hours) and the rings are installed.
        try Self.writeRegion(repo, lastDisks: ["sdb", "sdc", "sdd"])
        try FileManager.default.createDirectory(atPath: roots[2].file("srv/node/sdd"), withIntermediateDirectories: true)
        let second = try Self.plannedRings(repo, stored: first.mapValues(\.state), hour: 1024, into: swiftDirectory.path)
        let moved = try #require(second["object"]).replicasMoved
        #expect(moved > 0, "the new disk takes partitions")
        #expect(second["object"]?.added.count == 1, "one device added: \(second["object"]?.added ?? [])")
        try cluster.restart("proxy")  // the proxy reads the new rings

        // Every object is still found: at most one replica of a partition moved, and the proxy reads the others.
        let restored = state.file("restored.img")
        try store.restore(volume: "data", name: "before", to: restored)
        #expect(try Self.sha256(restored) == sum)
        _ = try store.upload(volume: "data", name: "after", from: volume)
        try store.restore(volume: "data", name: "after", to: restored)
        #expect(try Self.sha256(restored) == sum)
    }
}
