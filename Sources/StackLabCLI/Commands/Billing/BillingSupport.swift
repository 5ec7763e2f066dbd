import ArgumentParser
import Billing
import Foundation
import ManifestSources
import Manifests
import State
import StateStores

/// What billing commands share: the state store holding the ledger, the clock, and the price lists' history.
struct LedgerOptions: ParsableArguments {
    @OptionGroup var global: GlobalOptions

    @Option(name: .long, help: ArgumentHelp("Act as if it were this time (UTC: 2026-11-30, 2026-11-30T14:05): for demos and tests.", valueName: "time"))
    var at: String?

    func validate() throws {
        try ReconcileOptions.validateTime(at)
    }

    /// The clock in force: `--at`, else the wall clock.
    var clock: (@Sendable () -> Int64)? { ReconcileOptions.clock(at: at) }

    /// The ledger of the state store; a store that does not exist yet has an empty ledger.
    func store(repo: String) throws -> (any StateBackend)? {
        let location = try self.location(repo: repo)
        do {
            return try location.existing(clock: clock)
        } catch {
            throw fail("cannot open the state store \(location): \(error)")
        }
    }

    /// The state store in force.
    func location(repo: String) throws -> StateLocation {
        try global.location(repo: repo)
    }

    /// Every price list's history, from the repository's git history (or, outside git, the lists as they are now,
    /// in force since forever).
    static func priceBook(repository: RepositoryOptions) throws -> PriceBook {
        var book = PriceBook()
        do {
            for version in try PriceListHistory.read(repository: repository.repo, revision: repository.rev ?? "HEAD") {
                for list in version.priceLists { book.add(list.name, from: version.time, Prices(list.spec)) }
            }
        } catch {
            let loaded = try repository.loadValid()
            for list in loaded.model.priceLists { book.add(list.name, from: Int64.min, Prices(list.spec)) }
        }
        return book
    }
}

enum BillFormat: String, ExpressibleByArgument, CaseIterable {
    case text, csv, json
}

extension Money {
    /// Rounded half to even to the cent, as a statement shows it: `1,249.56`.
    public var cents: String {
        let cents = roundedToCents.micros / 10_000
        let whole = abs(cents) / 100
        var digits = String(whole)
        var grouped = ""
        while digits.count > 3 {
            grouped = "," + digits.suffix(3) + grouped
            digits.removeLast(3)
        }
        return (cents < 0 ? "-" : "") + digits + grouped + "." + String(format: "%02d", Int(abs(cents) % 100))
    }
}

extension Statement {
    /// The statement as a tenant reads it.
    var text: String {
        var out = "Statement for \(tenant), \(month) (\(currency))\n"
        let rows: [(String, Money)] = totals.map { ($0.category, $0.total) } + [
            ("total charges", charges), ("discounts", Money(micros: -discounts.micros)), ("paid by coupons", paidByCoupons),
            ("paid by deposits", paidByDeposits), ("owed", owed), ("deposit balance", depositBalance), ("coupon credit", couponCredit),
            ("balance", balance),
        ]
        let width = rows.map(\.0.count).max() ?? 0
        for (name, amount) in rows {
            let value = amount.cents
            out += "  \(name)\(String(repeating: " ", count: width - name.count + 2))\(String(repeating: " ", count: max(0, 14 - value.count)))\(value)\n"
        }
        if balance.micros < 0 { out += "  warning: the balance is below zero: \(tenant) owes \(Money(micros: -balance.micros).cents) \(currency)\n" }
        out += "\nLine items\n"
        let header = ["type", "name", "item", "unit price", "start", "end", "quantity", "total"]
        var table = [header]
        for line in lines {
            table.append([line.category, line.address, line.item.isEmpty ? "-" : line.item, "\(line.unitPrice)/\(line.unit)\(line.unpriced ? " (unpriced)" : "")",
                          Calendar.UTC.format(line.start), Calendar.UTC.format(line.end), Self.quantity(line.quantityMicros), line.total.cents])
        }
        let widths = header.indices.map { column in table.map { $0[column].count }.max() ?? 0 }
        for row in table {
            out += "  " + row.enumerated().map { index, cell in
                index == row.count - 1 ? String(repeating: " ", count: widths[index] - cell.count) + cell : cell + String(repeating: " ", count: widths[index] - cell.count)
            }.joined(separator: "  ") + "\n"
        }
        if lines.isEmpty { out += "  (nothing was charged this month)\n" }
        return out
    }
}
