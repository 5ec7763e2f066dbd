import Billing
import Foundation
import Manifests
import Planning

extension Reconciler {
    /// In regions with `creditCheck`, the new instances of a tenant whose balance is below zero are held back (with
    /// the changes that depend on them): the plan reports them and applies the rest. The balance is the tenant's
    /// statement this month, rated with the price lists of the revision being planned.
    func holdingCredit(_ plan: Plan) throws -> Plan {
        let checked = Set(model.regions.filter { $0.spec.creditCheck?.value == true }.map(\.name))
        guard !checked.isEmpty else { return plan }  // no region checks credit: no need to look at every change
        let creates = plan.changes.filter { $0.address.kind == .instance && $0.action == .create && $0.reason == .new && checked.contains($0.region) }
        guard !creates.isEmpty, let state else { return plan }
        var book = PriceBook()
        for list in model.priceLists { book.add(list.name, from: .min, Prices(list.spec)) }
        let biller: Biller
        do {
            biller = Biller(intervals: try state.meterIntervals(tenant: nil), traffic: try state.trafficUsage(tenant: nil), storage: try state.storageUsage(tenant: nil), accounts: try state.accountEntries(tenant: nil),
                            book: book, now: state.now)
        } catch {
            throw ReconcileError(.stateUnavailable, "cannot read the ledger for the credit check: \(error)", cause: error)
        }
        var owing: [String: Money] = [:]
        for tenant in Set(creates.compactMap(\.address.tenant)) {
            let balance = biller.statement(tenant, month: BillingMonth(containing: state.now)).balance
            if balance.micros < 0 { owing[tenant] = balance }
        }
        guard !owing.isEmpty else { return plan }
        var held = Set(creates.filter { owing[$0.address.tenant ?? ""] != nil }.map(\.id))
        var result = plan
        // Whatever depends on a held change is held too.
        var grew = true
        while grew {
            grew = false
            for change in plan.changes where !held.contains(change.id) && change.dependsOn.contains(where: held.contains) {
                held.insert(change.id)
                grew = true
            }
        }
        result.changes = plan.changes.filter { !held.contains($0.id) }
        for change in plan.changes where held.contains(change.id) {
            let tenant = change.address.tenant ?? ""
            let message = owing[tenant].map { "tenant \(tenant)'s balance is \($0.roundedToCents) (region \(change.region) has creditCheck): a new instance waits until it pays" }
                ?? "it depends on a change held back"
            result.held.append(.init(address: change.address, message: message))
        }
        return result
    }
}
