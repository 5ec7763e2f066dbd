import ArgumentParser
import Billing
import Foundation
import Manifests
import Planning
import State

/// `stacklab bill`: statements from the ledger and the price lists' history.
struct BillCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bill",
        abstract: "Print a tenant's statement for a month (or every tenant's), rated from the ledger and the price lists' history.",
        discussion: """
            Every resource StackLab runs is metered in the ledger by the apply that made it (an interval per flavor, \
            size or price list, opened when the change began; a delete stops it when requested). A statement rates \
            those intervals with the price lists in force when each period began (read from the repository's git \
            history: a price change is never retroactive): totals by category, what coupons and deposits paid, what \
            is owed, then the line items. --verify rebuilds every month of every tenant two ways (line items, and \
            interval totals) and checks the ledger's invariants; it exits 1 on any difference.

            Examples:
              stacklab bill devops --month 2026-11
              stacklab bill --all --month 2026-11 --format csv
              stacklab bill --verify
            """)

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var ledger: LedgerOptions

    @Argument(help: "The tenant.")
    var tenant: String?

    @Flag(help: "Every tenant in the ledger.")
    var all = false

    @Option(help: ArgumentHelp("The month (YYYY-MM; default: this month).", valueName: "month"))
    var month: String?

    @Option(help: "text, csv or json.")
    var format: BillFormat = .text

    @Flag(help: "Rebuild every bill two ways and check the ledger; exit 1 on a difference.")
    var verify = false

    func validate() throws {
        if let month, BillingMonth(parsing: month) == nil { throw ValidationError("--month takes YYYY-MM, not \(month)") }
        if !verify && (tenant == nil) == !all { throw ValidationError("name a tenant, or give --all (or --verify)") }
    }

    func run() throws {
        guard let store = try ledger.store(repo: repository.repo) else {
            throw fail("no state store yet: nothing was applied, so nothing was metered")
        }
        let book = try LedgerOptions.priceBook(repository: repository)
        let biller = Biller(intervals: try store.meterIntervals(tenant: nil), traffic: try store.trafficUsage(tenant: nil), storage: try store.storageUsage(tenant: nil), accounts: try store.accountEntries(tenant: nil),
                            book: book, now: store.now)
        if verify {
            // When each instance was deleted (its runs' starts), so a gap in its billing can be told from a lost interval.
            let started = Dictionary(try store.runs().map { ($0.id, Int64($0.startedAt)) }, uniquingKeysWith: { first, _ in first })
            var deletedAt: [Address: [Int64]] = [:]
            for entry in try store.journalEntries(run: nil) where entry.action == .delete && entry.status == .done {
                if let time = started[entry.run] { deletedAt[entry.address, default: []].append(time) }
            }
            let problems = Self.verify(biller, deletedAt: deletedAt)
            Terminal.standardOutput.write(problems.isEmpty ? "verified: every bill rebuilt two ways agrees to the cent, and the ledger is consistent\n"
                                                           : problems.map { "mismatch: \($0)\n" }.joined())
            if !problems.isEmpty { throw ExitCode(1) }
            return
        }
        let month = month.flatMap(BillingMonth.init(parsing:)) ?? BillingMonth(containing: store.now)
        let tenants = all ? biller.tenants : [tenant!]
        if !all, !biller.tenants.contains(tenant!) {
            // A tenant the manifests declare with nothing metered yet has an empty statement; a name nobody declared is
            // a lookup that found nothing.
            let declared = try repository.loadValid().model.tenants.map(\.name)
            guard declared.contains(tenant!) else {
                throw failure("no tenant '\(tenant!)' in the ledger or the manifests", hint: "tenants are: \(declared.sorted().joined(separator: ", "))")
            }
            Terminal.standardError.write("note: tenant '\(tenant!)' has nothing in the ledger\n")
        }
        let statements = all ? Biller.byTenant(biller).map { $0.statement(month: month) } : tenants.map { biller.statement($0, month: month) }
        switch format {
        case .json: Terminal.standardOutput.write(try JSON.encode(all ? AnyEncodable(["statements": statements]) : AnyEncodable(statements[0])))
        case .csv: Terminal.standardOutput.write(Statement.csvHeader + statements.map(\.csvRows).joined())
        case .text: Terminal.standardOutput.write(statements.map(\.text).joined(separator: "\n"))
        }
    }

    /// Every tenant's every month, from its first interval to now: the line items' sum equals the intervals' totals
    /// to the cent; and every interval keeps the ledger's invariants (`LedgerAudit`).
    static func verify(_ biller: Biller, deletedAt: [Address: [Int64]]) -> [String] {
        var problems: [String] = []
        guard let first = (biller.intervals.map(\.start) + biller.traffic.map(\.hour) + biller.storage.map(\.hour)).min() else { return [] }
        var months: [BillingMonth] = []
        var month = BillingMonth(containing: first)
        while month.start <= biller.now { months.append(month); month = month.next }
        let totals = biller.totals(months: months)
        for tenant in Biller.byTenant(biller) {
            for (index, month) in months.enumerated() {
                let statement = tenant.statement(month: month)
                let direct = totals[tenant.tenant]?[index] ?? .zero
                if statement.charges.roundedToCents != direct.roundedToCents {
                    problems.append("\(tenant.tenant) \(month): line items \(statement.charges.cents), interval totals \(direct.cents)")
                }
            }
        }
        problems += LedgerAudit.problems(biller.intervals, deletedAt: deletedAt)
        return problems.sorted()
    }
}

/// Type-erases an encodable value.
struct AnyEncodable: Encodable {
    let value: any Encodable
    init(_ value: any Encodable) { self.value = value }
    func encode(to encoder: any Encoder) throws { try value.encode(to: encoder) }
}
