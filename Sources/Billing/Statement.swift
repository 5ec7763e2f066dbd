import Manifests
import Planning

/// What a tenant sees for a month: totals by category, then line items; what coupons and deposits paid; what is
/// left or owed at the month's end.
public struct Statement: Sendable, Codable {
    public var tenant: String
    public var month: String
    public var currency: String
    /// The statement's columns: one per kind of meter (instances, volumes, floating IPs, load balancers), in that
    /// order, each with its total (zero when nothing of that kind was charged). Derived from `MeterKind`: a kind added
    /// there is a new column here, with no code of its own.
    public var totals: [CategoryTotal]
    public var charges: Money
    /// Percent-off coupons' share of the charges.
    public var discounts: Money
    /// Paid by amount coupons, then by deposits; the rest is owed.
    public var paidByCoupons: Money
    public var paidByDeposits: Money
    public var owed: Money
    /// At the month's end: deposits not spent, and coupon credit still valid.
    public var depositBalance: Money
    public var couponCredit: Money
    public var lines: [LineItem]

    /// Deposits and coupon credit less what is owed.
    public var balance: Money { depositBalance + couponCredit - owed }

    /// The total of one kind of meter.
    public func total(of kind: MeterKind) -> Money { totals.first { $0.kind == kind }?.total ?? .zero }

    /// One column of the category table.
    public struct CategoryTotal: Sendable, Codable, Equatable {
        public var kind: MeterKind
        /// What the statement calls it (`load balancers`).
        public var category: String
        public var total: Money
    }

    /// The category table of `lines`: every kind of meter, in `MeterKind` order.
    static func categories(of lines: [LineItem]) -> [CategoryTotal] {
        var sums: [MeterKind: Money] = [:]
        for line in lines { sums[line.kind, default: .zero].micros += line.total.micros }
        return MeterKind.allCases.map { CategoryTotal(kind: $0, category: $0.category, total: sums[$0] ?? .zero) }
    }
}

/// Builds statements from the ledger: metering intervals, account entries, and the price lists' history.
public struct Biller: Sendable {
    public var intervals: [MeterInterval]
    /// Bytes sent and received per instance and hour (bandwidth).
    public var traffic: [TrafficUsage]
    /// Bytes held per tenant account, region and hour (object storage).
    public var storage: [StorageUsage]
    public var accounts: [AccountEntry]
    public var book: PriceBook
    /// Now: running intervals are charged up to it.
    public var now: Int64

    public init(intervals: [MeterInterval], traffic: [TrafficUsage] = [], storage: [StorageUsage] = [], accounts: [AccountEntry], book: PriceBook, now: Int64) {
        self.intervals = intervals
        self.traffic = traffic
        self.storage = storage
        self.accounts = accounts
        self.book = book
        self.now = now
    }

    /// Tenants with anything in the ledger.
    public var tenants: [String] { Array(Set(intervals.map(\.tenant)).union(traffic.map(\.tenant)).union(storage.map(\.tenant)).union(accounts.map(\.tenant))).sorted() }

    /// `tenant`'s statement for `month`. Accounts are played forward from the tenant's first charge or entry, month by
    /// month, so the balance carried into `month` is exactly what earlier statements left.
    public func statement(_ tenant: String, month: BillingMonth) -> Statement {
        Biller(intervals: intervals.filter { $0.tenant == tenant }, traffic: traffic.filter { $0.tenant == tenant }, storage: storage.filter { $0.tenant == tenant },
               accounts: accounts.filter { $0.tenant == tenant }, book: book, now: now)
            .statement(of: tenant, month: month)
    }

    /// One biller per tenant (each holding only that tenant's ledger), for statements of many tenants.
    public static func byTenant(_ biller: Biller) -> [TenantBiller] {
        let intervals = Dictionary(grouping: biller.intervals, by: \.tenant)
        let accounts = Dictionary(grouping: biller.accounts, by: \.tenant)
        let traffic = Dictionary(grouping: biller.traffic, by: \.tenant)
        let storage = Dictionary(grouping: biller.storage, by: \.tenant)
        return biller.tenants.map { tenant in
            TenantBiller(tenant: tenant, biller: Biller(intervals: intervals[tenant] ?? [], traffic: traffic[tenant] ?? [], storage: storage[tenant] ?? [],
                                                        accounts: accounts[tenant] ?? [], book: biller.book, now: biller.now))
        }
    }

