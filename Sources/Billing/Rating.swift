import Manifests
import Planning

/// One line of a statement: what was charged for one resource at one price within the month.
public struct LineItem: Sendable, Codable, Hashable {
    /// What was metered, and its statement category (`instances`, `volumes`, `floating IPs`, `load balancers`).
    public var kind: MeterKind
    public var category: String
    public var address: String
    /// The flavor or size.
    public var item: String
    public var unitPrice: Money
    /// hour, day, month, GB-month.
    public var unit: String
    /// The span charged within the month.
    public var start: Int64
    public var end: Int64
    /// Periods charged, in millionths (a fraction only with exact rounding or GB-months).
    public var quantityMicros: Int64
    public var total: Money
    /// Why it costs nothing: the price list has no price for it.
    public var unpriced: Bool
}

/// Rates metering intervals against the price lists' history. Pure and deterministic: the same ledger and history
/// always give the same lines, to the millionth.
///
/// A resource is charged per period (hour, day, or prepaid calendar month) counted from its interval's start; each
/// period is charged in the month it begins, at the price in force when it begins (a price change is never
/// retroactive). With rounding `up` a period that has begun is charged whole; with `exact`, the last, partial one pro
/// rata. A volume is charged per hour at the GB-month price × GB / 730.
public enum Rating {
    static let hoursPerMonth: Int64 = 730

    /// The lines `interval` costs in `month`, counting a running interval up to `now`.
    public static func lines(_ interval: MeterInterval, month: BillingMonth, book: PriceBook, now: Int64) -> [LineItem] {
        var lines: [LineItem] = []
        rate(interval, month: month, book: book, now: now) { span, unitPrice, unit, quantity, total, unpriced in
            lines.append(LineItem(kind: interval.kind, category: interval.kind.category, address: interval.address.description, item: interval.item, unitPrice: unitPrice, unit: unit,
                                  start: span.start, end: span.end, quantityMicros: quantity, total: total, unpriced: unpriced))
        }
        return lines
    }

    /// The total `interval` costs in `month` (what `lines` adds up to, without building them).
    public static func total(_ interval: MeterInterval, month: BillingMonth, book: PriceBook, now: Int64) -> Money {
        var sum: Int128 = 0
        rate(interval, month: month, book: book, now: now) { _, _, _, _, total, _ in sum += total.micros }
        return Money(micros: sum)
    }


    private static func rate(_ interval: MeterInterval, month: BillingMonth, book: PriceBook, now: Int64,
                             emit: ((start: Int64, end: Int64), Money, String, Int64, Money, Bool) -> Void) {
        // A running interval has begun its first period at its start, even when it is rated in that same second (a
        // bill right after an apply charges what the apply started); a closed one counts only the time it ran.
        let end = interval.stop.map { min($0, now) } ?? (now >= interval.start ? max(now, interval.start + 1) : now)
        guard end > interval.start else { return }
        // Periods are charged where they begin: a period beginning before the month is not charged in it.
        for span in book.spans(interval.priceList, from: month.start, to: month.end) {
            switch interval.period {
            case .monthly:
                // Anniversaries of the start within the span (each a prepaid month charged whole when it begins).
                var k = 0
                var begin = interval.start
                while begin < span.from { k += 1; begin = Calendar.UTC.adding(months: k, to: interval.start) }
                var count: Int64 = 0
                var first: Int64?
                while begin < span.to && begin < end {
                    count += 1
                    first = first ?? begin
                    k += 1
                    begin = Calendar.UTC.adding(months: k, to: interval.start)
                }
                guard count > 0, let first else { continue }
                let price = span.prices.monthly[interval.item]
                let unit = price ?? .zero
                emit((first, min(begin, end)), unit, "month", count * 1_000_000, Money(micros: unit.micros * Int128(count)), price == nil)
            case .hourly, .daily, .gbMonth:
                let period: Int64 = interval.period == .daily ? 86_400 : 3_600
                let length = end - interval.start
                let whole = length / period
                let partial = length % period
                let rounding = span.prices.rounding
                let periods = whole + (partial > 0 ? 1 : 0)  // begun
                // Periods k with start + k·period in [span.from, span.to).
                let lo = max(0, ceilDiv(span.from - interval.start, period))
                let hi = min(periods, ceilDiv(span.to - interval.start, period))
                guard hi > lo else { continue }
                var quantity = (hi - lo) * 1_000_000
                if rounding == .exact, partial > 0, hi == periods {
                    quantity -= 1_000_000 - partial * 1_000_000 / period
                }
                let (unit, unitName, unpriced) = unitPrice(interval, span.prices)
                // In 128 bits: a price within Money.limit times any quantity a size can name does not overflow.
                let total: Int128
                if interval.period == .gbMonth {
                    total = mulDiv(unit.micros * Int128(max(0, interval.quantity)), Int128(quantity), Int128(hoursPerMonth) * 1_000_000)
                } else {
                    total = mulDiv(unit.micros, Int128(quantity), 1_000_000)
                }
                let from = interval.start + lo * period
                // A volume's quantity is in GB-months: GB × hours / 730.
                let shown = interval.period == .gbMonth ? mulDiv(quantity, interval.quantity, hoursPerMonth) : quantity
                emit((from, min(interval.start + hi * period, end)), unit, unitName, shown, Money(micros: total), unpriced)
            }
        }
    }

