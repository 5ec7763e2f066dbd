import Billing
import Foundation
import ManifestSources
import Manifests
import Planning
import TestSupport
import Testing
@testable import Service

/// What the console's overview shows of a volume's snapshots: those the manifests declare, and those the region's
/// object store held when the loop last listed it (the tenant's own; a page never asks the store itself).
@Suite struct ConsoleViewTests {
    /// The console of a service whose loop has loaded `repo` (as revision r1) and observed region lab's nodes.
    static func console(_ repo: Scratch) throws -> (ServiceState, Console) {
        let loaded = try Loader().load(DirectorySource(root: repo.path))
        #expect(!loaded.hasErrors, "\(loaded.diagnostics.map(\.message))")
        let scratch = try Scratch("console-view")
        let state = ServiceState(stateDirectory: scratch.path)
        state.update("lab") { $0.desiredRevision = "r1" }
        _ = state.model("r1") { loaded }
        state.record(RegionObservation([]), region: "lab")
        let configuration = ServiceConfiguration(repository: repo.path, stateDirectory: scratch.path, token: "t0ken", webhookSecret: "s3cret")
        return (state, Console(configuration: configuration, state: state, dashboard: Dashboard(configuration: configuration, state: state)))
    }

    @Test func aVolumesSnapshotsAreShownAsDeclaredAndAsTheObjectStoreHoldsThem() throws {
        let repo = try Fixtures.deployment(overlay: "object-store")
        try repo.write("manifests/tenants/volumes.yaml", """
            kind: Volume
            name: archive
            region: lab
            tenant: acme
            spec: {size: 10GiB, snapshots: [{name: nightly, every: 24h, keep: 3}, {name: before-upgrade}]}
            ---
            kind: Volume
            name: archive
            region: lab
            tenant: other
            spec: {size: 1GiB}

            """)
        let (state, console) = try Self.console(repo)
        let taken = Calendar.UTC.seconds(year: 2026, month: 12, day: 4)
        state.record(snapshots: [
            ObservedSnapshot(volume: TenantKey(tenant: "acme", name: "archive"), name: "nightly-2026120400", capacity: 10 << 30, chunks: 2560, created: taken),
            ObservedSnapshot(volume: TenantKey(tenant: "acme", name: "archive"), name: "before-upgrade", capacity: 10 << 30, chunks: 2560, created: taken - 3600),
            ObservedSnapshot(volume: TenantKey(tenant: "other", name: "archive"), name: "others-secret", capacity: 1 << 30, chunks: 256, created: taken),
        ], region: "lab")
        state.record(RegionObservation([]), region: "lab")  // the nodes observed again: the listing is kept
        let page = try #require(console.overview("acme", region: "lab"))
        #expect(page.contains("<td>nightly every 24h, newest 3 kept; before-upgrade</td>"), "\(page)")
        #expect(page.contains("<ul class=\"snapshots\"><li>before-upgrade (2026-12-03 23:00, 10GiB)</li><li>nightly-2026120400 (2026-12-04 00:00, 10GiB)</li></ul>"),
                "oldest first: \(page)")
        #expect(!page.contains("others-secret"), "another tenant's volume of the same name shows nothing of its snapshots")
    }

    /// The tenant's containers: as declared (access, sharing, versioning) with what Swift held when the loop last looked,
    /// the account's bytes and quota, and a container that left the manifests still holding objects; nothing of
    /// another tenant's account.
    @Test func aTenantsContainersAndAccountAreShownAsSwiftHoldsThem() throws {
        let repo = try Fixtures.deployment(overlay: "object-store")
        try repo.write("manifests/tenants/storage.yaml", """
            kind: Container
            name: site
            region: lab
            tenant: acme
            spec: {public: list, allowReferrers: [example.org], readers: [other], versioning: true}
            ---
            kind: Container
            name: ledger
            region: lab
            tenant: other
            spec: {}

            """)
        let (state, console) = try Self.console(repo)
        state.record(accounts: [
            ObservedAccount(tenant: "acme", quotaBytes: 1 << 30, quotaObjects: nil, bytesUsed: 3 << 20, objects: 5, containers: [
                ObservedContainer(name: "site", read: ".r:example.org,.rlistings,tenant_other", write: nil, versioned: true, objects: 3, bytes: 2 << 20),
                ObservedContainer(name: "old-backups", read: nil, write: nil, versioned: false, objects: 2, bytes: 1 << 20),
            ]),
            ObservedAccount(tenant: "other", quotaBytes: nil, quotaObjects: nil, bytesUsed: 77, objects: 1, containers: [
                ObservedContainer(name: "ledger", read: nil, write: nil, versioned: false, objects: 1, bytes: 77),
            ]),
        ], region: "lab")
        let page = try #require(console.overview("acme", region: "lab"))
        #expect(page.contains("<p id=\"storage\">Account AUTH_tenant_acme: 3MiB in 5 objects; quota 1GiB.</p>"), "\(page)")
        #expect(page.contains("<td>anyone reads and lists from pages of example.org</td><td>other reads</td><td>on</td><td>3</td><td>2MiB</td>"), "\(page)")
        #expect(page.contains("old-backups <span class=\"where\">left the manifests: billed until emptied") && page.contains("<td>2</td><td>1MiB</td>"), "\(page)")
        #expect(!page.contains("ledger") && !page.contains("AUTH_tenant_other"), "nothing of another tenant's account")
    }
}
