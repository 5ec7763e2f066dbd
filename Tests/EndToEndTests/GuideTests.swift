import Foundation
import Manifests
import Processes
import TestSupport
import Testing

/// The guides as an operator follows them: their shell blocks run as written, as root, in a mount and network
/// namespace of the test's own (fresh /etc/stacklab, /srv, /var/lib/stacklab and, for PostgreSQL, /tmp; a loopback
/// where the guides' ports are free), in a clone of the bundled deployment, with `stacklab` on the PATH.
@Suite(.serialized) struct GuideTests {
    /// The blocks of `docs/guides/<guide>` marked as run by `test`, in order.
    static func blocks(_ guide: String, marked test: String) throws -> [String] {
        let path = (Fixtures.packageRoot as NSString).appendingPathComponent("docs/guides/" + guide)
        let lines = try String(contentsOfFile: path, encoding: .utf8).components(separatedBy: "\n")
        var blocks: [String] = []
        var index = 0
        while index < lines.count {
            if lines[index].hasPrefix("<!-- shell: run by \(test) "), index + 1 < lines.count, lines[index + 1] == "```sh" {
                let body = lines[(index + 2)...].prefix { $0 != "```" }
                blocks.append(body.joined(separator: "\n"))
                index += body.count + 2
            }
            index += 1
        }
        return blocks
    }

    /// A script that runs `blocks` in order in `directory`, each announced (`--- block N`) so a failure shows where.
    static func script(_ blocks: [String], in directory: String) -> String {
        "cd '\(directory)'\n" + blocks.enumerated().map { "echo '--- block \($0.offset + 1)'\n\($0.element)" }.joined(separator: "\n")
    }

    /// Runs `body` as root in a mount and network namespace of its own: loopback up, `stacklab` on the PATH (from
    /// `bin`, this build's directory unless `prepare` put it elsewhere), and `prepare` (the fresh directories a guide
    /// writes to) done first.
    static func inNamespace(prepare: String, bin: String = (StackLabBinary.path as NSString).deletingLastPathComponent, _ body: String) throws -> Command.Result {
        let script = "set -euo pipefail\nip link set lo up\n\(prepare)\nexport PATH='\(bin)':$PATH\n\(body)"
        return try Command.run(["unshare", "--mount", "--net", "--propagation", "private", "--", "bash", "-c", script])
    }

    @Test func theMonitoringGuideRunsAsWritten() throws {
        let blocks = try Self.blocks("monitoring.md", marked: "GuideTests.theMonitoringGuideRunsAsWritten")
        try #require(blocks.count == 1, "the guide's one block: write the configuration")
        let clone = try Fixtures.bundledDeployment("monitoring-guide")
        let result = try Self.inNamespace(prepare: "", Self.script(blocks, in: clone.path))
        #expect(result.status == 0 && result.output.contains("checked by promtool and amtool"), "\(result.output)")
        #expect(["alertmanager.yml", "prometheus.yml", "rules.yml"].allSatisfy { result.output.contains($0) }, "\(result.output)")
    }

    @Test func theLoadBalancerGuideRunsAsWritten() throws {
        let blocks = try Self.blocks("loadbalancers.md", marked: "GuideTests.theLoadBalancerGuideRunsAsWritten")
        try #require(blocks.count == 3, "the guide's three blocks: converge and look, drift, bill")
        let clone = try Fixtures.bundledDeployment("loadbalancer-guide")
        let result = try Self.inNamespace(prepare: "", Self.script(blocks, in: clone.path))
        #expect(result.status == 0, "\(result.output)")
        let output = result.output
        #expect(output.contains("instance/sina/devops/openstackblog  public domain ") && output.contains(".lb.sina.stacklab.org:110"), "\(output)")
        #expect(output.contains("http www.devops.lb.sina.stacklab.org:80 → members:80"), "\(output)")
        #expect(output.contains("Configuration file is valid"), "haproxy -c accepts what StackLab rendered: \(output)")
        #expect(output.contains("~ haproxy/sina/sina-lb on node/sina/sina-lb (drifted)") && output.contains("No drift."), "\(output)")
        #expect(output.split(separator: "\n").contains { $0.hasPrefix("  load balancers") && $0.hasSuffix("1.00") }, "a day of www: \(output)")
    }

