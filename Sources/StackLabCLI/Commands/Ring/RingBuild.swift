import ArgumentParser
import Foundation
import Planning
import Reconcile
import StateStores

/// `stacklab ring build REGION [RING]`.
struct RingBuild: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "build",
        abstract: "Rebalance a region's rings, save the builders, and write the ring files (without installing them on nodes).")

    @OptionGroup var options: RingOptions

    @Option(help: ArgumentHelp("Directory for the ring files (default: <state-dir>/rings/<region>).", valueName: "dir"))
    var out: String?

    func run() throws {
        let (stateDirectory, entries) = try options.load()
        let location = try options.reconcile.stateLocation(repo: options.repository.repo)
        let store = try location.open()
        // The builders are the region's: saved while holding it, like any apply.
        let held = try location.leases().acquire(options.regionName, timeout: 30)
        defer { withExtendedLifetime(held) {} }
        let directory = out ?? "\(stateDirectory)/rings/\(options.regionName)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        struct Built: Encodable {
            var ring: String; var rebuilt: Bool; var replicasMoved: Int; var balance: Double; var dispersion: Int; var file: String; var sha256: String; var heldBack: Int
        }
        var text = ""
        var built: [Built] = []
        for (ring, stored, plan) in entries {
            if plan.rebuilt {
                try store.saveRing(address: ring.address, state: try plan.state.encoded(), checksum: plan.checksum, previous: stored?.checksum)
            }
            try RingPlanner.file(for: plan).write(to: URL(fileURLWithPath: "\(directory)/\(plan.fileName)"))
            text += String(format: "%@: %@, %d replicas moved, balance %.2f%%, dispersion %d → %@/%@ (sha256 %@)\n",
                           ring.address.description, plan.rebuilt ? "rebuilt" : "unchanged", plan.replicasMoved, plan.balanceAfter,
                           plan.dispersion, directory, plan.fileName, String(plan.checksum.prefix(12)))
            if plan.heldBack > 0 { text += "  warning: \(plan.heldBack) partitions held back by min_part_hours; build again later to finish\n" }
            built.append(Built(ring: ring.address.description, rebuilt: plan.rebuilt, replicasMoved: Int(plan.replicasMoved), balance: plan.balanceAfter,
                               dispersion: Int(plan.dispersion), file: "\(directory)/\(plan.fileName)", sha256: plan.checksum, heldBack: Int(plan.heldBack)))
        }
        Terminal.standardOutput.write(options.json ? try JSON.encode(["rings": built]) : text)
    }
}