    /// The price per period of an hourly, daily or GB-month interval, its unit's name, and whether it is missing.
    private static func unitPrice(_ interval: MeterInterval, _ prices: Prices) -> (Money, String, Bool) {
        let price: Money?
        let unit: String
        switch interval.period {
        case .hourly: (price, unit) = (prices.hourly[interval.item], "hour")
        case .daily: (price, unit) = (interval.kind == .loadBalancer ? prices.loadBalancerDaily : prices.floatingIPDaily, "day")
        case .gbMonth: (price, unit) = (prices.volumePerGBMonth, "GB-month")
        case .monthly: (price, unit) = (prices.monthly[interval.item], "month")
        }
        return (price ?? .zero, unit, price == nil)
    }

    /// The bandwidth lines of `usage` (one tenant's) in `month`: per instance, scope and price, the bytes it sent in the
    /// hours of the month, at the price per GB (10⁹ bytes) in force in each hour. Received bytes are not charged, and
    /// neither is a scope its price list gives no price.
    public static func trafficLines(_ usage: [TrafficUsage], month: BillingMonth, book: PriceBook) -> [LineItem] {
        struct Key: Hashable { var instance: Address; var scope: TrafficCounter.Scope; var price: Money }
        var groups: [Key: (bytes: Int64, start: Int64, end: Int64)] = [:]
        for row in usage where row.direction == .outbound && row.hour >= month.start && row.hour < month.end {
            guard let price = trafficPrice(row, book: book) else { continue }
            let key = Key(instance: row.instance, scope: row.scope, price: price)
            let group = groups[key] ?? (0, row.hour, row.hour + 3_600)
            groups[key] = (group.bytes + row.bytes, min(group.start, row.hour), max(group.end, row.hour + 3_600))
        }
        return groups.map { key, group in
            LineItem(kind: .bandwidth, category: MeterKind.bandwidth.category, address: key.instance.description,
                     item: key.scope == .public ? "public out" : "internal out", unitPrice: key.price, unit: "GB", start: group.start, end: group.end,
                     quantityMicros: mulDiv(group.bytes, 1, 1_000), total: Money(micros: mulDiv(key.price.micros, Int128(group.bytes), 1_000_000_000)),
                     unpriced: false)
        }
    }

    /// A month's stored bytes, one line per account and price: each hour's sample held for that hour, in GB-months
    /// (10⁹ bytes for 730 hours).
    public static func storageLines(_ usage: [StorageUsage], month: BillingMonth, book: PriceBook) -> [LineItem] {
        struct Key: Hashable { var account: String; var price: Money }
        var groups: [Key: (byteHours: Int64, start: Int64, end: Int64)] = [:]
        for row in usage where row.hour >= month.start && row.hour < month.end {
            guard let price = book.prices(row.priceList, at: row.hour)?.storagePerGBMonth else { continue }
            let key = Key(account: row.account, price: price)
            let group = groups[key] ?? (0, row.hour, row.hour + 3_600)
            groups[key] = (group.byteHours + row.bytes, min(group.start, row.hour), max(group.end, row.hour + 3_600))
        }
        return groups.map { key, group in
            LineItem(kind: .storage, category: MeterKind.storage.category, address: key.account, item: "stored", unitPrice: key.price, unit: "GB-month",
                     start: group.start, end: group.end, quantityMicros: mulDiv(group.byteHours, 1, hoursPerMonth * 1_000),
                     total: Money(micros: mulDiv(key.price.micros, Int128(group.byteHours), Int128(hoursPerMonth) * 1_000_000_000)), unpriced: false)
        }
    }

    /// What one hour's stored bytes cost, rated on its own (the second way `bill --verify` adds a month up).
    public static func storageTotal(_ row: StorageUsage, book: PriceBook) -> Money {
        guard let price = book.prices(row.priceList, at: row.hour)?.storagePerGBMonth else { return .zero }
        return Money(micros: mulDiv(price.micros, Int128(row.bytes), Int128(hoursPerMonth) * 1_000_000_000))
    }

    /// What one hour's sent bytes cost, rated on its own (the second way `bill --verify` adds a month up).
    public static func trafficTotal(_ row: TrafficUsage, book: PriceBook) -> Money {
        guard row.direction == .outbound, let price = trafficPrice(row, book: book) else { return .zero }
        return Money(micros: mulDiv(price.micros, Int128(row.bytes), 1_000_000_000))
    }

    /// The price per GB of a usage row's scope in force in its hour; nil when its list charges nothing for it.
    static func trafficPrice(_ row: TrafficUsage, book: PriceBook) -> Money? {
        let prices = book.prices(row.priceList, at: row.hour)
        return row.scope == .public ? prices?.bandwidthPerGB : prices?.internalBandwidthPerGB
    }

    static func ceilDiv(_ a: Int64, _ b: Int64) -> Int64 {
        a >= 0 ? (a + b - 1) / b : -((-a) / b)
    }

    /// a × b / c (c > 0, a and b not negative) rounded half to even, without overflowing in between.
    static func mulDiv<T: FixedWidthInteger & SignedInteger>(_ a: T, _ b: T, _ c: T) -> T {
        let product = a.multipliedFullWidth(by: b)
        let (q, r) = c.dividingFullWidth(product)
        let twice = 2 * r
        return twice > c || (twice == c && q % 2 != 0) ? q + 1 : q
    }
}
