import Foundation
import Planning
import State

/// Region plans kept between plans, by `RegionKey`.
public protocol PlanMemo: AnyObject {
    /// The plan remembered for `region` under `key`, if any.
    func plan(region: String, key: String) -> RegionPlan?
    /// Remembers `plan` (made from inputs with `key`).
    func remember(_ plan: RegionPlan, key: String)
    /// Makes what was remembered durable.
    func save() throws
}

/// Every region plan, in memory: the long-running reconciler's memo (kept in its `RunCaches`).
public final class MemoryPlanMemo: PlanMemo, @unchecked Sendable {
    private var plans: [String: (key: String, plan: RegionPlan)] = [:]
    private let lock = NSLock()

    /// An empty memo.
    public init() {}

    public func plan(region: String, key: String) -> RegionPlan? {
        lock.withLock { plans[region].flatMap { $0.key == key ? $0.plan : nil } }
    }

    public func remember(_ plan: RegionPlan, key: String) {
        lock.withLock { plans[plan.region] = plan.settling ? nil : (key, plan) }
    }

    public func save() {}
}

/// Converged region plans in the state store, so that `stacklab plan` run again over nodes that did not change
/// does not observe them again. Only converged regions are kept (a rebalanced ring is a change, so theirs list no
/// ring plans): their plan is a count and node fingerprints.
public final class StoredPlanMemo: PlanMemo {
    private let store: any PlanMemoStore
    private var stored: [String: (key: String, plan: Data)]
    private var pending: [(region: String, key: String, plan: Data?)] = []

    /// Reads the memos in `store`.
    public init(store: any PlanMemoStore) throws {
        self.store = store
        stored = try store.regionMemos()
    }

    public func plan(region: String, key: String) -> RegionPlan? {
        guard let memo = stored[region], memo.key == key else { return nil }
        return try? JSONDecoder().decode(RegionPlan.self, from: memo.plan)
    }

    public func remember(_ plan: RegionPlan, key: String) {
        if plan.isConverged, !plan.settling, let data = try? JSONEncoder().encode(plan) {
            pending.append((plan.region, key, data))
        } else if stored[plan.region] != nil {
            pending.append((plan.region, key, nil))
        }
    }

    public func save() throws {
        try store.saveRegionMemos(pending)
        pending = []
    }
}
