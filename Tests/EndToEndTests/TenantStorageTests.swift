import Manifests
import Foundation
import Processes
import Snapshots
import StateSQLite
import TestSupport
import Testing

/// Tenants' object storage in a real Swift cluster (tempauth with a reseller admin, account and container quotas,
/// object versioning): StackLab converges the tenants' Container documents into their own accounts as reseller admin,
/// and Swift itself enforces what they say, proven here with requests: anonymous reads of public containers and not of
/// private ones, the referrer ACL, a reader tenant that can read and not write, the account quota, versioning. A hand's
/// ACL change is drift that apply heals; a container that leaves the manifests is deleted only once it is empty.
extension SwiftSnapshotTests {
    /// The tenant's own Swift user, as `stacklab tenant storage-key` mints it.
    struct StorageKey: Decodable {
        var account: String
        var user: String
        var key: String
        var tempauth: String
    }

    @Test func tenantsContainersAreConvergedAndSwiftEnforcesTheirACLsQuotasAndVersions() throws {
        let repo = try Fixtures.deployment()
        // Stored bytes are priced from the start (a price applies from its commit on, and a sample is its hour's).
        let catalog = repo.file("manifests/catalog.yaml")
        try String(contentsOfFile: catalog, encoding: .utf8).replacingOccurrences(of: "  floatingIP: {daily: 0.5}\n", with: "  floatingIP: {daily: 0.5}\n  storage: {perGBMonth: 10000000}\n")
            .write(toFile: catalog, atomically: true, encoding: .utf8)
        try GitCLI.commitAll(in: repo.path, message: "prices", date: "2026-01-01T00:00:00Z")
        try Self.writeRegion(repo)
        var keys: [String: StorageKey] = [:]
        for tenant in ["acme", "other"] {
            let minted = try StackLabBinary.run(["tenant", "storage-key", tenant, "--format", "json", "--repo", repo.path])
            try #require(minted.status == 0, "\(minted.output)")
            keys[tenant] = try JSONDecoder().decode(StorageKey.self, from: Data(minted.output.utf8))
        }
        let acmeKey = try #require(keys["acme"]), otherKey = try #require(keys["other"])
        #expect(acmeKey.account == "AUTH_tenant_acme" && acmeKey.user == "tenant_acme:acme", "\(acmeKey)")
        let state = try Scratch("storage-state")
        let (cluster, keep) = try Self.cluster(state: state, tempauth: [acmeKey.tempauth, otherKey.tempauth])
        defer { withExtendedLifetime(keep) {} }

        // The region's object store, with the reseller StackLab acts as; acme's account holds at most 64 KiB.
        try repo.write("regions/store/region.yaml", """
            kind: Region
            name: store
            spec: {sponsor: Swift test, objectStore: {proxy: "\(cluster.proxyURL)", user: "test:tester", reseller: {user: "admin:admin"}}}

            """)
        let acmeFile = repo.file("manifests/tenants/acme.yaml")
        try String(contentsOfFile: acmeFile, encoding: .utf8).replacingOccurrences(of: "spec: {displayName: ACME}", with: "spec: {displayName: ACME, quotas: {storage: 64KiB}}")
            .write(toFile: acmeFile, atomically: true, encoding: .utf8)
        func containers(_ extra: String = "") throws {
            try repo.write("manifests/tenants/storage.yaml", """
                kind: Container
                name: site
                region: store
                tenant: acme
                spec: {public: read, allowReferrers: [example.org]}
                ---
                kind: Container
                name: shared
                region: store
                tenant: acme
                spec: {readers: [other]}
                ---
                kind: Container
                name: documents
                region: store
                tenant: acme
                spec: {versioning: true}

                """ + extra)
            try GitCLI.commitAll(in: repo.path)
        }
        try containers("---\nkind: Container\nname: open\nregion: store\ntenant: acme\nspec: {public: list}\n")
        func stacklab(_ arguments: [String]) throws -> Command.Result {
            try Command.run(["env", "STACKLAB_SWIFT_KEY=testing", "STACKLAB_SWIFT_RESELLER_KEY=admin", StackLabBinary.path] + arguments
                            + ["--region", "store", "--repo", repo.path, "--state-dir", state.path])
        }

        let plan = try stacklab(["plan"])
        #expect(plan.status == 2 && plan.output.contains("container/store/acme/shared") && plan.output.contains("tenant/acme"), "\(plan.output)")
        let applied = try stacklab(["apply", "--auto-approve"])
        try #require(applied.status == 0, "\(applied.output)")
        let replan = try stacklab(["plan"])
        #expect(replan.status == 0, "converged: \(replan.output)")

        // Swift holds what the manifests say, in acme's own account (not the operator's).
        let reseller = try SwiftClient.authenticate(proxy: cluster.proxyURL, user: "admin:admin", key: "admin").forAccount("AUTH_tenant_acme")
        #expect(try reseller.containers().sorted() == ["documents", "open", "shared", "site"])
        #expect(try reseller.containerInfo("site")?.read == ".r:example.org")
        #expect(try reseller.containerInfo("shared")?.read == "tenant_other")
        #expect(try reseller.accountInfo()?.quotaBytes == 64 << 10)
        let operatorAccount = try SwiftClient.authenticate(proxy: cluster.proxyURL, user: "test:tester", key: "testing")
        #expect(try operatorAccount.containers().allSatisfy { !["site", "shared", "open", "documents"].contains($0) }, "the operator's account holds none of them")

        // Requests, as the tenants and as anyone.
        let acme = try SwiftClient.authenticate(proxy: cluster.proxyURL, user: acmeKey.user, key: acmeKey.key)
        let other = try SwiftClient.authenticate(proxy: cluster.proxyURL, user: otherKey.user, key: otherKey.key).forAccount("AUTH_tenant_acme")
        #expect(acme.storageURL.hasSuffix("/AUTH_tenant_acme"), "\(acme.storageURL)")
        for container in ["site", "shared", "open", "documents"] { try acme.put(container, "hello.txt", Data("hello from \(container)\n".utf8)) }
        let base = acme.storageURL
        func anonymous(_ path: String, referer: String? = nil) throws -> Int {
            let result = try Command.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}"] + (referer.map { ["-H", "Referer: \($0)"] } ?? []) + ["\(base)/\(path)"])
            return Int(result.output) ?? 0
        }
        #expect(try anonymous("open/hello.txt") == 200 && (try anonymous("open")) == 200, "public: list reads and lists")
        #expect(try anonymous("documents/hello.txt") == 401, "a private container refuses anyone")
        #expect(try anonymous("site/hello.txt", referer: "https://example.org/page") == 200, "a page of an allowed referrer reads")
        #expect(try anonymous("site/hello.txt", referer: "https://evil.example.net/") == 401 && (try anonymous("site/hello.txt")) == 401,
                "another referrer, or none, is refused")
        #expect(String(decoding: try other.get("shared", "hello.txt"), as: UTF8.self) == "hello from shared\n", "a reader tenant reads")
        #expect(throws: SwiftClient.Failure.self, "and cannot write") { try other.put("shared", "theirs.txt", Data("x".utf8)) }
        #expect(throws: SwiftClient.Failure.self, "nor read a container not shared with it") { try other.get("documents", "hello.txt") }

        // Versioning keeps the old object.
        try acme.put("documents", "hello.txt", Data("second version\n".utf8))
        let versions = try Command.run(["curl", "-s", "-H", "X-Auth-Token: \(acme.token)", "\(base)/documents?versions&format=json"]).output
        #expect(versions.components(separatedBy: "\"version_id\"").count - 1 == 2, "two versions of hello.txt: \(versions)")

        // The account quota: once Swift has counted what acme stores (asynchronously), an upload past it is refused.
        try acme.put("shared", "big.bin", Data(repeating: 7, count: 60 << 10))
        var counted: Int64 = 0
        for _ in 0..<100 where counted < 60 << 10 {
            counted = try reseller.accountInfo()?.bytesUsed ?? 0
            if counted < 60 << 10 { usleep(200_000) }
        }
        #expect(counted >= 60 << 10, "the account's byte count follows its containers: \(counted)")
        do {
            try acme.put("shared", "more.bin", Data(repeating: 8, count: 16 << 10))
            Issue.record("an upload past the account's quota was stored")
        } catch let failure as SwiftClient.Failure {
            #expect(failure.status == 413, "\(failure)")
        }
        #expect(throws: SwiftClient.Failure.self, "the tenant cannot lift its own quota") { try acme.setAccountQuota(bytes: nil, objects: nil) }

        // Billing: a meter round samples each account's bytes into the current hour, once; the statement charges them.
        var measured = try reseller.accountInfo()?.bytesUsed ?? 0, previous: Int64 = -1
        for _ in 0..<20 where measured != previous {
            previous = measured
            usleep(1_500_000)
            measured = try reseller.accountInfo()?.bytesUsed ?? 0
        }
        let metered = try stacklab(["meter"])
        #expect(metered.status == 0 && metered.output.contains("region store: 2 tenant accounts sampled, 2 new hours recorded"), "\(metered.output)")
        let again = try stacklab(["meter"])
        #expect(again.status == 0 && again.output.contains("0 new hours recorded"), "the hour is billed once: \(again.output)")
        let usage = try SQLiteState(directory: state.path).storageUsage(tenant: "acme")
        #expect(usage.map(\.bytes) == [measured] && usage.allSatisfy { $0.region == "store" && $0.priceList == "standard" }, "\(usage) vs \(measured)")
        let bill = try Command.run([StackLabBinary.path, "bill", "acme", "--format", "csv", "--repo", repo.path, "--state-dir", state.path])
        let line = bill.output.split(separator: "\n").first { $0.contains("account/store/acme") }.map(String.init) ?? ""
        let charged = Money(micros: (Int128(10_000_000) * 1_000_000 * Int128(measured) + 365_000_000_000) / 730_000_000_000)
        #expect(bill.status == 0 && line.contains(",storage,") && line.contains("GB-month") && line.contains(charged.roundedToCents.description), "\(charged): \(bill.output)")

        // A hand's ACL change is drift: planned, and healed by apply.
        try acme.putContainer("shared", read: ".r:*", write: nil, versioned: false)
        let drift = try stacklab(["plan"])
        #expect(drift.status == 2 && drift.output.contains("container/store/acme/shared") && drift.output.contains(".r:*"), "\(drift.output)")
        #expect(try stacklab(["apply", "--auto-approve"]).status == 0)
        #expect(try reseller.containerInfo("shared")?.read == "tenant_other")

        // What Swift holds, as the operator reads it.
        let shown = try stacklab(["show", "container", "--live"])
        #expect(shown.status == 0 && shown.output.contains("store/AUTH_tenant_acme  ") && shown.output.contains("quota 64KiB")
                && shown.output.contains("container/store/acme/shared: 2 objects") && shown.output.contains("read tenant_other"), "\(shown.output)")

        // A container that leaves the manifests while it holds objects is a plan error naming how many; once empty it goes.
        try containers()
        let refused = try stacklab(["plan"])
        #expect(refused.status != 0 && refused.status != 2 && refused.output.contains("holds 1 object"), "\(refused.output)")
        try acme.delete("open", "hello.txt")
        let emptied = try stacklab(["plan"])
        #expect(emptied.status == 2 && emptied.output.contains("container/store/acme/open"), "\(emptied.output)")
        #expect(try stacklab(["apply", "--auto-approve"]).status == 0)
        #expect(try reseller.containerInfo("open") == nil && (try stacklab(["plan"])).status == 0)

        // With --delete-container-objects, a container that holds objects (and old versions) goes with all of them, as
        // the plan says.
        try repo.write("manifests/tenants/storage.yaml", "kind: Container\nname: site\nregion: store\ntenant: acme\nspec: {public: read, allowReferrers: [example.org]}\n"
                       + "---\nkind: Container\nname: shared\nregion: store\ntenant: acme\nspec: {readers: [other]}\n")
        try GitCLI.commitAll(in: repo.path)
        #expect(try stacklab(["plan"]).output.contains("container/store/acme/documents"), "refused without the flag")
        let destroying = try stacklab(["plan", "--delete-container-objects"])
        #expect(destroying.status == 2 && destroying.output.contains("destroys its 1 object") && destroying.output.contains("and every old version"), "\(destroying.output)")
        let deleted = try stacklab(["apply", "--auto-approve", "--delete-container-objects"])
        let documents = try reseller.containerInfo("documents")
        #expect(deleted.status == 0 && documents == nil, "\(deleted.output)")
        #expect(try stacklab(["plan"]).status == 0)
    }
}
