import ArgumentParser
import Billing
import Foundation
import Manifests
import State
import StateStores

/// `stacklab account TENANT deposit|coupon …`: money put in a tenant's account, recorded in the ledger with who and when.
struct AccountCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "account",
        abstract: "Record a deposit or redeem a coupon for a tenant (in the ledger, with who and when).",
        discussion: """
            A deposit pays what the tenant owes first, then what it runs. A coupon (from the tenant's price list) is \
            an amount spent before deposits, or a percentage off every charge, until it expires; each is redeemed \
            once per tenant.

            Examples:
              stacklab account devops deposit 5000 --note "invoice 2026-118"
              stacklab account sjtu-lab coupon CAMPUS
            """)

    enum Action: String, ExpressibleByArgument, CaseIterable { case deposit, coupon }

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var ledger: LedgerOptions

    @Argument(help: "The tenant.")
    var tenant: String

    @Argument(help: "deposit or coupon.")
    var action: Action

    @Argument(help: "The amount (deposit) or the code (coupon).")
    var value: String

    @Option(help: "A note kept with a deposit (an invoice number).")
    var note: String = ""

    @Option(help: ArgumentHelp("Who records it (default: $USER).", valueName: "name"))
    var by: String?

    func run() throws {
        let loaded = try repository.loadValid()
        guard let tenantResource = loaded.model.tenants.first(where: { $0.name == tenant }) else {
            throw fail("tenant '\(tenant)' is not declared; tenants are: \(loaded.model.tenants.map(\.name).sorted().joined(separator: ", "))")
        }
        let listName = tenantResource.spec.priceList?.value ?? (loaded.model.priceLists.count == 1 ? loaded.model.priceLists[0].name : "")
        guard let list = loaded.model.priceLists.first(where: { $0.name == listName }) else { throw fail("tenant '\(tenant)' has no price list") }
        let location = try ledger.location(repo: repository.repo)
        let store: any StateBackend
        do {
            store = try location.open(clock: ledger.clock)
        } catch {
            throw fail("cannot open the state store \(location): \(error)")
        }
        let who = by ?? ProcessInfo.processInfo.environment["USER"] ?? "unknown"
        let prices = Prices(list.spec)
        var entry: AccountEntry
        switch action {
        case .deposit:
            guard let amount = Money(parsing: value), amount.micros > 0 else { throw fail("a deposit is a positive amount (\(prices.currency)), not \(value)") }
            entry = AccountEntry(tenant: tenant, kind: .deposit, amount: amount, currency: prices.currency, reference: note, by: who, at: store.now)
        case .coupon:
            guard let coupon = prices.coupons[value] else {
                throw fail("price list '\(list.name)' has no coupon \(value); its coupons are: \(prices.coupons.keys.sorted().joined(separator: ", "))")
            }
            guard coupon.tenants.isEmpty || coupon.tenants.contains(tenant) else { throw fail("coupon \(value) is only for \(coupon.tenants.joined(separator: ", "))") }
            if let expires = coupon.expires, expires <= store.now { throw fail("coupon \(value) expired on \(Calendar.UTC.format(expires - 86_400).prefix(10))") }
            entry = AccountEntry(tenant: tenant, kind: .coupon, amount: coupon.amount ?? Money(micros: 0), discountPPM: coupon.discountPPM,
                                 currency: prices.currency, reference: value, by: who, at: store.now, expires: coupon.expires)
        }
        do {
            try store.recordAccount(entry)
        } catch {
            throw fail(action == .coupon ? "coupon \(value) was already redeemed by \(tenant)" : "cannot record the deposit: \(error)")
        }
        let what = action == .deposit ? "deposit of \(entry.amount.cents) \(entry.currency)" : "coupon \(value)"
        Terminal.standardOutput.write("recorded \(what) for \(tenant) by \(who) at \(Calendar.UTC.format(entry.at)) UTC\n")
    }
}
