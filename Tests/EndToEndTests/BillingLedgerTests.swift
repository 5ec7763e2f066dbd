import Billing
import Foundation
import GRDB
import Drivers
import Manifests
import Planning
import Processes
import StateSQLite
import TestSupport
import Testing
@testable import Reconcile

/// The ledger is written by the apply run, in the journal's transactions: an interval opens when a change that makes
/// a billed resource began, a flavor change switches it, a delete stops it when requested whatever the teardown does,
/// and neither a replay nor a crash at any point charges twice or loses a charge.
@Suite(.serialized) struct BillingLedgerTests {
    typealias World = ConvergeWorld
    static let t0 = Calendar.UTC.parse("2026-11-01T00:00")!
    static let t1 = Calendar.UTC.parse("2026-11-10T12:30")!

    /// Applies the world's HEAD at `time`, with `wrap` around each driver.
    @discardableResult
    static func apply(_ world: World, at time: Int64, wrap: (any NodeDriver) -> any NodeDriver = { $0 }) throws -> Applier.Report {
        let reconciler = try world.reconciler()
        let regions = try reconciler.regions([])
        let drivers = try reconciler.drivers(for: regions).mapValues(wrap)
        let plan = try reconciler.refreshPlan(regions, drivers: drivers)
        return try Applier(attempts: 1).apply(plan, drivers: drivers, state: try SQLiteState(directory: world.state.path, clock: { time }))
    }

    /// Applies at t0, then gives web-1 a larger flavor and applies at t1.
    static func applyThenResizeWebOne(_ world: World) throws {
        try apply(world, at: t0)
        let acme = try String(contentsOfFile: world.repo.file("manifests/tenants/acme.yaml"), encoding: .utf8)
        try world.commit("manifests/tenants/acme.yaml", acme.replacingOccurrences(of: "  flavor: m1.small\n", with: "  flavor: m1.large\n"))
        #expect(try apply(world, at: t1).succeeded)
    }

    static func intervals(_ world: World) throws -> [MeterInterval] {
        try SQLiteState(directory: world.state.path).meterIntervals(tenant: nil)
    }

