import Foundation
import Processes
import TestSupport
import Testing

/// `stacklab monitoring config` on the bundled deployment and on one without alarms: three files, each accepted by
/// the real engines' own checkers (promtool, amtool) when run again here, with one alerting rule per Alarm annotated
/// with its file:line, and a route per tenant to the alarm's webhook.
@Suite struct MonitoringConfigTests {
    static func check(_ directory: String) throws {
        for arguments in [["promtool", "check", "rules", directory + "/rules.yml"], ["promtool", "check", "config", "--syntax-only", directory + "/prometheus.yml"],
                          ["amtool", "check-config", directory + "/alertmanager.yml"]] {
            let result = try Command.run(arguments)
            #expect(result.status == 0, "\(arguments.joined(separator: " ")): \(result.output)")
        }
    }

    @Test func theBundledDeploymentsAlarmBecomesARuleAndARoute() throws {
        let repo = try Fixtures.bundledDeployment("monitoring")
        let out = try Scratch("monitoring-out")
        let result = try StackLabBinary.run(["monitoring", "config", "--repo", repo.path, "--out", out.path, "--target", "10.0.0.5:8480", "--target", "10.0.0.6:8480",
                                             "--token-file", "/etc/stacklab/read-token", "--format", "json"])
        #expect(result.status == 0, "\(result.output)")
        let json = try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any]
        #expect(json?["ok"] as? Bool == true && json?["alarms"] as? Int == 1, "\(result.output)")
        try Self.check(out.path)
        let prometheus = try String(contentsOfFile: out.file("prometheus.yml"), encoding: .utf8)
        #expect(prometheus.contains("targets: [\"10.0.0.5:8480\", \"10.0.0.6:8480\"]") && prometheus.contains("credentials_file: \"/etc/stacklab/read-token\""))
        let rules = try String(contentsOfFile: out.file("rules.yml"), encoding: .utf8)
        #expect(rules.contains("record: stacklab:instance_cpu_utilization:percent\n        expr: rate(stacklab_instance_cpu_seconds_total[60s]) * 100"))
        #expect(rules.contains("server=~\\\"gitorious|openstackblog\\\"} > 80.0") && rules.contains("for: 300s"), "\(rules)")
        #expect(rules.contains("source: \"alarm/sina/devops/blog-cpu at manifests/tenants/devops-resources.yaml:"), "annotated with its file:line: \(rules)")
        let alertmanager = try String(contentsOfFile: out.file("alertmanager.yml"), encoding: .utf8)
        #expect(alertmanager.contains("matchers: [\"tenant=\\\"devops\\\"\"]") && alertmanager.contains("url: \"https://hooks.stacklab.org/devops\""), "\(alertmanager)")
    }

    @Test func aDeploymentWithoutAlarmsStillGetsValidFiles() throws {
        let repo = try Fixtures.deployment()
        let out = try Scratch("monitoring-empty")
        let result = try StackLabBinary.run(["monitoring", "config", "--repo", repo.path, "--out", out.path])
        #expect(result.status == 0 && result.output.contains("(0 alarms"), "\(result.output)")
        try Self.check(out.path)
    }

    @Test func badInputWritesNothing() throws {
        let repo = try Fixtures.deployment(overlay: "diagnostics/42-alarms")
        let out = try Scratch("monitoring-refused")
        let result = try StackLabBinary.run(["monitoring", "config", "--repo", repo.path, "--out", out.path + "/files", "--format", "json"])
        #expect(result.status == 1 && result.output.contains("\"ok\" : false") && result.output.contains("which region 'lab' does not allow"), "\(result.output)")
        #expect(!FileManager.default.fileExists(atPath: out.path + "/files"), "nothing is written")
        let target = try StackLabBinary.run(["monitoring", "config", "--repo", repo.path, "--out", out.path + "/files", "--target", "http://x"])
        #expect(target.status != 0 && target.output.contains("is not host:port"), "\(target.output)")
    }
}
