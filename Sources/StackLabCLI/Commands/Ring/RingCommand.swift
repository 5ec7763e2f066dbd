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
    @OptionGroup var output: OutputOptions

    var json: Bool { output.format == .json }

    @Argument(help: "The region.")
    var regionName: String

    @Argument(help: "One ring (account, container, object, or the Ring's name); all when left out.")
    var ringName: String?

    /// The region's rings with their saved builders and what a rebalance now would do.
    func load() throws -> (stateDirectory: String, entries: [(ring: Resource<RingSpec>, stored: StoredRing?, plan: RingPlan)]) {
        let loaded = try repository.loadValid()
        let stateDirectory = reconcile.stateDirectory(repo: repository.repo)
        do {
            let reconciler = try reconcile.reconciler(for: loaded, repo: repository.repo)
            return (stateDirectory, try reconciler.ringPlans(region: regionName, ring: ringName))
        } catch {
            throw failing(error)
        }
    }
}
