import Foundation
import Manifests
import ManifestSources
import TestSupport
import Testing

/// An error in one document is reported once: what names the resource it left out is not reported again as naming
/// something undeclared.
@Suite struct CascadeTests {
    @Test func aMisspelledFieldDoesNotMakeItsVolumeReportAMissingInstance() throws {
        let deployment = try Fixtures.bundledDeployment("cascade")
        let root = deployment.path
        let resources = root + "/manifests/tenants/devops-resources.yaml"
        let text = try String(contentsOfFile: resources, encoding: .utf8)
        let typo = text.replacingOccurrences(of: "  flavor: m1.large\n  image: debian-12\n  network: private\n  keypair: ops\n  securityGroups: [web, ssh]",
                                             with: "  flavr: m1.large\n  image: debian-12\n  network: private\n  keypair: ops\n  securityGroups: [web, ssh]")
        #expect(typo != text)
        try typo.write(toFile: resources, atomically: true, encoding: .utf8)
        let result = try Loader().load(DirectorySource(root: root))
        let errors = result.diagnostics.filter { $0.severity == .error }.map(\.message)
        #expect(errors == ["unknown field 'flavr' in the spec of instance 'gitorious'"], "one typo, one error: \(errors)")
        #expect(!errors.contains { $0.contains("gitorious-repos") || $0.contains("which tenant") }, "the volume of the instance left out is not an error too: \(errors)")
    }
}