    @Test func everyBilledResourceIsMeteredFromWhenItsChangeBegan() throws {
        let world = try World()
        try Self.apply(world, at: Self.t0)
        let metered = try Self.intervals(world).filter { $0.tenant == "acme" }
        let summary = metered.map { "\($0.kind) \($0.address) \($0.item) \($0.period.rawValue)" }.sorted()
        #expect(summary == ["floatingIP floatingip/lab/acme/web  daily", "instance instance/lab/acme/web-1 m1.small hourly",
                            "instance instance/lab/acme/web-2 m1.large hourly", "volume volume/lab/acme/data 100GiB gbMonth"], "\(summary)")
        #expect(metered.allSatisfy { $0.start == Self.t0 && $0.stop == nil && $0.priceList == "standard" })
        // Applying again changes nothing and charges nothing twice.
        try Self.apply(world, at: Self.t1)
        #expect(try Self.intervals(world).filter { $0.tenant == "acme" }.count == 4)
    }

    @Test func aFlavorChangeClosesOneIntervalAndOpensAnother() throws {
        let world = try World()
        try Self.applyThenResizeWebOne(world)
        let web1 = try Self.intervals(world).filter { $0.address.description == "instance/lab/acme/web-1" }.map { "\($0.item) \($0.start)-\($0.stop.map(String.init) ?? "")" }
        #expect(web1 == ["m1.small \(Self.t0)-\(Self.t1)", "m1.large \(Self.t1)-"], "\(web1)")
    }

    @Test func aDeleteStopsChargingWhenRequestedEvenIfItsTeardownFails() throws {
        let world = try World()
        try Self.apply(world, at: Self.t0)
        let acme = try String(contentsOfFile: world.repo.file("manifests/tenants/acme.yaml"), encoding: .utf8)
        try world.commit("manifests/tenants/acme.yaml", acme.replacingOccurrences(of: "kind: Instance\nname: web-2\nregion: lab\ntenant: acme\nspec: {flavor: m1.large, image: ubuntu, network: private, keypair: deploy}\n---\n", with: ""))
        let report = try Self.apply(world, at: Self.t1) { driver in
            FailingNode(wrapping: driver) { if case .deleteDomain = $0 { true } else { false } }
        }
        #expect(!report.succeeded, "the teardown failed")
        #expect(try world.observed().flatMap(\.domains).contains { $0.name == "acme:web-2" }, "web-2 still runs")
        let web2 = try Self.intervals(world).filter { $0.address.description == "instance/lab/acme/web-2" }
        #expect(web2.count == 1 && web2[0].stop == Self.t1, "billing stopped when the delete was requested: \(web2)")
        // The retry succeeds later; the interval is not touched again.
        try Self.apply(world, at: Self.t1 + 86_400)
        #expect(try Self.intervals(world).filter { $0.address.description == "instance/lab/acme/web-2" }.map(\.stop) == [Self.t1])
    }

    @Test func billVerifyFindsEveryBrokenIntervalInvariant() throws {
        let world = try World()
        try Self.applyThenResizeWebOne(world)
        func verify() throws -> Command.Result {
            try StackLabBinary.run(["bill", "--verify", "--at", "2026-11-20", "--repo", world.repo.path, "--state-dir", world.state.path])
        }
        let clean = try verify()
        #expect(clean.status == 0 && clean.output.hasPrefix("verified"), "\(clean.output)")
        let database = try DatabaseQueue(path: world.state.file("stacklab.sqlite"))
        let web1 = "instance/lab/acme/web-1", web2 = "instance/lab/acme/web-2"
        // Each damage, and what verify must say of it (before, all three verified).
        let damages: [(String, String)] = [
            ("UPDATE meter_interval SET stop = start - 60 WHERE resource = '\(web1)' AND stop IS NOT NULL", "\(web1): an interval stops at 2026-10-31 23:59, before it starts"),
            ("UPDATE meter_interval SET tenant = 'other' WHERE resource = '\(web2)'", "\(web2): an interval from 2026-11-01 00:00 is billed to other, not to its owner acme"),
            ("UPDATE meter_interval SET stop = stop - 3600 WHERE resource = '\(web1)' AND stop IS NOT NULL",
             "\(web1): not billed from 2026-11-10 11:30 to 2026-11-10 12:30, and the journal has no delete of it then"),
        ]
        for (sql, finding) in damages {
            let saved = try database.read { try Row.fetchAll($0, sql: "SELECT id, tenant, start, stop FROM meter_interval") }
            try database.write { try $0.execute(sql: sql) }
            let damaged = try verify()
            #expect(damaged.status == 1 && damaged.output.contains("mismatch: \(finding)"), "\(sql): \(damaged.output)")
            try database.write { db in
                for row in saved {
                    try db.execute(sql: "UPDATE meter_interval SET tenant = ?, start = ?, stop = ? WHERE id = ?",
                                   arguments: [row["tenant"] as String, row["start"] as Int64, row["stop"] as Int64?, row["id"] as Int64])
                }
            }
        }
        #expect(try verify().status == 0, "restored")
    }

    /// The ledger as (resource, item, start, stop), for comparing runs.
    static func ledger(_ state: Scratch) throws -> [String] {
        try SQLiteState(directory: state.path).meterIntervals(tenant: nil).map { "\($0.address) \($0.item) \($0.start) \($0.stop.map(String.init) ?? "open")" }.sorted()
    }

    @Test func aKillBetweenADriverCallAndItsJournalEntryNeitherLosesNorDoublesACharge() throws {
        let at = ["--at", "2026-11-01T00:00"]
        // With a load-balancer node and two tenant load balancers: their daily meters ride on the HAProxy change.
        let reference = try World(overlay: "loadbalancers")
        let clean = try StackLabBinary.run(["apply", "--auto-approve"] + at + ["--repo", reference.repo.path, "--state-dir", reference.state.path])
        try #require(clean.status == 0, "\(clean.output)")
        let expected = try Self.ledger(reference.state)
        #expect(expected.count >= 7 && expected.filter { $0.hasPrefix("loadbalancer/lab/acme/") }.count == 2, "\(expected)")
        let changes = try SQLiteState(directory: reference.state.path).journalEntries(run: nil).count
        #expect(changes > 20)
        // A kill after every driver call of the apply (networks, rings, instances, volumes, DHCP, rulesets, and each
        // node's save of a batch), until an apply finishes before its kill point: there are more calls than changes.
        var settled = 0
        var point = 1
        while point < 10 * changes {
            let world = try World(overlay: "loadbalancers")
            let killed = try Command.run(["env", "STACKLAB_FAULT_KILL_AFTER_DRIVER_CALLS=\(point)", StackLabBinary.faults, "apply", "--auto-approve", "--parallelism", "1"]
                                         + at + ["--repo", world.repo.path, "--state-dir", world.state.path])
            if killed.status == 0 { break }  // every driver call came before this point
            let resumed = try StackLabBinary.run(["apply", "--auto-approve"] + at + ["--repo", world.repo.path, "--state-dir", world.state.path])
            #expect(resumed.status == 0, "kill point \(point): \(resumed.output.suffix(1500))")
            let ledger = try Self.ledger(world.state)
            #expect(ledger == expected, "kill point \(point): the ledger equals an uninterrupted apply's; differs in \(Set(ledger).symmetricDifference(expected).sorted())")
            let store = try SQLiteState(directory: world.state.path)
            // A kill after the last change leaves nothing for the resumed apply to do: it starts no run.
            let runs = try store.runs().map(\.status)
            #expect(runs == [.interrupted, .succeeded] || (runs == [.interrupted] && resumed.output.contains("No changes")), "kill point \(point): \(runs)")
            settled += try store.journalEntries(run: nil).count { $0.error?.contains("found done") == true }
            point += 1
        }
        #expect(point > changes, "\(point - 1) kill points for \(changes) changes")
        #expect(settled >= 3, "changes the killed runs had done were settled from the fresh plan, their meters with them")
    }
}

