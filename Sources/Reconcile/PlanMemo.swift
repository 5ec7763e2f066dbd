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
    /// The plans remembered for each of `regions` under its key, in order (nil where none is).
    func plans(_ regions: [(region: String, key: String)]) -> [RegionPlan?]
}

extension PlanMemo {
    public func plans(_ regions: [(region: String, key: String)]) -> [RegionPlan?] {
        regions.map { plan(region: $0.region, key: $0.key) }
    }
}

/// Region plans in memory: the long-running reconciler's memo (kept in its `RunCaches`). With a limit, only the
/// plans of the regions planned most recently are kept, as observations are: a region whose observations were let go
/// is observed again when it is planned anyway, so its kept plan would save little while holding its changes.
public final class MemoryPlanMemo: PlanMemo, Sendable {
    private let plans: RegionBoundedCache<String, RegionPlan>

    /// An empty memo of at most `regions` regions' plans (every region when nil).
    public init(regions: Int? = nil) {
        plans = RegionBoundedCache(regions: regions)
    }

    public func plan(region: String, key: String) -> RegionPlan? {
        plans.value(region, region: region, stamp: key)
    }

    /// Under one lock for all (100 regions looked up one by one took a lock each).
    public func plans(_ regions: [(region: String, key: String)]) -> [RegionPlan?] {
        plans.values(regions.map { ($0.region, $0.region, $0.key) })
    }

    /// Keeps `plan` compacted (`RegionPlan.compacted()`): a region waiting to be converged keeps a ruleset per node.
    public func remember(_ plan: RegionPlan, key: String) {
        plans.keep(plan.compacted(), key: plan.region, region: plan.region, stamp: plan.settling ? nil : key)
    }

    /// Regions whose plan is kept.
    public var kept: Int { plans.kept.regions }

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
