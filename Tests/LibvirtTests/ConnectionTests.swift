import Foundation
import Testing
import Libvirt

/// Smoke tests against libvirt's own test driver, one host file per test (no daemon).
@Suite struct ConnectionTests {
    private func hostFile(cpus: Int = 8) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("stacklab-host-\(UUID().uuidString.prefix(8)).xml").path
        let xml = """
            <node>
              <cpu><mhz>2400</mhz><model>x86_64</model><nodes>1</nodes><sockets>1</sockets><cores>\(cpus)</cores><threads>1</threads></cpu>
              <memory>16777216</memory>
            </node>
            """
        try xml.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func opensATestHostAndReadsItsShape() throws {
        let path = try hostFile(cpus: 8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let connection = try Connection(uri: "test://\(path)")
        let info = try connection.nodeInfo()
        #expect(info.cpus == 8)
        #expect(info.memoryKiB == 16_777_216)
        #expect(try connection.domains().isEmpty)
    }

    @Test func definesStartsStopsAndUndefinesADomain() throws {
        let path = try hostFile()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let connection = try Connection(uri: "test://\(path)")
        let domain = try connection.defineDomain(xml: """
            <domain type='test'>
              <name>smoke</name>
              <memory unit='MiB'>512</memory>
              <vcpu>1</vcpu>
              <metadata><stacklab:resource xmlns:stacklab='https://stacklab.dev/xmlns/resource/1'>instance/lab/acme/smoke</stacklab:resource></metadata>
              <os><type>hvm</type></os>
            </domain>
            """)
        #expect(domain.name == "smoke")
        #expect(try domain.isActive() == false)
        try domain.start()
        #expect(try domain.isActive())
        #expect(try domain.persistentXML().contains("instance/lab/acme/smoke"))
        // One call for every running domain; the test driver keeps no counters in it (its CPU time is in
        // virDomainGetInfo), so the caller reads those one domain at a time.
        let running = try connection.runningDomainCounters()
        #expect(running.map(\.domain.name) == ["smoke"] && running[0].domain.uuid.count == 36)
        #expect(running[0].counters == nil, "\(String(describing: running[0].counters))")
        try domain.destroy()
        #expect(try connection.runningDomainCounters().isEmpty, "only running domains")
        try domain.undefine()
        #expect(try connection.domain(named: "smoke") == nil)
    }

    @Test func errorsCarryLibvirtsMessage() throws {
        do {
            _ = try Connection(uri: "test:///nonexistent/host.xml")
            Issue.record("expected an error")
        } catch {
            #expect(error.description.contains("test:///nonexistent/host.xml"))
            #expect(!error.message.isEmpty)
        }
    }
}

@Suite struct ErrorReportingTests {
    @Test func theFailingCallsMessageSurvivesDescribingTheOperation() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("stacklab-host-\(UUID().uuidString.prefix(8)).xml").path
        try "<node><cpu><mhz>2000</mhz><model>x86_64</model><nodes>1</nodes><sockets>1</sockets><cores>2</cores><threads>1</threads></cpu><memory>4194304</memory></node>"
            .write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let connection = try Connection(uri: "test://\(path)")
        let pool = try connection.definePool(xml: "<pool type='dir'><name>p</name><target><path>/p</path></target></pool>")
        try pool.start()
        do {
            // 200 GiB fully allocated cannot fit the test driver's 100 GiB pool.
            try pool.createVolume(xml: "<volume><name>v</name><capacity unit='G'>200</capacity><allocation unit='G'>200</allocation></volume>")
            Issue.record("expected an error")
        } catch {
            #expect(error.message != "unknown libvirt error")
            #expect(error.description.contains("create volume in pool p"))
        }
    }
}
