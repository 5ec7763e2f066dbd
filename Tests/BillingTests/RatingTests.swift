import Billing
import Manifests
import Planning
import Testing

/// Rating is exact and never retroactive: periods are counted from each interval's start and charged in the month
/// they begin, at the price in force when they begin.
@Suite struct RatingTests {
    static func time(_ text: String) -> Int64 { Calendar.UTC.parse(text)! }
    static func money(_ text: String) -> Money { Money(parsing: text)! }

    /// One price list, `standard`, from the start of time.
    static func book(rounding: Prices.Rounding = .up, hourly: String = "0.50") -> PriceBook {
        var book = PriceBook()
        book.add("standard", from: .min, Prices(currency: "CNY", hourly: ["m1.small": money(hourly), "m1.large": money("2.00")],
                                                monthly: ["m1.small": money("300"), "m1.large": money("1200")], floatingIPDaily: money("0.50"),
                                                volumePerGBMonth: money("0.30"), rounding: rounding))
        return book
    }

    static func interval(kind: MeterKind = .instance, item: String = "m1.small", quantity: Int64 = 1, period: ChargePeriod = .hourly,
                         _ start: String, _ stop: String?) -> MeterInterval {
        MeterInterval(address: Address(kind: kind == .volume ? .volume : kind == .floatingIP ? .floatingIP : .instance, region: "lab", tenant: "acme", name: "x"),
                      tenant: "acme", kind: kind, item: item, quantity: quantity, period: period, priceList: "standard",
                      start: time(start), stop: stop.map(time))
    }

    static let october = BillingMonth(year: 2026, month: 10), november = BillingMonth(year: 2026, month: 11)
    static let later = time("2027-01-01")

