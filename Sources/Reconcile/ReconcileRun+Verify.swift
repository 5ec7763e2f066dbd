import Foundation
import Drivers
import Manifests
import Planning
import State

/// The last step of a run: observe again, plan, remember converged regions, forget emptied orphan nodes.
extension ReconcileRun {
    /// Plans again from what the nodes hold now: what remains is reported; converged regions are remembered (so the
    /// next plan need not observe them), and orphan nodes left with nothing of StackLab's are forgotten. A node the
    /// apply observed after its last change (in the caches' observations, under the generation it had then) is not asked again while
    /// that generation holds; every other node is observed.
    func verify(_ report: inout Report, regions: [String], drivers: [Address: any NodeDriver], state: any StateBackend) {
        do {
            var verifier = reconciler
            verifier.state = state
            var request = PlanRequest(.normal, regions: regions)
            request.drivers = drivers
            request.recover = false
            request.caches = caches
            request.observed = observedNodes  // what the nodes hold after the apply
            request.observedSnapshots = observedSnapshots
            request.observedAccounts = observedAccounts
            // The service remembers converged regions in memory, the CLI in the state store.
            request.memo = caches == nil ? try StoredPlanMemo(store: state) : nil
            let after = try verifier.plan(request).plan
            report.remaining = after
            let orphans = try verifier.orphanEndpoints().map(\.address).filter { regions.contains($0.region ?? "") }
            let busy = Set(after.changes.compactMap(\.target.node)).union(after.orphans.map(\.node))
            let empty = orphans.filter { !busy.contains($0) }
            try state.forgetNodes(empty)
            for node in empty where (try? drivers[node]?.observe())?.domains.isEmpty == true { reconciler.nodes.release(node) }
        } catch {
            report.verifyError = "\(error)"
        }
    }
}