/// Statements from the command line: the bundled deployment billed for a simulated month, and a price change
/// committed mid-month applying from its commit time on.
@Suite struct BillingCommandTests {
    static func stacklab(_ arguments: [String], repo: Scratch, state: Scratch) throws -> Command.Result {
        try StackLabBinary.run(arguments + ["--repo", repo.path, "--state-dir", state.path])
    }

    @Test func theBundledDeploymentBillsAPlausibleMonth() throws {
        let repo = try Scratch("bundled-bill")
        for root in ManifestLayout.roots {
            try repo.overlay(from: (Fixtures.packageRoot as NSString).appendingPathComponent(root), into: root)
        }
        try GitCLI.commitAll(in: repo.path, date: "2026-10-01T00:00:00Z")
        let state = try Scratch("bundled-bill-state")
        let applied = try Self.stacklab(["apply", "--auto-approve", "--at", "2026-11-01T00:00"], repo: repo, state: state)
        try #require(applied.status == 0, "\(applied.output.suffix(1500))")
        #expect(try Self.stacklab(["account", "devops", "deposit", "20000", "--note", "invoice 2026-118", "--by", "ops", "--at", "2026-11-02"], repo: repo, state: state).status == 0)
        #expect(try Self.stacklab(["account", "sjtu-lab", "coupon", "CAMPUS", "--by", "ops", "--at", "2026-11-03"], repo: repo, state: state).status == 0)
        let again = try Self.stacklab(["account", "sjtu-lab", "coupon", "CAMPUS", "--by", "ops", "--at", "2026-11-04"], repo: repo, state: state)
        #expect(again.status == 1 && again.output.contains("already redeemed"), "\(again.output)")

        let devops = try Self.stacklab(["bill", "devops", "--month", "2026-11", "--at", "2026-12-01", "--format", "json"], repo: repo, state: state)
        try #require(devops.status == 0, "\(devops.output)")
        let statement = try JSONDecoder().decode(Statement.self, from: Data(devops.output.utf8))
        // devops prepays: four m1.large at 2000 and two m1.small at 400 a month; two floating IPs for 30 days at 0.50;
        // the load balancer www for 30 days at 1.00; 200 GiB and 500 GiB of volumes for 720 hours at 0.30 per GB-month.
        #expect(statement.total(of: .instance) == Money(parsing: "8800"))
        #expect(statement.total(of: .floatingIP) == Money(parsing: "30"))
        #expect(statement.total(of: .loadBalancer) == Money(parsing: "30"), "www: 30 started days at 1.00")
        #expect(statement.total(of: .volume).roundedToCents == Money(parsing: "207.12"), "\(statement.totals)")
        #expect(statement.totals.map(\.category) == ["instances", "volumes", "floating IPs", "load balancers", "bandwidth", "storage"], "every column, in meter-kind order")
        #expect(statement.paidByDeposits == statement.charges && statement.owed == Money(micros: 0))
        #expect(statement.balance.micros == Money(parsing: "20000")!.micros - statement.charges.micros)

        let all = try Self.stacklab(["bill", "--all", "--month", "2026-11", "--at", "2026-12-01"], repo: repo, state: state)
        #expect(all.status == 0 && all.output.contains("Statement for devops, 2026-11 (CNY)") && all.output.contains("Statement for sjtu-lab, 2026-11 (CNY)"),
                "\(all.output.prefix(3000))")
        #expect(all.output.contains("paid by coupons") && all.output.contains("warning: the balance is below zero"), "sjtu-lab owes: \(all.output.prefix(4000))")
        let csv = try Self.stacklab(["bill", "--all", "--month", "2026-11", "--at", "2026-12-01", "--format", "csv"], repo: repo, state: state)
        #expect(csv.output.hasPrefix("tenant,month,category,name,item,unit_price,unit,start,end,quantity,total\n"))
        #expect(csv.output.contains("devops,2026-11,instances,instance/intel/devops/gerrit,m1.large,2000.00,month,2026-11-01 00:00,2026-12-01 00:00,1,2000.00"), "\(csv.output.prefix(1500))")
        let verify = try Self.stacklab(["bill", "--verify", "--at", "2026-12-01"], repo: repo, state: state)
        #expect(verify.status == 0 && verify.output.hasPrefix("verified"), "\(verify.output)")
    }

    @Test func aPriceChangeCommittedMidMonthAppliesFromItsCommitTimeOnly() throws {
        let repo = try Fixtures.deployment()
        try GitCLI.commitAll(in: repo.path, date: "2026-10-01T00:00:00Z")
        let state = try Scratch("price-state")
        #expect(try Self.stacklab(["apply", "--auto-approve", "--at", "2026-10-20T00:00"], repo: repo, state: state).status == 0)
        let catalog = try String(contentsOfFile: repo.file("manifests/catalog.yaml"), encoding: .utf8)
        try repo.write("manifests/catalog.yaml", catalog.replacingOccurrences(of: "m1.small: {hourly: 0.67, monthly: 400}", with: "m1.small: {hourly: 1.00, monthly: 400}"))
        try GitCLI.commitAll(in: repo.path, message: "m1.small costs more", date: "2026-11-15T12:00:00Z")
        let bill = try Self.stacklab(["bill", "acme", "--month", "2026-11", "--at", "2026-12-01", "--format", "json"], repo: repo, state: state)
        try #require(bill.status == 0, "\(bill.output)")
        let web1 = try JSONDecoder().decode(Statement.self, from: Data(bill.output.utf8)).lines.filter { $0.address == "instance/lab/acme/web-1" }
        #expect(web1.map(\.unitPrice) == [Money(parsing: "0.67"), Money(parsing: "1.00")])
        #expect(web1.map(\.quantityMicros) == [348_000_000, 372_000_000], "348 hours before the commit, 372 after")
        // October's bill, made after the change, is what it was.
        let october = try Self.stacklab(["bill", "acme", "--month", "2026-10", "--at", "2026-12-01", "--format", "json"], repo: repo, state: state)
        let octoberWeb1 = try JSONDecoder().decode(Statement.self, from: Data(october.output.utf8)).lines.filter { $0.address == "instance/lab/acme/web-1" }
        #expect(octoberWeb1.map(\.unitPrice) == [Money(parsing: "0.67")] && octoberWeb1.map(\.quantityMicros) == [288_000_000], "12 days at the old price")
    }

    @Test func aLedgerHoldingHugeDepositsIsReadReportedAndReversedNeverACrash() throws {
        let repo = try Fixtures.deployment()
        try repo.write("regions/lab/region.yaml", "kind: Region\nname: lab\nspec:\n  sponsor: Fixture lab\n  creditCheck: true\n")
        try GitCLI.commitAll(in: repo.path, date: "2026-10-01T00:00:00Z")
        let state = try Scratch("huge-state")
        #expect(try Self.stacklab(["apply", "--auto-approve", "--at", "2026-11-01T00:00"], repo: repo, state: state).status == 0)
        // Two deposits of 9,000,000,000,000, as a ledger written before amounts were bounded holds them (their sum is past
        // 64 bits of millionths: before, bill, bill --verify and a plan with creditCheck trapped on it).
        let store = try SQLiteState(directory: state.path)
        for at: Int64 in [1_762_100_000, 1_762_200_000] {
            try store.recordAccount(AccountEntry(tenant: "acme", kind: .deposit, amount: Money(parsing: "9000000000000")!, currency: "CNY",
                                                 reference: "typo", by: "ops", at: at))
        }
        let bill = try Self.stacklab(["bill", "acme", "--month", "2026-11", "--at", "2026-12-01", "--format", "json"], repo: repo, state: state)
        try #require(bill.status == 0, "\(bill.output)")
        let statement = try JSONDecoder().decode(Statement.self, from: Data(bill.output.utf8))
        #expect(statement.balance.micros > Int128(Int64.max), "read and reported: \(statement.balance)")
        #expect(try Self.stacklab(["bill", "--verify", "--at", "2026-12-01"], repo: repo, state: state).status == 0)
        let acme = try String(contentsOfFile: repo.file("manifests/tenants/acme.yaml"), encoding: .utf8)
        try repo.write("manifests/tenants/acme.yaml", acme + "---\nkind: Instance\nname: web-3\nregion: lab\ntenant: acme\nspec: {flavor: m1.small, image: ubuntu, network: private}\n")
        try GitCLI.commitAll(in: repo.path, date: "2026-11-05T00:00:00Z")
        let plan = try Self.stacklab(["plan", "--at", "2026-11-10T00:00"], repo: repo, state: state)
        #expect(plan.status == 2, "exit 2: a plan with changes, not a crash: \(plan.status): \(plan.output.suffix(1500))")
        #expect(plan.output.contains("instance/lab/acme/web-3") && !plan.output.contains("held:"), "\(plan.output.suffix(1500))")

        // New amounts are bounded where they come in.
        let huge = try Self.stacklab(["account", "acme", "deposit", "9000000000000", "--at", "2026-11-11"], repo: repo, state: state)
        #expect(huge.status == 1 && huge.output.contains("a deposit is at most 1,000,000,000.00 CNY"), "\(huge.output)")
        // With --format json, every outcome is one JSON document on standard output, errors included.
        struct Answer: Decodable { var ok: Bool; var error: String? }
        for arguments in [["deposit", "9000000000000"], ["reverse", "99999", "--reason", "none such"], ["deposit", "12"]] {
            let result = try Command.run([StackLabBinary.path, "account", "acme"] + arguments
                                         + ["--format", "json", "--at", "2026-11-11", "--repo", repo.path, "--state-dir", state.path], stderr: .passedThrough)
            let answer = try JSONDecoder().decode(Answer.self, from: Data(result.output.utf8))
            #expect(answer.ok == (arguments == ["deposit", "12"]) && answer.ok == (result.status == 0), "\(arguments): \(result.output)")
        }
        let catalog = try String(contentsOfFile: repo.file("manifests/catalog.yaml"), encoding: .utf8)
        try repo.write("manifests/catalog.yaml", catalog.replacingOccurrences(of: "m1.small: {hourly: 0.67, monthly: 400}", with: "m1.small: {hourly: 9000000000000, monthly: 400}"))
        let price = try StackLabBinary.run(["validate", "--repo", repo.path])
        #expect(price.status == 1 && price.output.contains("the amount for 'hourly' is 9000000000000.00, more than StackLab accepts (1000000000.00)"), "\(price.output)")
        try repo.write("manifests/catalog.yaml", catalog)

        // The mistake is fixed by an audited reversal, not by editing the database.
        let listed = try Self.stacklab(["account", "acme", "entries", "--format", "json"], repo: repo, state: state)
        struct Listing: Decodable { var ok: Bool; var entries: [AccountEntry] }
        let entries = try JSONDecoder().decode(Listing.self, from: Data(listed.output.utf8)).entries
        #expect(entries.count == 3 && entries.allSatisfy { $0.id != nil }, "\(listed.output)")
        let first = try #require(entries.first?.id)
        let reverse = try Self.stacklab(["account", "acme", "reverse", "\(first)", "--reason", "typed 9e12 for 9000", "--by", "ops", "--at", "2026-11-12"],
                                        repo: repo, state: state)
        #expect(reverse.status == 0 && reverse.output.contains("recorded reversal of entry \(first)"), "\(reverse.output)")
        let twice = try Self.stacklab(["account", "acme", "reverse", "\(first)", "--reason", "again", "--at", "2026-11-13"], repo: repo, state: state)
        #expect(twice.status == 1 && twice.output.contains("was reversed already"), "\(twice.output)")
        let text = try Self.stacklab(["account", "acme", "entries"], repo: repo, state: state).output
        #expect(text.contains("reversal -9,000,000,000,000.00 CNY (reverses \(first)) typed 9e12 for 9000\tby ops"), "\(text)")
        let after = try JSONDecoder().decode(Statement.self, from: Data(try Self.stacklab(["bill", "acme", "--month", "2026-11", "--at", "2026-12-01", "--format", "json"],
                                                                                          repo: repo, state: state).output.utf8))
        #expect(after.depositBalance.micros < Int128(Int64.max) && after.depositBalance.micros > 0, "one deposit left: \(after.depositBalance)")
    }

    @Test func aTenantInDebtGetsNoNewInstancesWhereTheRegionChecksCredit() throws {
        let repo = try Fixtures.deployment()
        try repo.write("regions/lab/region.yaml", "kind: Region\nname: lab\nspec:\n  sponsor: Fixture lab\n  creditCheck: true\n")
        try GitCLI.commitAll(in: repo.path, date: "2026-10-01T00:00:00Z")
        let state = try Scratch("credit-state")
        #expect(try Self.stacklab(["apply", "--auto-approve", "--at", "2026-11-01T00:00"], repo: repo, state: state).status == 0)
        let acme = try String(contentsOfFile: repo.file("manifests/tenants/acme.yaml"), encoding: .utf8)
        try repo.write("manifests/tenants/acme.yaml", acme + "---\nkind: Instance\nname: web-3\nregion: lab\ntenant: acme\nspec: {flavor: m1.small, image: ubuntu, network: private}\n")
        try GitCLI.commitAll(in: repo.path, date: "2026-11-05T00:00:00Z")
        // Ten days of web-1, web-2, the volume and the floating IP, and no money in: web-3 is held, the rest applies.
        let held = try Self.stacklab(["apply", "--auto-approve", "--at", "2026-11-10T00:00"], repo: repo, state: state)
        #expect(held.status == 0, "\(held.output)")
        #expect(held.output.contains("held: instance/lab/acme/web-3: tenant acme's balance is -"), "\(held.output)")
        #expect(!held.output.contains("+ instance/lab/acme/web-3"), "\(held.output)")
        // Once it pays, web-3 is created.
        #expect(try Self.stacklab(["account", "acme", "deposit", "5000", "--at", "2026-11-11"], repo: repo, state: state).status == 0)
        let paid = try Self.stacklab(["apply", "--auto-approve", "--at", "2026-11-12T00:00"], repo: repo, state: state)
        #expect(paid.status == 0 && !paid.output.contains("held:") && paid.output.contains("instance/lab/acme/web-3"), "\(paid.output)")
    }
}
