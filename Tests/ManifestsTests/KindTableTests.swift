import Foundation
import ManifestSources
@testable import Manifests
import TestSupport
import Testing

/// Every traversal of the model walks one table of kinds, so what is derived from the model (plan keys, identities,
/// merges) covers every kind.
@Suite struct KindTableTests {
    @Test func everyKindIsVisitedOnceInKindOrder() {
        struct Kinds: ModelKindVisitor {
            var seen: [Kind] = []
            mutating func visit<Spec: ResourceSpec>(_ column: WritableKeyPath<DesiredModel, [Resource<Spec>]>) { seen.append(Spec.kind) }
        }
        var kinds = Kinds()
        DesiredModel.visitKinds(&kinds)
        #expect(kinds.seen == Kind.manifestKinds)
    }

    /// Kinds order (and address names are kept) by a switch and a table, not by searching `allCases`: both must agree
    /// with the declaration.
    @Test func kindsOrderAsDeclaredAndNameThemselvesInLowerCase() {
        for (index, kind) in Kind.allCases.enumerated() {
            #expect(kind.ordinal == index)
            #expect(kind.addressName == kind.rawValue.lowercased())
            #expect(Kind(addressName: kind.addressName) == kind)
            for other in Kind.allCases { #expect((kind < other) == (index < Kind.allCases.firstIndex(of: other)!)) }
        }
    }

    /// A resource keeps its spec in a shared box (copies are cheap): it must still behave as a value.
    @Test func aResourcesSpecIsAValueThoughItsCopiesShareIt() throws {
        let scratch = try Fixtures.deployment()
        let model = try Loader().load(DirectorySource(root: scratch.path)).model
        let original = try #require(model.instances.first)
        var copy = original
        copy.spec.flavor.value = "m1.changed"
        #expect(copy.spec.flavor.value == "m1.changed")
        #expect(original.spec.flavor.value != "m1.changed", "changing a copy leaves the original as it was")
        #expect(model.instances.first?.spec.flavor.value == original.spec.flavor.value)
    }

    @Test func aRegionsPlanDigestCoversEveryRegionalKind() throws {
        let scratch = try Fixtures.deployment()
        let before = try Loader().load(DirectorySource(root: scratch.path)).model.planDigests
        // A Volume is not read by today's planner, but it is part of the region: its plan key must change.
        let text = try String(contentsOfFile: scratch.file("manifests/tenants/acme.yaml"), encoding: .utf8)
        try scratch.write("manifests/tenants/acme.yaml", text.replacingOccurrences(of: "spec: {size: 100GiB, instance: web-1, device: vdb}",
                                                                                 with: "spec: {size: 200GiB, instance: web-1, device: vdb}"))
        let after = try Loader().load(DirectorySource(root: scratch.path)).model.planDigests
        #expect(after.regions["lab"] != before.regions["lab"])
        #expect(after.regions["edge"] == before.regions["edge"])
        #expect(after.catalog == before.catalog)
    }
}
