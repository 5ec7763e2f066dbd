import ArgumentParser
import Foundation
import Hosts
import Manifests
import Pipelines
import Processes
import SSH
import StackLabCLI
import Synchronization
import TestSupport

/// `stacklab-bench bootstrap`: StackLab's host convergence against Ansible's on the same work, interleaved.
struct BenchBootstrap: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bootstrap",
        abstract: "Converge 3 loopback sshd hosts with StackLab and with Ansible (first run and no-op), side by side.",
        discussion: """
            Starts three real sshd on 127.0.0.2-4, each with a file root. The work per host: 20 files (three of them \
            300 KB, like ring files) and 5 guarded commands. StackLab connects (host key checked, key auth, facts), \
            compares and converges through its host face; Ansible runs the same as a playbook (copy with mode, \
            command with creates) tuned with pipelining, ControlPersist and forks. Each run starts from empty roots \
            for "first" and repeats for "no-op"; the tools alternate. Ansible is taken from --ansible, \
            $STACKLAB_ANSIBLE or .build/ansible-venv (python3 -m venv .build/ansible-venv && \
            .build/ansible-venv/bin/pip install 'ansible-core==2.19.*'); without it only StackLab's rows print.
            """)

    @Option(help: "Runs (the median is reported).")
    var runs = 3

    @Option(help: ArgumentHelp("ansible-playbook to compare with.", valueName: "path"))
    var ansible: String?

    @Option(help: "text or json.")
    var format: OutputFormat = .text

    func run() throws {
        let servers = try ["127.0.0.2", "127.0.0.3", "127.0.0.4"].map { try LoopbackSSHD(address: $0) }
        for server in servers.dropFirst() {
            try FileManager.default.removeItem(atPath: "\(server.directory)/authorized_keys")
            try FileManager.default.copyItem(atPath: "\(servers[0].directory)/user_key.pub", toPath: "\(server.directory)/authorized_keys")
        }
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("stacklab-bench-bootstrap-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: work) }
        let roots = servers.indices.map { "\(work)/root-\($0)" }
        let items = Self.items()
        try Self.writeSources(items, to: "\(work)/files")

        let playbook = try ansiblePlaybook()
        if playbook != nil { try Self.writeAnsibleProject(items, servers: servers, roots: roots, work: work) }

        var samples: [String: [Double]] = [:]
        for _ in 0..<runs {
            for tool in playbook == nil ? ["stacklab"] : ["stacklab", "ansible"] {
                for root in roots {
                    try? FileManager.default.removeItem(atPath: root)
                    try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
                }
                for phase in ["first", "no-op"] {
                    let start = Date()
                    if tool == "stacklab" {
                        let changes = try Self.converge(items, servers: servers, roots: roots)
                        guard (phase == "first") == (changes == items.count * servers.count) else {
                            throw ValidationError("StackLab's \(phase) run made \(changes) changes")
                        }
                    } else {
                        let result = try Command.run(["env", "ANSIBLE_CONFIG=\(work)/ansible/ansible.cfg", playbook!, "-i", "\(work)/ansible/inventory.ini",
                                                      "\(work)/ansible/playbook.yml"])
                        guard result.status == 0 else { throw ValidationError("ansible-playbook failed: \(result.output.suffix(2000))") }
                        let changed = phase == "first" ? "changed=\(items.count)" : "changed=0"
                        guard result.output.components(separatedBy: changed).count - 1 == servers.count else {
                            throw ValidationError("Ansible's \(phase) run did not report \(changed) on every host: \(result.output.suffix(1500))")
                        }
                    }
                    samples["\(tool) \(phase)", default: []].append(Date().timeIntervalSince(start))
                }
            }
        }
        // Peak RSS: this process for StackLab (it ran in process), the largest child for Ansible.
        var own = rusage(), children = rusage()
        getrusage(RUSAGE_SELF.rawValue, &own)
        getrusage(RUSAGE_CHILDREN.rawValue, &children)
        var rows: [BenchRow] = []
        for name in ["stacklab first", "stacklab no-op", "ansible first", "ansible no-op"] {
            guard let values = samples[name]?.sorted() else { continue }
            let rss = Double(name.hasPrefix("stacklab") ? own.ru_maxrss : children.ru_maxrss) / 1024
            rows.append(BenchRow(name: name, medianSeconds: values[values.count / 2], minSeconds: values.first!, maxSeconds: values.last!, peakRSSMB: rss))
        }
        var report = BenchReport(workload: "bootstrap of 3 sshd hosts, \(items.count) items each (20 files incl. 3 x 300 KB, 5 guarded commands)",
                                 cores: ProcessInfo.processInfo.activeProcessorCount, runs: runs, rows: rows)
        if let first = samples["ansible first"]?.sorted(), let ours = samples["stacklab first"]?.sorted(),
           let noop = samples["ansible no-op"]?.sorted(), let ourNoop = samples["stacklab no-op"]?.sorted() {
            let ratio = String(format: "Ansible / StackLab: first run %.1f×, no-op %.1f×", first[first.count / 2] / ours[ours.count / 2],
                               noop[noop.count / 2] / ourNoop[ourNoop.count / 2])
            report.rows[report.rows.count - 1].detail = ratio
        } else {
            report.rows[report.rows.count - 1].detail = "Ansible not found (see --help): no comparison"
        }
        Terminal.standardOutput.write(format == .json ? try JSON.encode(report) : report.table)
    }

    /// The same work for every host: 17 small files, 3 of 300 KB, 5 guarded commands.
    static func items() -> [HostItem] {
        var items: [HostItem] = []
        var seed: UInt64 = 42
        func bytes(_ count: Int) -> [UInt8] {
            (0..<count).map { _ in
                seed = seed &* 6364136223846793005 &+ 1442695040888963407
                return UInt8(truncatingIfNeeded: seed >> 33)
            }
        }
        for index in 0..<17 {
            items.append(HostItem(name: "file /etc/bench/conf-\(index).json", kind: .file(path: "/etc/bench/conf-\(index).json", content: bytes(2048), mode: 0o644)))
        }
        for type in ["account", "container", "object"] {
            items.append(HostItem(name: "file /etc/bench/\(type).ring.gz", kind: .file(path: "/etc/bench/\(type).ring.gz", content: bytes(300_000), mode: 0o644)))
        }
        for index in 0..<5 {
            let path = "/var/lib/bench/dir-\(index)"
            items.append(HostItem(name: "directory \(path)", kind: .command(run: "mkdir -p -- \"$STACKLAB_ROOT\"\(Session.quote(path))", creates: path, unless: nil)))
        }
        return items
    }

    /// StackLab's run: connect to every host at once (host key checked, key auth, facts), then converge.
    static func converge(_ items: [HostItem], servers: [LoopbackSSHD], roots: [String]) throws -> Int {
        let targets = try servers.map { (address: $0.address, port: $0.port, user: $0.user, key: try $0.hostKeyLine()) }
        let identity = servers[0].userKey
        let counts = Mutex<[Int]>(Array(repeating: -1, count: servers.count))
        let failures = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: targets.count) { index in
            do {
                let target = targets[index]
                let host = try SSHHost(address: Address(kind: .node, region: "bench", name: "host-\(index)"), host: target.address, port: target.port,
                                       user: target.user, fileRoot: roots[index], pinnedKey: target.key, credentials: .init(key: .file(identity)))
                _ = try host.facts()
                let changes = try Bootstrap.converge(items, on: host, dryRun: false)
                counts.withLock { $0[index] = changes.count }
            } catch {
                failures.withLock { $0.append("\(error)") }
            }
        }
        if let failure = failures.withLock({ $0.first }) { throw ValidationError("StackLab failed: \(failure)") }
        return counts.withLock { $0.reduce(0, +) }
    }

    static func writeSources(_ items: [HostItem], to directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        for item in items {
            guard case .file(let path, let content, _) = item.kind else { continue }
            try Data(content).write(to: URL(fileURLWithPath: "\(directory)/\((path as NSString).lastPathComponent)"))
        }
    }

    /// An inventory, an ansible.cfg tuned as an expert would (pipelining, ControlPersist, forks) and the playbook.
    static func writeAnsibleProject(_ items: [HostItem], servers: [LoopbackSSHD], roots: [String], work: String) throws {
        let directory = "\(work)/ansible"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var knownHosts = ""
        var inventory = "[hosts]\n"
        for (index, server) in servers.enumerated() {
            knownHosts += "[\(server.address)]:\(server.port) \(try server.hostKeyLine())\n"
            inventory += "host-\(index) ansible_host=\(server.address) ansible_port=\(server.port) ansible_user=\(server.user) "
                + "ansible_ssh_private_key_file=\(servers[0].userKey) root=\(roots[index]) ansible_python_interpreter=/usr/bin/python3\n"
        }
        try knownHosts.write(toFile: "\(directory)/known_hosts", atomically: true, encoding: .utf8)
        try inventory.write(toFile: "\(directory)/inventory.ini", atomically: true, encoding: .utf8)
        try """
            [defaults]
            forks = 3
            gathering = explicit
            stdout_callback = default
            interpreter_python = /usr/bin/python3
            [ssh_connection]
            pipelining = True
            ssh_args = -o ControlMaster=auto -o ControlPersist=60s -o UserKnownHostsFile=\(directory)/known_hosts -o StrictHostKeyChecking=yes
            control_path_dir = \(directory)/cp

            """.write(toFile: "\(directory)/ansible.cfg", atomically: true, encoding: .utf8)
        var tasks = ""
        for item in items {
            switch item.kind {
            case .file(let path, _, let mode):
                tasks += """
                      - copy: {src: "\(work)/files/\((path as NSString).lastPathComponent)", dest: "{{ root }}\(path)", mode: "0\(String(mode, radix: 8))"}

                    """
            case .command(_, let creates, _):
                tasks += """
                      - command: {cmd: "mkdir -p {{ root }}\(creates ?? "")", creates: "{{ root }}\(creates ?? "")"}

                    """
            }
        }
        try """
            - hosts: hosts
              gather_facts: false
              tasks:
              - file: {path: "{{ root }}/etc/bench", state: directory}
                changed_when: false
            \(tasks)
            """.write(toFile: "\(directory)/playbook.yml", atomically: true, encoding: .utf8)
    }

    private func ansiblePlaybook() throws -> String? {
        let candidates = [ansible, ProcessInfo.processInfo.environment["STACKLAB_ANSIBLE"], ".build/ansible-venv/bin/ansible-playbook"].compactMap { $0 }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }
}
