import ArgumentParser
import Billing
import Foundation
import Manifests
import Planning
import Reconcile
import StackLabCLI

/// `stacklab-bench billing`: rate a year of ledger for 100,000 instances.
struct BenchBilling: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "billing",
        abstract: "Rate a year of ledger: 100,000 hourly instances of 1,000 tenants, a third with a flavor change, under two price-list versions.",
        discussion: """
            The ledger is generated in memory (deterministic): every instance starts some time in 2026, a third change \
            flavor later in the year (closing one interval, opening another), a tenth are deleted; the price list \
            changes once, on 1 July. Timed in process, median of --runs:
              rate        every instance's charges for each of the 12 months (Biller.totals: what --verify compares)
              statements  every tenant's December statement with line items and its account played forward
            """)

    @Option(help: "Instances in the ledger.")
    var instances = 100_000

    @Option(help: "Runs of each measurement (the median is reported).")
    var runs = 3

    @Option(help: "text or json.")
    var format: OutputFormat = .text

    func run() throws {
        let flavors = ["m1.tiny", "m1.small", "m1.large", "ssd.tiny", "ssd.small"]
        let year = Calendar.UTC.seconds(year: 2026, month: 1, day: 1)
        let end = Calendar.UTC.seconds(year: 2027, month: 1, day: 1)
        var seed: UInt64 = 0x5eed_b111
        func random(_ bound: Int64) -> Int64 {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            return Int64((seed >> 33) % UInt64(bound))
        }
        var intervals: [MeterInterval] = []
        intervals.reserveCapacity(instances * 4 / 3)
        for index in 0..<instances {
            let tenant = "tenant-\(index % 1000)"
            let address = Address(kind: .instance, region: "bench", tenant: tenant, name: "vm-\(index)")
            let start = year + random(300 * 86_400)
            let stop: Int64? = index % 10 == 0 ? start + 86_400 + random(60 * 86_400) : nil
            var item = flavors[index % flavors.count]
            if index % 3 == 0 {
                let change = start + 3_600 + random(max(3_601, (stop ?? end) - start - 3_600))
                intervals.append(MeterInterval(address: address, tenant: tenant, kind: .instance, item: item, period: .hourly, priceList: "standard",
                                               start: start, stop: change))
                item = flavors[(index + 1) % flavors.count]
                intervals.append(MeterInterval(address: address, tenant: tenant, kind: .instance, item: item, period: .hourly, priceList: "standard",
                                               start: change, stop: stop))
            } else {
                intervals.append(MeterInterval(address: address, tenant: tenant, kind: .instance, item: item, period: .hourly, priceList: "standard",
                                               start: start, stop: stop))
            }
        }
        var book = PriceBook()
        let prices = ["0.17", "0.67", "3.33", "0.33", "1.00"].compactMap(Money.init(parsing:))
        book.add("standard", from: .min, Prices(currency: "CNY", hourly: Dictionary(uniqueKeysWithValues: zip(flavors, prices))))
        book.add("standard", from: Calendar.UTC.seconds(year: 2026, month: 7, day: 1),
                 Prices(currency: "CNY", hourly: Dictionary(uniqueKeysWithValues: zip(flavors, prices.map { Money(micros: $0.micros * 11 / 10) }))))
        let biller = Biller(intervals: intervals, accounts: [], book: book, now: end)
        let months = (1...12).map { BillingMonth(year: 2026, month: $0) }

        var rateTimes: [Double] = [], statementTimes: [Double] = []
        var total: Int128 = 0, lines = 0
        for _ in 0..<runs {
            var start = DispatchTime.now().uptimeNanoseconds
            total = biller.totals(months: months).values.reduce(0) { $0 + $1.reduce(0) { $0 + $1.micros } }
            rateTimes.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
            start = DispatchTime.now().uptimeNanoseconds
            let byTenant = Biller.byTenant(biller)
            lines = byTenant.reduce(0) { $0 + $1.statement(month: months[11]).lines.count }
            statementTimes.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        let rss = ResidentMemory.peakMB()
        func row(_ name: String, _ times: [Double], _ detail: String) -> BenchRow {
            let sorted = times.sorted()
            return BenchRow(name: name, medianSeconds: sorted[sorted.count / 2], minSeconds: sorted[0], maxSeconds: sorted[sorted.count - 1],
                            peakRSSMB: rss, detail: detail)
        }
        let report = BenchReport(workload: "\(instances) instances, \(intervals.count) hourly intervals, 1,000 tenants, 12 months of 2026",
                                 cores: ProcessInfo.processInfo.activeProcessorCount, runs: runs, rows: [
            row("rate", rateTimes, "\(Money(micros: total).cents) CNY charged over the year (target ≤ 2 s, ≤ 500 MB)"),
            row("statements", statementTimes, "1,000 December statements, \(lines) line items"),
        ])
        Terminal.standardOutput.write(format == .json ? try JSON.encode(report) : report.table)
    }
}
