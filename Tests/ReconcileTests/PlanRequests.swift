import Drivers
import Manifests
import Planning
import Reconcile

extension Reconciler {
    /// A refresh-only plan of `regions` (every one when empty) through `drivers` (tests wrap them to count or fail),
    /// made by the one plan function, without recovering first (as the tests' own applies never die).
    func refreshPlan(_ regions: [String] = [], drivers: [Address: any NodeDriver]? = nil, targets: [String] = []) throws -> Plan {
        var request = PlanRequest(.refresh, regions: regions)
        request.drivers = drivers
        request.targets = targets
        request.recover = false
        return try plan(request).plan
    }
}