    /// The statement of `tenant` from a biller that holds only its ledger.
    func statement(of tenant: String, month: BillingMonth) -> Statement {
        let mine = intervals
        let entries = accounts.sorted { ($0.at, $0.reference) < ($1.at, $1.reference) }
        let firstTime = (mine.map(\.start) + traffic.map(\.hour) + storage.map(\.hour) + entries.map(\.at)).min() ?? month.start
        var ledger = Account(entries: entries)
        var current = min(BillingMonth(containing: firstTime), month)
        var result: Statement?
        while current <= month {
            var lines = mine.flatMap { Rating.lines($0, month: current, book: book, now: now) }
            lines += Rating.trafficLines(traffic, month: current, book: book)
            lines += Rating.storageLines(storage, month: current, book: book)
            lines.sort { ($0.start, $0.address, $0.item) < ($1.start, $1.address, $1.item) }
            let paid = ledger.play(lines, until: current.end)
            if current == month {
                let totals = Statement.categories(of: lines)
                let currency = mine.lazy.compactMap { book.prices($0.priceList, at: month.start)?.currency }.first
                    ?? traffic.lazy.compactMap { book.prices($0.priceList, at: month.start)?.currency }.first
                    ?? storage.lazy.compactMap { book.prices($0.priceList, at: month.start)?.currency }.first ?? entries.first?.currency ?? ""
                result = Statement(tenant: tenant, month: "\(month)", currency: currency, totals: totals,
                                   charges: lines.reduce(Money.zero) { $0 + $1.total }, discounts: paid.discounts,
                                   paidByCoupons: paid.coupons, paidByDeposits: paid.deposits, owed: Money(micros: ledger.debt),
                                   depositBalance: Money(micros: ledger.deposit), couponCredit: Money(micros: ledger.couponCredit(at: month.end - 1)),
                                   lines: lines)
            }
            current = current.next
        }
        return result!
    }

    /// Every tenant's charges per month of `year`'s months (what `bench billing` rates), without line items.
    public func totals(months: [BillingMonth]) -> [String: [Money]] {
        var totals: [String: [Int128]] = [:]
        for interval in intervals {
            var row = totals[interval.tenant] ?? Array(repeating: 0, count: months.count)
            for (index, month) in months.enumerated() where interval.start < month.end && min(interval.stop ?? now, now) > month.start {
                row[index] += Rating.total(interval, month: month, book: book, now: now).micros
            }
            totals[interval.tenant] = row
        }
        for usage in traffic {
            guard let index = months.firstIndex(where: { usage.hour >= $0.start && usage.hour < $0.end }) else { continue }
            var row = totals[usage.tenant] ?? Array(repeating: 0, count: months.count)
            row[index] += Rating.trafficTotal(usage, book: book).micros
            totals[usage.tenant] = row
        }
        for usage in storage {
            guard let index = months.firstIndex(where: { usage.hour >= $0.start && usage.hour < $0.end }) else { continue }
            var row = totals[usage.tenant] ?? Array(repeating: 0, count: months.count)
            row[index] += Rating.storageTotal(usage, book: book).micros
            totals[usage.tenant] = row
        }
        return totals.mapValues { $0.map { Money(micros: $0) } }
    }
}

/// One tenant's ledger, ready for statements.
public struct TenantBiller: Sendable {
    public var tenant: String
    var biller: Biller

    /// The tenant's statement for `month`.
    public func statement(month: BillingMonth) -> Statement { biller.statement(of: tenant, month: month) }
}

