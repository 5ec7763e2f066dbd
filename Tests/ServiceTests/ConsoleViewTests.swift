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
    @Test func aVolumesSnapshotsAreShownAsDeclaredAndAsTheObjectStoreHoldsThem() throws {
        let repo = try Fixtures.deployment()
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
        try repo.write("regions/lab/region.yaml", "kind: Region\nname: lab\nspec: {sponsor: Fixture lab, objectStore: {proxy: \"http://127.0.0.1:9\", user: \"lab:snapshots\"}}\n")
        let loaded = try Loader().load(DirectorySource(root: repo.path))
        #expect(!loaded.hasErrors, "\(loaded.diagnostics.map(\.message))")
        let scratch = try Scratch("console-view")
        let state = ServiceState(stateDirectory: scratch.path)
        state.update("lab") { $0.desiredRevision = "r1" }
        _ = state.model("r1") { loaded }
        state.record(RegionObservation([]), region: "lab")
        let taken = Calendar.UTC.seconds(year: 2026, month: 12, day: 4)
        state.record(snapshots: [
            ObservedSnapshot(volume: TenantKey(tenant: "acme", name: "archive"), name: "nightly-2026120400", capacity: 10 << 30, chunks: 2560, created: taken),
            ObservedSnapshot(volume: TenantKey(tenant: "acme", name: "archive"), name: "before-upgrade", capacity: 10 << 30, chunks: 2560, created: taken - 3600),
            ObservedSnapshot(volume: TenantKey(tenant: "other", name: "archive"), name: "others-secret", capacity: 1 << 30, chunks: 256, created: taken),
        ], region: "lab")
        state.record(RegionObservation([]), region: "lab")  // the nodes observed again: the listing is kept
        let configuration = ServiceConfiguration(repository: repo.path, stateDirectory: scratch.path, token: "t0ken", webhookSecret: "s3cret")
        let console = Console(configuration: configuration, state: state, dashboard: Dashboard(configuration: configuration, state: state))
        let page = try #require(console.overview("acme", region: "lab"))
        #expect(page.contains("<td>nightly every 24h, newest 3 kept; before-upgrade</td>"), "\(page)")
        #expect(page.contains("<ul class=\"snapshots\"><li>before-upgrade (2026-12-03 23:00, 10GiB)</li><li>nightly-2026120400 (2026-12-04 00:00, 10GiB)</li></ul>"),
                "oldest first: \(page)")
        #expect(!page.contains("others-secret"), "another tenant's volume of the same name shows nothing of its snapshots")
    }
}
