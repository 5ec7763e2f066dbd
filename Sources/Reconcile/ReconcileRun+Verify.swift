import Foundation
import Hypervisor
import Manifests
import Planning
import State

/// The last step of a run: observe again, plan, remember converged regions, forget emptied orphan nodes.
extension ReconcileRun {
    /// Observes again through the connections the apply used and plans: what remains is reported; converged regions
    /// are remembered (so the next plan need not observe them), and orphan nodes left with nothing of StackLab's are
    /// forgotten.
    func verify(_ report: inout Report, regions: [String], drivers: [Address: any NodeDriver], state: any StateBackend) {
        do {
            var verifier = reconciler
            verifier.state = state
            // Every node is observed again, unless the caller keeps observations: then a node whose generation did not
            // change since it was observed (moments ago, for this run) is not asked again.
            let after = try verifier.plan(regions: regions, drivers: drivers, memo: try StoredPlanMemo(store: state), observations: caches?.observations,
                                          ringCache: caches?.rings, refresh: caches == nil, disconnect: caches != nil).plan
            report.remaining = after
            let orphans = try verifier.orphanEndpoints().map(\.address).filter { regions.contains($0.region ?? "") }
            let busy = Set(after.changes.compactMap(\.target.node)).union(after.orphans.map(\.node))
            let empty = orphans.filter { !busy.contains($0) }
            try state.forgetNodes(empty)
            for node in empty where (try? drivers[node]?.observe())?.domains.isEmpty == true {
                try? FileManager.default.removeItem(atPath: LibvirtNode.hostFile(stateDirectory: reconciler.stateDirectory, node: node))
            }
        } catch {
            report.verifyError = "\(error)"
        }
    }
}
