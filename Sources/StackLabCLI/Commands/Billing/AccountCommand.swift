import ArgumentParser
import Billing
import Foundation
import Manifests
import State
import StateStores

/// `stacklab account TENANT deposit|coupon|entries|reverse …`: money put in a tenant's account, recorded in the ledger with
/// who and when; the ledger listed; an entry taken back by an audited reversal (the ledger is never edited).
struct AccountCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "account",
        abstract: "Record a deposit, redeem a coupon, list a tenant's ledger entries, or reverse one (with who, when and why).",
        discussion: """
            A deposit pays what the tenant owes first, then what it runs. A coupon (from the tenant's price list) is \
            an amount spent before deposits, or a percentage off every charge, until it expires; each is redeemed \
            once per tenant. An amount is at most \(Money.limit) (one billion currency units).

            `entries` lists the tenant's ledger with each entry's number; `reverse N --reason TEXT` appends a \
            reversal of entry N (once): from then on its deposit no longer counts (what was spent of it is owed) or \
            its coupon no longer pays or discounts. The reversal keeps who made it, when and why.

            Examples:
              stacklab account devops deposit 5000 --note "invoice 2026-118"
              stacklab account sjtu-lab coupon CAMPUS
              stacklab account devops entries --format json
              stacklab account devops reverse 12 --reason "typed 50000 for 5000 (ticket 881)"
            """)

    enum Action: String, ExpressibleByArgument, CaseIterable { case deposit, coupon, entries, reverse }

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var ledger: LedgerOptions

    @Argument(help: "The tenant.")
    var tenant: String

    @Argument(help: "deposit, coupon, entries or reverse.")
    var action: Action

    @Argument(help: "The amount (deposit), the code (coupon), or the entry's number (reverse).")
    var value: String?

    @Option(help: "A note kept with a deposit (an invoice number).")
    var note: String = ""

    @Option(help: "Why an entry is reversed (kept in the ledger; required with reverse).")
    var reason: String?

    @Option(help: ArgumentHelp("Who records it (default: $USER).", valueName: "name"))
    var by: String?

    @OptionGroup var output: OutputOptions
    var format: OutputFormat { output.format }

    /// An error, as text on standard error or as `{ok: false, error}` with --format json.
    private func refuse(_ message: String) -> ExitCode { failure(message) }

    func validate() throws {
        switch action {
        case .deposit, .coupon: guard value != nil else { throw ValidationError("\(action.rawValue) needs a value: the amount or the code") }
        case .entries: guard value == nil else { throw ValidationError("entries takes no value") }
        case .reverse:
            guard value.flatMap(Int64.init) != nil else { throw ValidationError("reverse takes the number of an entry (see: stacklab account \(tenant) entries)") }
            guard let reason, !reason.trimmingCharacters(in: .whitespaces).isEmpty else { throw ValidationError("reverse needs --reason: why the entry is taken back") }
        }
    }

    func run() throws {
        let loaded = try repository.loadValid()
        guard let tenantResource = loaded.model.tenants.first(where: { $0.name == tenant }) else {
            throw refuse("tenant '\(tenant)' is not declared; tenants are: \(loaded.model.tenants.map(\.name).sorted().joined(separator: ", "))")
        }
        let listName = tenantResource.spec.priceList?.value ?? (loaded.model.priceLists.count == 1 ? loaded.model.priceLists[0].name : "")
        guard let list = loaded.model.priceLists.first(where: { $0.name == listName }) else { throw refuse("tenant '\(tenant)' has no price list") }
        let location = try ledger.location(repo: repository.repo)
        let store: any StateBackend
        do {
            store = try location.open(clock: ledger.clock)
        } catch {
            throw refuse("cannot open the state store \(location): \(error)")
        }
        let who = by ?? ProcessEnvironment.values["USER"] ?? "unknown"
        let prices = Prices(list.spec)
        let value = self.value ?? ""
        var entry: AccountEntry
        switch action {
        case .entries:
            return try printEntries(try store.accountEntries(tenant: tenant))
        case .deposit:
            guard let amount = Money(parsing: value), amount.micros > 0 else { throw refuse("a deposit is a positive amount (\(prices.currency)), not \(value)") }
            guard amount.isWithinLimit else { throw refuse("a deposit is at most \(Money.limit.cents) \(prices.currency), not \(amount.cents): record a larger sum as several deposits") }
            entry = AccountEntry(tenant: tenant, kind: .deposit, amount: amount, currency: prices.currency, reference: note, by: who, at: store.now)
        case .coupon:
            guard let coupon = prices.coupons[value] else {
                throw refuse("price list '\(list.name)' has no coupon \(value); its coupons are: \(prices.coupons.keys.sorted().joined(separator: ", "))")
            }
            guard coupon.tenants.isEmpty || coupon.tenants.contains(tenant) else { throw refuse("coupon \(value) is only for \(coupon.tenants.joined(separator: ", "))") }
            if let expires = coupon.expires, expires <= store.now { throw refuse("coupon \(value) expired on \(Calendar.UTC.format(expires - 86_400).prefix(10))") }
            entry = AccountEntry(tenant: tenant, kind: .coupon, amount: coupon.amount ?? .zero, discountPPM: coupon.discountPPM,
                                 currency: prices.currency, reference: value, by: who, at: store.now, expires: coupon.expires)
        case .reverse:
            let number = Int64(value)!
            let entries = try store.accountEntries(tenant: tenant)
            guard let target = entries.first(where: { $0.id == number }) else {
                throw refuse("tenant \(tenant) has no ledger entry \(number); its entries are listed by: stacklab account \(tenant) entries")
            }
            guard target.kind != .reversal else { throw refuse("entry \(number) is a reversal itself; a reversal is not reversed") }
            if let earlier = entries.first(where: { $0.reverses == number }) {
                throw refuse("entry \(number) was reversed already, by entry \(earlier.id.map(String.init) ?? "?") (\(earlier.by), \(Calendar.UTC.format(earlier.at)) UTC)")
            }
            entry = AccountEntry(tenant: tenant, kind: .reversal, amount: -target.amount, currency: target.currency, reference: reason ?? "",
                                 by: who, at: store.now, reverses: number)
        }
        do {
            try store.recordAccount(entry)
        } catch {
            throw refuse(action == .coupon ? "coupon \(value) was already redeemed by \(tenant)" : "cannot record the \(action.rawValue): \(error)")
        }
        let what = switch action {
        case .deposit: "deposit of \(entry.amount.cents) \(entry.currency)"
        case .coupon: "coupon \(value)"
        default: "reversal of entry \(value) (\(entry.amount.cents) \(entry.currency))"
        }
        if format == .json {
            struct Recorded: Encodable { var ok = true; var entry: AccountEntry }
            return Terminal.standardOutput.write(try JSON.encode(Recorded(entry: entry)))
        }
        Terminal.standardOutput.write("recorded \(what) for \(tenant) by \(who) at \(Calendar.UTC.format(entry.at)) UTC\n")
    }

    /// The tenant's entries, oldest first, each with its number.
    private func printEntries(_ entries: [AccountEntry]) throws {
        if format == .json {
            struct Listing: Encodable { var ok = true; var tenant: String; var entries: [AccountEntry] }
            return Terminal.standardOutput.write(try JSON.encode(Listing(tenant: tenant, entries: entries)))
        }
        guard !entries.isEmpty else { return Terminal.standardOutput.write("tenant \(tenant) has no ledger entries\n") }
        var text = ""
        for entry in entries {
            let number = entry.id.map(String.init) ?? "?"
            var what = "\(entry.kind.rawValue) \(entry.amount.cents) \(entry.currency)"
            if entry.discountPPM > 0 { what += ", \(Double(entry.discountPPM) / 10_000)% off" }
            if let reverses = entry.reverses { what += " (reverses \(reverses))" }
            let reference = entry.reference.isEmpty ? "" : " \(entry.reference.terminalSafe)"
            text += "\(number)\t\(Calendar.UTC.format(entry.at)) UTC\t\(what)\(reference)\tby \(entry.by.terminalSafe)\n"
        }
        Terminal.standardOutput.write(text)
    }
}