    @Test func theBandwidthGuideRunsAsWritten() throws {
        let blocks = try Self.blocks("bandwidth.md", marked: "GuideTests.theBandwidthGuideRunsAsWritten")
        try #require(blocks.count == 2, "the guide's two blocks: the counting rules, a meter round")
        let clone = try Fixtures.bundledDeployment("bandwidth-guide")
        let result = try Self.inNamespace(prepare: "", Self.script(blocks, in: clone.path))
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("chain traffic-out {") && result.output.contains("counter name iifname map {") && result.output.contains("-out-internal\" } return"),
                "\(result.output)")
        #expect(result.output.contains("node/sina/sina-2: nothing to meter (simulated, or no ruleset StackLab loaded)"), "\(result.output)")
    }

    /// Object storage on one machine: a tenant's key, a loopback Swift cluster from the tooling executable, the staging
    /// region pointed at it, a container applied, a second plan empty. The cluster is stopped by PID.
    @Test(.enabled(if: LoopbackSwift.python != nil, "set STACKLAB_SWIFT_PYTHON to a python with swift==2.38.3 (.ci/run does)")) func theStorageGuideRunsAsWritten() throws {
        let blocks = try Self.blocks("storage.md", marked: "GuideTests.theStorageGuideRunsAsWritten")
        try #require(blocks.count == 2, "the guide's two blocks: the cluster, the container")
        let clone = try Fixtures.bundledDeployment("storage-guide")
        // The operator's git identity in a home of its own (not a tmpfs over /root: the venv's python may live there).
        let prepare = "export HOME=$(mktemp -d); git config --global user.name 'ACME Operator'; git config --global user.email ops@acme.invalid"
        let script = Self.script(blocks, in: clone.path) + "\nkill %1; wait %1 || true\necho '--- swift.log'; cat swift.log"
        let result = try Self.inNamespace(prepare: prepare, script)
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("key for tenant_devops:devops, shown once: ") && result.output.contains("swift proxy: http://127.0.0.1:"), "\(result.output)")
        #expect(result.output.contains("container/staging/devops/site") && result.output.contains("No changes: "), "applied, then a plan with nothing to change: \(result.output)")
        #expect(result.output.contains("staging/AUTH_tenant_devops") && result.output.contains("container/staging/devops/site: 0 objects") && result.output.contains("read .r:*"),
                "\(result.output)")
        #expect(result.output.contains("stopped on signal 15"), "the cluster stops on SIGTERM: \(result.output)")
    }

    @Test func theConsoleGuideRunsAsWritten() throws {
        let blocks = try Self.blocks("console.md", marked: "GuideTests.theConsoleGuideRunsAsWritten")
        try #require(blocks.count == 1, "the guide's block: a token")
        let clone = try Fixtures.bundledDeployment("console-guide")
        let result = try Self.inNamespace(prepare: "", Self.script(blocks, in: clone.path))
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("token for devops (laptop), shown once: slt_") && result.output.contains("- {name: laptop, sha256: "), "\(result.output)")
    }

    @Test func theServeGuideRunsAsWritten() throws {
        let blocks = try Self.blocks("serve.md", marked: "GuideTests.theServeGuideRunsAsWritten")
        try #require(blocks.count == 4, "the guide's four blocks: secrets, repository and hook, serve, push and look")
        let clone = try Fixtures.bundledDeployment("serve-guide")
        let script = """
            cd '\(clone.path)'
            echo '--- block 1'
            \(blocks[0])
            echo '--- block 2'
            \(blocks[1])
            echo '--- block 3 (left running)'
            ( \(blocks[2].replacingOccurrences(of: "\\\n", with: " ")) ) > '\(clone.path)/serve.log' 2>&1 &
            for _ in $(seq 100); do curl -sf http://127.0.0.1:8480/healthz > /dev/null && break; sleep 0.2; done
            echo '--- block 4'
            \(blocks[3])
            echo '--- secrets'
            stat -c '%a %n' /etc/stacklab /etc/stacklab/*
            kill %1; wait %1 || true
            """
        let result = try Self.inNamespace(prepare: "for dir in /etc/stacklab /srv /var/lib/stacklab; do mkdir -p $dir; mount -t tmpfs tmpfs $dir; done", script)
        let log = (try? String(contentsOfFile: clone.file("serve.log"), encoding: .utf8)) ?? ""
        #expect(result.status == 0, "\(result.output)\n--- serve.log\n\(log.suffix(3000))")
        #expect(result.output.contains("staging: converged at "), "\(result.output)")
        #expect(result.output.contains("\n5\n"), "every region of the bundled deployment in the status: \(result.output)")
        for secret in ["token", "read-token", "hook-secret"] {
            #expect(result.output.contains("600 /etc/stacklab/\(secret)"), "\(secret) is root-only: \(result.output)")
        }
        #expect(result.output.contains("700 /etc/stacklab\n"), "\(result.output)")
        #expect(log.contains("state in /var/lib/stacklab"), "the service says where its state is: \(log.prefix(500))")
    }

    @Test func thePostgreSQLGuideRunsAsWritten() throws {
        let blocks = try Self.blocks("postgresql.md", marked: "GuideTests.thePostgreSQLGuideRunsAsWritten")
        try #require(blocks.count == 3, "the guide's three blocks: the database, two services, stopping")
        let clone = try Fixtures.bundledDeployment("postgres-guide")
        let script = Self.script(blocks, in: "/srv/work") + "\necho '--- logs'\ntail -n 5 /tmp/serve-8481.log /tmp/serve-8482.log"
        // The clone and this build's stacklab (both may live under /tmp, as in CI's clean clone) are copied to a fresh
        // /srv before /tmp, where the guide puts the database, is made fresh too.
        let prepare = """
            mkdir -p /srv; mount -t tmpfs tmpfs /srv; cp -a '\(clone.path)' /srv/work
            mkdir /srv/bin; cp '\(StackLabBinary.path)' /srv/bin/stacklab
            mount -t tmpfs tmpfs /tmp; chmod 1777 /tmp
            """
        let result = try Self.inNamespace(prepare: prepare, bin: "/srv/bin", script)
        #expect(result.status == 0, "\(result.output)")
        let holders = result.output.split(separator: "\n").filter { $0.contains("\"holder\"") }
        #expect(holders.count == 5, "every region of the bundled deployment has a holder: \(result.output)")
        #expect(holders.contains { $0.contains("this reconciler") }, "\(result.output)")
    }

    @Test func theBootstrapGuideRunsAsWritten() throws {
        let blocks = try Self.blocks("bootstrap.md", marked: "GuideTests.theBootstrapGuideRunsAsWritten")
        try #require(blocks.count == 6, "the guide's six steps: host keys, StackLab's key, the region, preflight, rehearsal, the real run's plan")
        let clone = try Fixtures.bundledDeployment("bootstrap-guide")
        // What the guide assumes: three servers on 192.0.2.11–13 port 22 (each a real sshd with its own host key and
        // its own /var/tmp, as separate machines have), which accept root with the operator's key, and an operator
        // with git configured. The servers are stopped by PID however the script ends.
        let prepare = #"""
            for dir in /etc/stacklab /srv /var/lib/stacklab; do mkdir -p $dir; mount -t tmpfs tmpfs $dir; done
            mount -t tmpfs -o mode=700 tmpfs /root; export HOME=/root
            mkdir -m 700 /root/.ssh
            ssh-keygen -q -t ed25519 -N '' -C operator -f /root/.ssh/id_ed25519
            cp /root/.ssh/id_ed25519.pub /root/.ssh/authorized_keys
            git config --global user.name 'ACME Operator'; git config --global user.email ops@acme.invalid
            mkdir -p /run/sshd
            servers=()
            trap 'kill "${servers[@]}" 2>/dev/null || true' EXIT
            for n in 1 2 3; do
              ip addr add 192.0.2.1$n/32 dev lo
              mkdir /srv/host$n
              ssh-keygen -q -t ed25519 -N '' -C host$n -f /srv/host$n/ssh_host_ed25519_key
              printf '%s\n' "ListenAddress 192.0.2.1$n:22" "HostKey /srv/host$n/ssh_host_ed25519_key" "PasswordAuthentication no" \
                "KbdInteractiveAuthentication no" "PermitRootLogin prohibit-password" "UsePAM no" "PidFile none" \
                "Subsystem sftp internal-sftp" > /srv/host$n/sshd_config
              /usr/sbin/sshd -t -f /srv/host$n/sshd_config
              unshare --mount --propagation private -- sh -c "mount -t tmpfs tmpfs /var/tmp && exec /usr/sbin/sshd -D -e -f /srv/host$n/sshd_config" 2> /srv/host$n/sshd.log &
              servers+=($!)
            done
            for n in 1 2 3; do
              for _ in $(seq 100); do (exec 3<> /dev/tcp/192.0.2.1$n/22) 2> /dev/null && break; sleep 0.1; done
            done
            """#
        var script = "cd '\(clone.path)'\n"
        for (index, block) in blocks.enumerated() { script += "echo '--- step \(index + 1)'\n\(block)\n" }
        let result = try Self.inNamespace(prepare: prepare, script)
        #expect(result.status == 0, "\(result.output)")
        let steps = result.output.components(separatedBy: "--- step ")
        try #require(steps.count == 7, "\(result.output)")
        #expect(steps[1].components(separatedBy: "ED25519").count == 4, "three fingerprints to compare: \(steps[1])")
        #expect(steps[2].contains("Number of key(s) added: 1"), "ssh-copy-id authorized the key: \(steps[2])")
        #expect(steps[4].contains("acme-3") && !steps[4].contains("✗"), "preflight passed on every server: \(steps[4])")
        #expect(steps[5].contains("No changes: 3 nodes are in shape."), "the second run changed nothing: \(steps[5])")
        #expect(steps[5].contains("\"name\" : \"acme-2\"") && steps[5].contains("192.0.2.12"), "192.0.2.12 holds its own identity: \(steps[5])")
        for service in ["libvirtd", "swift-object", "swift-proxy"] {
            #expect(steps[6].contains("service \(service)"), "the real run's plan enables \(service): \(steps[6])")
        }
    }

    @Test func theUnitFileVerifies() throws {
        let unit = (Fixtures.packageRoot as NSString).appendingPathComponent("docs/guides/stacklab.service")
        let text = try String(contentsOfFile: unit, encoding: .utf8)
        #expect(text.contains("ExecStart=/usr/local/bin/stacklab serve --repo /srv/git/cloud.git --state-dir /var/lib/stacklab"))
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-analyze") else { return }  // no systemd here: the note says so
        // The guide installs the binary as /usr/local/bin/stacklab; verify against this build's.
        let scratch = try Scratch("unit")
        let copy = scratch.file("stacklab.service")
        try text.replacingOccurrences(of: "/usr/local/bin/stacklab", with: StackLabBinary.path).write(toFile: copy, atomically: true, encoding: .utf8)
        let verified = try Command.run(["systemd-analyze", "verify", copy])
        #expect(verified.status == 0 && verified.output.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty,
                "systemd-analyze verify: exit \(verified.status): \(verified.output)")
    }
}
