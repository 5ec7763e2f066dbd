import ArgumentParser
import Foundation
import Manifests
import Planning
import Reconcile
import State

/// `stacklab meter`: one round of bandwidth metering, what `stacklab serve` does every --usage-interval.
struct MeterCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "meter",
        abstract: "Record the compute nodes' traffic counters and the tenants' stored bytes in the ledger, once.",
        discussion: """
            Each compute node's ruleset counts what every instance port sends and receives, public (across the \
            region's edge: a floating IP, masqueraded, or through a load balancer) and internal, in named nftables \
            counters that a reload of the ruleset keeps. This reads them on every node of the region (holding the \
            region, as apply does), adds each counter's bytes past what the ledger already has for it to the \
            instance's hour, in one transaction, then deletes the counters of instances that left a node. A kill \
            anywhere loses or doubles nothing: run it again. stacklab serve does the same every --usage-interval \
            for the regions it holds; this is for a region no service holds (a cron job). Simulated nodes have no \
            kernel ruleset: nothing to meter. Where the region's object store has a reseller credential, it also \
            samples the bytes each tenant's account holds (object storage, billed per GB-month): the ledger keeps the \
            first sample of each hour, so rounds repeated within an hour bill it once. Exit status: 0 metered, 1 errors.

            Examples:
              stacklab meter --region sina
            """)

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var reconcile: ReconcileOptions
    @OptionGroup var output: OutputOptions

    /// One region's object-store sample, as `--format json` lists it.
    struct Stored: Encodable {
        var region: String
        var accounts: Int
        /// Hours newly recorded (0: this hour was sampled before).
        var added: Int
    }

    /// One node's round, as `--format json` lists it.
    struct Metered: Encodable {
        var node: String
        /// nil: nothing to meter there (a simulated node, or a ruleset StackLab has not loaded).
        var bytes: Int64?
        var deleted: [String]
    }

    func run() throws {
        let loaded = try repository.loadValid()
        let reconciler = try reconcile.reconciler(for: loaded, repo: repository.repo)
        guard let ledger = reconciler.state else { throw fail("no state store yet: nothing was applied, so there is nothing to meter") }
        let declared = loaded.model.regions.map(\.name).sorted()
        if let unknown = reconcile.region.first(where: { !declared.contains($0) }) {
            throw failure("no region '\(unknown)' in the manifests", hint: "regions are: \(declared.joined(separator: ", "))")
        }
        let regions = reconcile.region.isEmpty ? declared : reconcile.region
        let billing = Catalog.billing(loaded.model)
        let leases = try reconcile.stateLocation(repo: repository.repo).leases()
        var metered: [Metered] = []
        var stored: [Stored] = []
        let tenants = loaded.model.tenants.map(\.name).sorted()
        for region in regions {
            let held = try leases.acquire(region, timeout: 30)
            defer { withExtendedLifetime(held) {} }
            if reconciler.objectStores.hasReseller(region) {
                do {
                    let sampled = try StorageMeter.meter(region: region, stores: reconciler.objectStores, tenants: tenants, ledger: ledger, billing: billing, at: ledger.now)
                    stored.append(Stored(region: region, accounts: sampled.accounts, added: sampled.added))
                } catch {
                    throw fail("cannot sample the object store of region \(region): \(error)")
                }
            }
            let computes = Set(loaded.model.nodes.filter { $0.region == region && $0.spec.has(.compute) }.map(\.address))
            let drivers = try reconciler.drivers(for: try reconciler.endpoints(for: [region])).filter { computes.contains($0.key) }
            for (node, driver) in drivers.sorted(by: { $0.key < $1.key }) {
                defer { driver.disconnect() }
                do {
                    let outcome = try TrafficMeter.meter(driver, region: region, ledger: ledger, billing: billing, at: ledger.now)
                    metered.append(Metered(node: node.description, bytes: outcome?.added, deleted: outcome?.deleted ?? []))
                } catch {
                    throw fail("cannot meter \(node): \(error)")
                }
            }
        }
        if output.format == .json {
            struct Document: Encodable { var nodes: [Metered]; var storage: [Stored] }
            Terminal.standardOutput.write(try JSON.encode(Document(nodes: metered, storage: stored)))
        } else {
            Terminal.standardOutput.write(stored.map { "region \($0.region): \($0.accounts.counted("tenant account")) sampled, \($0.added) new hour\($0.added == 1 ? "" : "s") recorded\n" }.joined())
            Terminal.standardOutput.write(metered.map { node in
                guard let bytes = node.bytes else { return "\(node.node): nothing to meter (simulated, or no ruleset StackLab loaded)\n" }
                return "\(node.node): \(bytes) bytes recorded" + (node.deleted.isEmpty ? "" : "; \(node.deleted.count) counters of departed instances deleted") + "\n"
            }.joined())
        }
    }
}