/// A tenant's money played forward in time. A charge is settled when a prepaid month begins, or when the span of
/// used time it covers ends (pay as you go); percent coupons valid then discount it; amount coupons valid then pay
/// it first (soonest to expire first), then deposits; what remains is owed, and a later deposit pays what is owed
/// first.
struct Account {
    private var pending: [AccountEntry]
    private var coupons: [(remaining: Int128, from: Int64, expires: Int64?, entry: Int64?)] = []
    private var discounts: [(ppm: Int64, from: Int64, expires: Int64?, entry: Int64?)] = []
    /// Deposits and coupons by ledger number, for reversals.
    private var recorded: [Int64: AccountEntry] = [:]
    var deposit: Int128 = 0
    var debt: Int128 = 0

    init(entries: [AccountEntry]) {
        pending = entries
    }

    /// Coupon credit valid at `time`.
    func couponCredit(at time: Int64) -> Int128 {
        coupons.filter { $0.from <= time && ($0.expires.map { time < $0 } ?? true) }.reduce(0) { $0 + $1.remaining }
    }

    /// When a line is settled: a prepaid month when it begins, used time when its span ends (pay as you go).
    static func settled(_ line: LineItem) -> Int64 { line.unit == "month" ? line.start : line.end }

    /// Pays the lines in the order they are settled, applying the entries made before each; then applies entries up
    /// to `until`.
    mutating func play(_ lines: [LineItem], until: Int64) -> (discounts: Money, coupons: Money, deposits: Money) {
        var discounted: Int128 = 0, byCoupons: Int128 = 0, byDeposits: Int128 = 0
        for line in lines.sorted(by: { (Self.settled($0), $0.address) < (Self.settled($1), $1.address) }) {
            let time = Self.settled(line)
            byDeposits += take(before: time)
            var amount = line.total.micros
            if let discount = discounts.filter({ $0.from <= time && ($0.expires.map { time < $0 } ?? true) }).map(\.ppm).max() {
                let off = Rating.mulDiv(amount, Int128(discount), 1_000_000)
                discounted += off
                amount -= off
            }
            let order = coupons.indices.filter { coupons[$0].from <= time && (coupons[$0].expires.map { time < $0 } ?? true) }
                .sorted { (coupons[$0].expires ?? .max) < (coupons[$1].expires ?? .max) }
            for index in order where amount > 0 {
                let used = min(amount, coupons[index].remaining)
                coupons[index].remaining -= used
                amount -= used
                byCoupons += used
            }
            let fromDeposit = min(amount, max(0, deposit))
            deposit -= fromDeposit
            byDeposits += fromDeposit
            debt += amount - fromDeposit
        }
        byDeposits += take(before: until)
        return (Money(micros: discounted), Money(micros: byCoupons), Money(micros: byDeposits))
    }

    /// Applies the entries made before `time`; returns what deposits paid of the debt.
    private mutating func take(before time: Int64) -> Int128 {
        var paidDebt: Int128 = 0
        while let entry = pending.first, entry.at < time {
            pending.removeFirst()
            switch entry.kind {
            case .deposit:
                let paid = min(debt, entry.amount.micros)
                debt -= paid
                paidDebt += paid
                deposit += entry.amount.micros - paid
            case .coupon:
                if entry.amount.micros > 0 { coupons.append((entry.amount.micros, entry.at, entry.expires, entry.id)) }
                if entry.discountPPM > 0 { discounts.append((entry.discountPPM, entry.at, entry.expires, entry.id)) }
            case .reversal:
                // Takes back what the entry put in from now on: a deposit's amount (what was already spent of it becomes
                // owed), a coupon's credit left and its discount.
                guard let target = entry.reverses.flatMap({ recorded[$0] }) else { break }
                switch target.kind {
                case .deposit:
                    deposit -= target.amount.micros
                    if deposit < 0 {
                        debt -= deposit
                        deposit = 0
                    }
                case .coupon:
                    coupons.removeAll { $0.entry == target.id }
                    discounts.removeAll { $0.entry == target.id }
                case .reversal:
                    break
                }
            }
            if let id = entry.id { recorded[id] = entry }
        }
        return paidDebt
    }
}
