import Foundation
import Processes
import Libvirt
import Manifests
import Planning
import TestSupport
import Testing
@testable import Drivers

/// Every kind of libvirt object StackLab generates validates against libvirt's own RelaxNG schemas
/// (virt-xml-validate from libvirt-clients), and the test-driver variants are accepted by libvirt itself.
@Suite struct XMLSchemaTests {
    static let domain = DesiredDomain(
        address: Address(kind: .instance, region: "sina", tenant: "devops", name: "gerrit"),
        node: Address(kind: .node, region: "sina", name: "sina-1"), name: "devops:gerrit", vcpus: 4, memoryKiB: 8 << 20,
        disks: [
            .init(pool: StorageXML.instancePool, volume: "i-0123456789abcdef-root", bytes: 80 << 30, device: "vda", image: "images/ubuntu.qcow2"),
            .init(pool: StorageXML.instancePool, volume: "i-0123456789abcdef-ephemeral", bytes: 20 << 30, device: "vdb", image: nil),
        ],
        interface: .init(bridge: "br100", mac: DesiredDomain.mac(for: Address(kind: .instance, region: "sina", tenant: "devops", name: "gerrit")),
                         ip: IPv4Address(parsing: "10.1.0.7")!),
        running: true)

    private func validate(_ xml: String, as schema: String) throws {
        let scratch = try Scratch("xml")
        try scratch.write("object.xml", xml)
        let result = try Command.run(["virt-xml-validate", scratch.file("object.xml"), schema])
        #expect(result.status == 0, "\(schema) XML does not validate:\n\(result.output)\n\(xml)")
    }

    @Test func kvmDomainValidates() throws {
        let xml = DomainXML.render(Self.domain, for: .kvm)
        try validate(xml, as: "domain")
        // Nested KVM cannot set IA32_ARCH_CAPABILITIES: a guest given it never starts there.
        #expect(xml.contains("<cpu mode='host-model'>") && xml.contains("<feature policy='disable' name='arch-capabilities'/>"), "\(xml)")
    }

    @Test func qemuDomainValidates() throws {
        let xml = DomainXML.render(Self.domain, for: .qemu)
        try validate(xml, as: "domain")
        #expect(xml.contains("<domain type='qemu'>") && !xml.contains("host-model"), "TCG guests get no host CPU model")
    }

    @Test func networkValidates() throws {
        try validate(NetworkXML.render(network: "private", bridge: "br100"), as: "network")
    }

    @Test func poolValidates() throws {
        try validate(StorageXML.pool(name: StorageXML.instancePool, path: "/var/lib/stacklab/instances"), as: "storagepool")
    }

    @Test func volumesValidate() throws {
        try validate(StorageXML.volume(name: "i-0123456789abcdef-root", bytes: 80 << 30, backingFile: "/var/lib/stacklab/images/ubuntu.qcow2"), as: "storagevol")
        try validate(StorageXML.volume(name: "i-0123456789abcdef-ephemeral", bytes: 20 << 30, backingFile: nil), as: "storagevol")
    }

    @Test func theMetadataNamesTheResourceAndSurvivesLibvirt() throws {
        let scratch = try Scratch("host")
        try scratch.write("host.xml", "<node><cpu><mhz>2000</mhz><model>x86_64</model><nodes>1</nodes><sockets>1</sockets><cores>8</cores><threads>1</threads></cpu><memory>33554432</memory></node>")
        let connection = try Connection(uri: "test://\(scratch.file("host.xml"))")
        let defined = try connection.defineDomain(xml: DomainXML.render(Self.domain, for: .test))
        let dumped = try defined.persistentXML()
        let attributes = try #require(Ownership.parse(dumped))
        #expect(attributes["address"] == "instance/sina/devops/gerrit")
        #expect(attributes["spec"] == Self.domain.specHash)
        #expect(attributes["ip"] == "10.1.0.7")
    }

    @Test func ownershipIgnoresForeignMetadata() {
        #expect(Ownership.parse("<other:thing xmlns:other='https://example.org/x' address='x'/>") == nil)
        #expect(Ownership.parse(Ownership.element(address: "instance/a/b/c", specHash: "00ff"))?["spec"] == "00ff")
    }

    /// Values come back as written, escaped or not (a value without `&` is not searched for entities).
    @Test func ownershipValuesRoundTrip() {
        let element = Ownership.element(address: "instance/a/b/c", specHash: "00ff", extra: [("image", "a<b>&'c\"d"), ("flavor", "m1.small"), ("origin", "&amp;")])
        let attributes = Ownership.parse(element)
        #expect(attributes?["image"] == "a<b>&'c\"d")
        #expect(attributes?["flavor"] == "m1.small")
        #expect(attributes?["origin"] == "&amp;")
    }
}
