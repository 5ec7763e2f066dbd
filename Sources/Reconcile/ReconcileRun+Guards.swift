import Foundation
import Manifests
import Planning
import State

/// The checks a run makes before it changes anything: the saved plan's integrity, the region leases, and the guards against errors, mass deletes and destroyed data.
extension ReconcileRun {
    /// A saved plan must be sealed, unedited, free of errors, and made from the manifests loaded now.
    func checkIntegrity(_ plan: Plan) throws {
        guard let key = try PlanSeal.key(stateDirectory: reconciler.stateDirectory, create: false), plan.isIntact(with: key) else {
            throw Refusal.planEdited
        }
        guard plan.errors.isEmpty else { throw Refusal.planHasErrors(plan.errors.count) }
        guard plan.manifests == DesiredModel.digest(of: reconciler.digests) else { throw Refusal.otherManifests }
    }

    /// Takes every region's lease (one apply per region at a time).
    func lock(_ regions: [String]) throws -> [AnyObject] {
        do {
            return try regions.map { try leases.acquire($0, timeout: options.lockTimeout) }
        } catch {
            throw ReconcileError(.regionBusy, "\(error)", cause: error, retryable: error is any RegionBusy)
        }
    }

    /// Billing after a crash: an interrupted change of these regions that carried meters and that the fresh plan no
    /// longer wants took effect before the crash, so its meters apply from when it began (no charge lost); one the
    /// plan still wants is done again, and its meters apply then (none charged twice).
    func settleMeters(plan: Plan, regions: [String]) throws {
        guard let state = reconciler.state, state.isWritable else { return }
        let wanted = Set(plan.changes.map(\.id))
        let planned = Set(regions)
        do {
            for entry in try state.unsettledMeteredChanges() where !wanted.contains(entry.changeID) {
                if planned.contains(entry.target.region) { try state.settleMeters(entry) }
            }
        } catch {
            throw ReconcileError(.stateUnavailable, "cannot settle the billing of interrupted changes: \(error)", cause: error)
        }
    }

    /// Errors, mass deletes and destroyed data stop the run unless the options allow them.
    func guardPlan(_ plan: Plan, managed: [String: Int]) throws {
        guard plan.errors.isEmpty else { throw Refusal.planHasErrors(plan.errors.count) }
        let massDeletes = reconciler.massDeletions(in: plan, managed: managed)
        if !massDeletes.isEmpty && !options.allowMassDelete { throw Refusal.massDelete(massDeletes) }
        // Data of an instance that stays in the manifests: replaced (a move copies its disks and destroys nothing).
        let moved = plan.moved
        let destroyed = plan.changes.filter { !$0.destroys.isEmpty && ($0.action == .replace || moved.contains($0.address)) }
        if !destroyed.isEmpty && !options.allowReplace {
            throw Refusal.destroysData(destroyed.map { "\($0.address) (\($0.reason.rawValue)): \($0.destroys.joined(separator: ", "))" })
        }
    }
}