    @Test func calendarArithmetic() {
        #expect(Calendar.UTC.parts(Self.time("2024-02-29T13:45")) == (2024, 2, 29, 13 * 3600 + 45 * 60))
        #expect(Calendar.UTC.format(Calendar.UTC.adding(months: 1, to: Self.time("2026-01-31T10:00"))) == "2026-02-28 10:00")
        #expect(Calendar.UTC.format(Calendar.UTC.adding(months: 13, to: Self.time("2023-01-31"))) == "2024-02-29 00:00")
        #expect(BillingMonth(parsing: "2026-12")!.end == Self.time("2027-01-01"))
        #expect(Money(micros: 12_345).roundedToCents == Money(micros: 10_000) && Money(micros: 15_000).roundedToCents == Money(micros: 20_000)
                && Money(micros: 25_000).roundedToCents == Money(micros: 20_000), "half to even")
    }

    @Test func hourlyRoundsUpAStartedHourOnceAcrossAMonthBoundary() {
        // 1 h 40 min from 23:30 on 31 October: the hour beginning 23:30 is October's, the one beginning 00:30 November's.
        let running = Self.interval("2026-10-31T23:30", "2026-11-01T01:10")
        #expect(Rating.total(running, month: Self.october, book: Self.book(), now: Self.later) == Self.money("0.50"))
        #expect(Rating.total(running, month: Self.november, book: Self.book(), now: Self.later) == Self.money("0.50"))
        // Exact rounding charges the second hour's 40 minutes pro rata.
        #expect(Rating.total(running, month: Self.november, book: Self.book(rounding: .exact), now: Self.later) == Self.money("0.333333"))
        // Still running: charged up to now, a started hour whole.
        let open = Self.interval("2026-11-01T00:00", nil)
        #expect(Rating.total(open, month: Self.november, book: Self.book(), now: Self.time("2026-11-02T00:01")) == Self.money("12.50"))
    }

    /// A bill made in the very second an apply started something charges its first begun period; an interval that
    /// opened and closed in one second ran for no time and costs nothing.
    @Test func aRunningIntervalHasBegunItsFirstPeriodAtItsStart() {
        let started = Self.interval("2026-11-02T10:00", nil)
        #expect(Rating.total(started, month: Self.november, book: Self.book(), now: Self.time("2026-11-02T10:00")) == Self.money("0.50"))
        let blink = Self.interval("2026-11-02T10:00", "2026-11-02T10:00")
        #expect(Rating.total(blink, month: Self.november, book: Self.book(), now: Self.later) == .zero)
        #expect(Rating.total(started, month: Self.november, book: Self.book(), now: Self.time("2026-11-02T09:00")) == .zero, "not started yet")
    }

    @Test func dailyRoundsUpAcrossAMonthBoundary() {
        let floating = Self.interval(kind: .floatingIP, item: "", period: .daily, "2026-10-31T12:00", "2026-11-02T00:00")
        #expect(Rating.lines(floating, month: Self.october, book: Self.book(), now: Self.later).map(\.quantityMicros) == [1_000_000])
        #expect(Rating.lines(floating, month: Self.november, book: Self.book(), now: Self.later).map(\.quantityMicros) == [1_000_000])
        #expect(Rating.total(floating, month: Self.november, book: Self.book(), now: Self.later) == Self.money("0.50"))
    }

    @Test func prepaidMonthsAreChargedWholeOnTheirAnniversaries() {
        let prepaid = Self.interval(period: .monthly, "2026-01-31T10:00", "2026-04-15")
        let months = (1...5).map { Rating.total(prepaid, month: BillingMonth(year: 2026, month: $0), book: Self.book(), now: Self.later) }
        #expect(months == [Self.money("300"), Self.money("300"), Self.money("300"), Self.money("0"), Self.money("0")], "31 Jan, 28 Feb, 31 Mar: \(months)")
        let lines = Rating.lines(prepaid, month: BillingMonth(year: 2026, month: 2), book: Self.book(), now: Self.later)
        #expect(lines.map { Calendar.UTC.format($0.start) } == ["2026-02-28 10:00"])
    }

    @Test func aFlavorChangeMidPeriodClosesOneIntervalAndOpensAnother() {
        let small = Self.interval("2026-11-01T00:00", "2026-11-10T12:30")
        let large = Self.interval(item: "m1.large", "2026-11-10T12:30", "2026-12-01T00:00")
        let book = Self.book()
        // 228.5 h of m1.small (229 begun) and 491.5 h of m1.large (492 begun).
        #expect(Rating.lines(small, month: Self.november, book: book, now: Self.later).map(\.quantityMicros) == [229_000_000])
        #expect(Rating.total(small, month: Self.november, book: book, now: Self.later) == Self.money("114.50"))
        #expect(Rating.total(large, month: Self.november, book: book, now: Self.later) == Self.money("984.00"))
    }

    @Test func aPriceChangeAppliesFromItsTimeForwardNeverBack() {
        var book = Self.book(hourly: "1.00")
        book.add("standard", from: Self.time("2026-11-15T12:00"), Prices(currency: "CNY", hourly: ["m1.small": Self.money("2.00")]))
        let november = Self.interval("2026-11-01T00:00", "2026-12-01T00:00")
        let lines = Rating.lines(november, month: Self.november, book: book, now: Self.later)
        // 348 hours before the change at 1.00, 372 after at 2.00.
        #expect(lines.map(\.quantityMicros) == [348_000_000, 372_000_000])
        #expect(lines.map(\.total) == [Self.money("348"), Self.money("744")])
        // October, rated after the change, is what it was.
        let october = Self.interval("2026-10-01T00:00", "2026-11-01T00:00")
        #expect(Rating.total(october, month: Self.october, book: book, now: Self.later) == Self.money("744"))
    }

    @Test func volumesAreChargedPerGBMonthByTheHour() {
        let volume = Self.interval(kind: .volume, item: "200GiB", quantity: 200, period: .gbMonth, "2026-11-01T00:00", "2026-12-01T00:00")
        // 0.30 × 200 GB × 720 h / 730 h = 59.178082…
        #expect(Rating.total(volume, month: Self.november, book: Self.book(), now: Self.later) == Self.money("59.178082"))
        #expect(Rating.lines(volume, month: Self.november, book: Self.book(), now: Self.later).first?.quantityMicros == 197_260_274, "GB-months")
    }

    @Test func couponsArePaidFirstUntilTheyExpireAndDepositsPayDebtsFirst() {
        let intervals = [Self.interval("2026-11-01T00:00", "2026-12-01T00:00")]  // 720 h × 0.50 = 360
        func statement(_ accounts: [AccountEntry], month: BillingMonth = Self.november) -> Statement {
            Biller(intervals: intervals, accounts: accounts, book: Self.book(), now: Self.later).statement("acme", month: month)
        }
        func coupon(_ amount: String, at: String, expires: String?) -> AccountEntry {
            AccountEntry(tenant: "acme", kind: .coupon, amount: Self.money(amount), currency: "CNY", reference: "C\(at)", by: "test", at: Self.time(at),
                         expires: expires.map(Self.time))
        }
        // Used time is settled when its span ends (30 November): a coupon that expired on the 15th pays nothing.
        let expired = statement([coupon("100", at: "2026-11-02", expires: "2026-11-15")])
        #expect(expired.paidByCoupons == Self.money("0") && expired.owed == Self.money("360") && expired.couponCredit == Self.money("0"))
        // One valid then pays first, then the deposit; what is left is the balance.
        let paid = statement([coupon("100", at: "2026-11-02", expires: "2027-01-31"),
                              AccountEntry(tenant: "acme", kind: .deposit, amount: Self.money("500"), currency: "CNY", reference: "", by: "test", at: Self.time("2026-11-03"))])
        #expect(paid.paidByCoupons == Self.money("100") && paid.paidByDeposits == Self.money("260") && paid.depositBalance == Self.money("240"))
        #expect(paid.balance == Self.money("240"))
        // A deposit made after the month pays its debt first.
        let late = [AccountEntry(tenant: "acme", kind: .deposit, amount: Self.money("400"), currency: "CNY", reference: "", by: "test", at: Self.time("2026-12-05"))]
        #expect(statement(late).owed == Self.money("360"))
        let december = statement(late, month: BillingMonth(year: 2026, month: 12))
        #expect(december.owed == Self.money("0") && december.depositBalance == Self.money("40") && december.paidByDeposits == Self.money("360"))
        // A percent coupon discounts while valid.
        let percent = AccountEntry(tenant: "acme", kind: .coupon, amount: Money(micros: 0), discountPPM: 200_000, currency: "CNY", reference: "P",
                                   by: "test", at: Self.time("2026-10-01"), expires: Self.time("2027-01-01"))
        #expect(statement([percent]).discounts == Self.money("72") && statement([percent]).owed == Self.money("288"))
    }

    /// A CSV cell a spreadsheet would run as a formula is neutralised; one with a comma, quote or line break is quoted.
    @Test func csvCellsNeverRunAsFormulas() {
        #expect(Statement.csvField("=HYPERLINK(\"x\")") == "\"'=HYPERLINK(\"\"x\"\")\"")
        #expect(["+1", "-1", "@SUM(A1)"].map(Statement.csvField) == ["'+1", "'-1", "'@SUM(A1)"])
        #expect(Statement.csvField("a,b") == "\"a,b\"" && Statement.csvField("line\nbreak") == "\"line\nbreak\"" && Statement.csvField("instance/lab/acme/web-1") == "instance/lab/acme/web-1")
    }

    /// Bandwidth: sent bytes are charged per GB (10⁹ bytes) at the price in force in their hour; received bytes and a scope
    /// without a price are not charged; a month's lines add up to its hours rated one by one.
    @Test func sentBytesAreChargedPerGBAtTheirHoursPrice() {
        var book = PriceBook()
        book.add("standard", from: .min, Prices(currency: "CNY", bandwidthPerGB: Self.money("0.8")))
        book.add("standard", from: Self.time("2026-11-15"), Prices(currency: "CNY", bandwidthPerGB: Self.money("1.0")))
        let web = Address(kind: .instance, region: "lab", tenant: "acme", name: "web")
        let rows = [
            TrafficUsage(tenant: "acme", instance: web, direction: .outbound, scope: .public, priceList: "standard", hour: Self.time("2026-11-02"), bytes: 2_000_000_000),
            TrafficUsage(tenant: "acme", instance: web, direction: .outbound, scope: .public, priceList: "standard", hour: Self.time("2026-11-20"), bytes: 500_000_000),
            TrafficUsage(tenant: "acme", instance: web, direction: .inbound, scope: .public, priceList: "standard", hour: Self.time("2026-11-20"), bytes: 9_000_000_000),
            TrafficUsage(tenant: "acme", instance: web, direction: .outbound, scope: .internal, priceList: "standard", hour: Self.time("2026-11-20"), bytes: 9_000_000_000),
        ]
        let month = BillingMonth(parsing: "2026-11")!
        let lines = Rating.trafficLines(rows, month: month, book: book).sorted { $0.start < $1.start }
        #expect(lines.map(\.total) == [Self.money("1.6"), Self.money("0.5")] && lines.allSatisfy { $0.item == "public out" && $0.unit == "GB" }, "\(lines)")
        #expect(rows.map { Rating.trafficTotal($0, book: book) }.reduce(Money.zero, +) == Self.money("2.1"))
        let statement = Biller(intervals: [], traffic: rows, accounts: [], book: book, now: Self.time("2026-12-01")).statement("acme", month: month)
        #expect(statement.total(of: .bandwidth) == Self.money("2.1") && statement.charges == Self.money("2.1"))
    }

    /// Stored bytes: each hour's sample held for that hour, per GB-month (10⁹ bytes for 730 hours), at the hour's price.
    @Test func storedBytesAreChargedPerGBMonthHourByHour() {
        var book = PriceBook()
        book.add("standard", from: .min, Prices(currency: "CNY", storagePerGBMonth: Self.money("0.73")))
        book.add("standard", from: Self.time("2026-11-15"), Prices(currency: "CNY", storagePerGBMonth: Self.money("1.46")))
        // 10 GB for 73 hours early in the month (0.73 × 10 × 73 / 730 = 0.73), then 1 GB for 10 hours after the change.
        var rows = (0..<73).map { StorageUsage(tenant: "acme", region: "lab", priceList: "standard", hour: Self.time("2026-11-02") + Int64($0) * 3_600, bytes: 10_000_000_000) }
        rows += (0..<10).map { StorageUsage(tenant: "acme", region: "lab", priceList: "standard", hour: Self.time("2026-11-20") + Int64($0) * 3_600, bytes: 1_000_000_000) }
        let month = BillingMonth(parsing: "2026-11")!
        let lines = Rating.storageLines(rows, month: month, book: book).sorted { $0.start < $1.start }
        #expect(lines.map(\.total) == [Self.money("0.73"), Self.money("0.02")] && lines.allSatisfy { $0.address == "account/lab/acme" && $0.unit == "GB-month" }, "\(lines)")
        #expect(lines.first?.quantityMicros == 1_000_000, "10 GB for a tenth of a month is one GB-month")
        #expect(rows.map { Rating.storageTotal($0, book: book) }.reduce(Money.zero, +) == Self.money("0.75"))
        let statement = Biller(intervals: [], storage: rows, accounts: [], book: book, now: Self.time("2026-12-01")).statement("acme", month: month)
        #expect(statement.total(of: .storage) == Self.money("0.75") && statement.totals.map(\.category).contains("storage"))
    }
}
