import Foundation
import Manifests
import TestSupport
import Testing

/// Manifests written by an attacker (a pull request the CI check plans) or by a bad day: each is refused at validate
/// time with its location, and never reaches a driver, the terminal or the planner's arithmetic.
@Suite struct HostileManifestTests {
    /// Loads the fixture deployment with `path` replaced by (or added as) `text`.
    private func load(_ path: String, _ text: String, limits: LoadLimits = LoadLimits()) throws -> (LoadResult, [String]) {
        let scratch = try Fixtures.deployment()
        try scratch.write(path, text)
        let result = try Loader(limits: limits).load(DirectorySource(root: scratch.path))
        let messages = result.diagnostics.map { d in d.location.map { "\(result.files.describe($0)): \(d.message)" } ?? d.message }
        return (result, messages)
    }

    private func node(_ name: String, libvirt: String, extra: String = "") -> String {
        """
        kind: Node
        name: \(name)
        spec:
          address: 172.16.20.9
          libvirt: "\(libvirt)"
          roles: [compute]
          cpus: 4
          memory: 8GiB
        \(extra)
        """
    }

    @Test func onlySimulatedAndQemuOverSSHAreAcceptedAsLibvirtURIs() {
        for accepted in ["simulated", "qemu+ssh://root@10.1.0.11/system", "qemu+ssh://10.1.0.11:2222/system",
                         "qemu+ssh://stack-lab@node-1.example.org/system", "qemu+libssh2://root@[fd00::1]:22/system"] {
            #expect(LibvirtURI(parsing: accepted)?.description == accepted, "\(accepted)")
        }
        for refused in ["qemu+ext:///system?command=/tmp/prog", "test:///etc/shadow", "test:///default", "qemu:///system",
                        "qemu+unix:///system?socket=/run/x", "qemu+tcp://10.0.0.1/system", "qemu+tls://10.0.0.1/system",
                        "qemu+ssh://root@10.0.0.1/system?command=/tmp/prog", "qemu+ssh://root@10.0.0.1/system?netcat=/tmp/nc",
                        "qemu+ssh://root@10.0.0.1/system?keyfile=/root/.ssh/id", "qemu+ssh://root@10.0.0.1/session",
                        "qemu+ssh://-oProxyCommand=x/system", "qemu+ssh://root@10.0.0.1:0/system", "qemu+ssh://root@10.0.0.1:99999/system",
                        "qemu+ssh://ro ot@10.0.0.1/system", "qemu+ssh:///system", "xen+ssh://10.0.0.1/system", "simulated "] {
            #expect(LibvirtURI(parsing: refused) == nil, "\(refused)")
        }
    }

    @Test func aNodeWhoseURIWouldRunAProgramDoesNotValidate() throws {
        let (result, messages) = try load("regions/lab/evil.yaml", node("evil", libvirt: "qemu+ext:///system?command=/tmp/prog"))
        #expect(result.hasErrors)
        #expect(messages.contains { $0.hasPrefix("regions/lab/evil.yaml:5:12:") && $0.contains("qemu+ssh://") }, "\(messages)")
        let (fileRead, _) = try load("regions/lab/evil.yaml", node("evil", libvirt: "test:///etc/passwd"))
        #expect(fileRead.hasErrors)
    }
}
