import Foundation
import ManifestSources
import Manifests
import Planning
import TestSupport
import Testing

/// Tenants' containers as the planner sees them: rendered ACLs, what is created, set or deleted against an observed
/// account, and the data a plan never deletes on its own.
@Suite struct ContainerPlanTests {
    static func model() throws -> DesiredModel {
        let repo = try Fixtures.deployment(overlay: "object-store")
        try repo.write("manifests/tenants/storage.yaml", """
            kind: Container
            name: site
            region: lab
            tenant: acme
            spec: {public: list, allowReferrers: [example.org, .example.net], writers: [other]}
            ---
            kind: Container
            name: docs
            region: lab
            tenant: acme
            spec: {versioning: true}

            """)
        let loaded = try Loader().load(DirectorySource(root: repo.path))
        #expect(!loaded.hasErrors, "\(loaded.diagnostics.map(\.message))")
        return loaded.model
    }

    @Test func aclsAreRenderedFromTheSpecAndAccountsNeverCollideWithTheOperators() throws {
        let site = try #require(try Self.model().containers.first { $0.name == "site" })
        #expect(TenantStorage.readACL(site.spec) == ".r:example.org,.r:.example.net,.rlistings,tenant_other", "a writer reads too")
        #expect(TenantStorage.writeACL(site.spec) == "tenant_other")
        #expect(TenantStorage.accountID("test") == "AUTH_tenant_test", "tenant 'test' is not the operator's AUTH_test")
        #expect(TenantStorage.sameACL("a, b", "b,a") && !TenantStorage.sameACL(".r:*", nil))
    }

    @Test func containersAreCreatedSetAndDeletedOnlyWhenEmpty() throws {
        let model = try Self.model()
        func changes(_ accounts: [ObservedAccount]) -> (lines: [String], errors: [String]) {
            let plan = Planner.plan(model: model, observed: [], regions: ["lab"], accounts: ["lab": accounts])
            let lines = plan.changes.filter { $0.address.kind == .container || $0.address.kind == .tenant }.map { change in
                "\(change.action.rawValue) \(change.address)" + change.fields.map { " [\($0.field): \($0.old) → \($0.new)]" }.joined()
            }
            return (lines, plan.errors.filter { $0.address.kind == .container }.map(\.message))
        }
        // Nothing there yet: both created (acme has no storage quota, so its account needs none).
        #expect(changes([]).lines == ["create container/lab/acme/docs [read:  → owner only] [write:  → owner only] [versioning:  → on]",
                                      "create container/lab/acme/site [read:  → .r:example.org,.r:.example.net,.rlistings,tenant_other] [write:  → tenant_other] [versioning:  → off]"])
        // As wanted, but site's read ACL changed by hand (reordered elements are the same ACL), and an old empty container.
        let docs = ObservedContainer(name: "docs", read: nil, write: nil, versioned: true, objects: 3, bytes: 10)
        let site = ObservedContainer(name: "site", read: ".r:*", write: "tenant_other", versioned: false, objects: 0, bytes: 0)
        let old = ObservedContainer(name: "old", read: nil, write: nil, versioned: false, objects: 0, bytes: 0)
        let found = changes([ObservedAccount(tenant: "acme", quotaBytes: nil, quotaObjects: nil, bytesUsed: 10, objects: 3, containers: [docs, site, old])])
        #expect(found.lines == ["update container/lab/acme/site [read: .r:* → .r:example.org,.r:.example.net,.rlistings,tenant_other]", "delete container/lab/acme/old"], "\(found.lines)")
        // An undeclared container that holds objects is an error naming them, never a delete.
        var full = old
        full.objects = 2
        full.bytes = 2048
        let kept = changes([ObservedAccount(tenant: "acme", quotaBytes: 1 << 20, quotaObjects: nil, bytesUsed: 2058, objects: 5, containers: [docs, full])])
        #expect(kept.errors == ["left the manifests but holds 2 objects (2KiB): StackLab deletes only an empty container; empty it, declare it again, or plan with --delete-container-objects"], "\(kept.errors)")
        #expect(kept.lines.contains("update tenant/acme [quota bytes: 1MiB → none]") && !kept.lines.contains { $0.contains("acme/old") }, "\(kept.lines)")
    }
}
