import ArgumentParser
import Foundation
import Manifests
import Planning
import Reconcile
import Rings

/// `stacklab ring`: inspect, build and check a region's Swift rings.
struct RingCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ring",
        abstract: "Show, build and validate a region's Swift rings (account, container, object).",
        discussion: """
            Rings come from the Ring manifests of a region and the disks of its storage nodes. 'stacklab apply' \
            rebalances them and installs the ring files on every storage and controller node; these commands look \
            at one region's rings directly.
            """,
        subcommands: [RingShow.self, RingBuild.self, RingValidate.self])
}

/// Options and loading shared by the ring subcommands.
struct RingOptions: ParsableArguments {
    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var reconcile: ReconcileOptions

    @Argument(help: "The region.")
    var regionName: String

    @Argument(help: "One ring (account, container, object, or the Ring's name); all when left out.")
    var ringName: String?

    /// The region's rings as the manifests declare them, each with its saved builder (if built before) and
    /// what a rebalance now would do.
    func load() throws -> (stateDirectory: String, entries: [(ring: Resource<RingSpec>, stored: StoredRing?, plan: RingPlan)]) {
        let loaded = try repository.loadValid()
        let stateDirectory = reconcile.stateDirectory(repo: repository.repo)
        guard loaded.model.regions.contains(where: { $0.name == regionName }) else {
            throw fail("region '\(regionName)' is not declared")
        }
        let rings = loaded.model.rings.filter { $0.region == regionName && (ringName == nil || $0.name == ringName || $0.spec.type?.value.rawValue == ringName) }
        guard !rings.isEmpty else { throw fail("region '\(regionName)' has no ring\(ringName.map { " '\($0)'" } ?? "")") }
        let stored = FileManager.default.fileExists(atPath: "\(stateDirectory)/stacklab.sqlite")
            ? try StateStore(directory: stateDirectory).rings() : [:]
        let nodes = loaded.model.nodes.filter { $0.region == regionName }
        let hour = Int32(Date().timeIntervalSince1970 / 3600)
        var entries: [(Resource<RingSpec>, StoredRing?, RingPlan)] = []
        for ring in rings.sorted(by: { $0.name < $1.name }) {
            do {
                entries.append((ring, stored[ring.address.description], try RingPlanner.plan(ring: ring, nodes: nodes, stored: stored[ring.address.description], hour: hour)))
            } catch {
                throw fail("\(ring.address): \(error)")
            }
        }
        return (stateDirectory, entries)
    }
}
