import Foundation
import Hosts
import Manifests
import Parallel
import Planning
import SSH
import Synchronization

/// `stacklab bootstrap`: brings a region's servers into shape over SSH. Preflight first, on every node at once
/// (reachable, host key, facts against the Node manifest); only when every node passes, each node's host items
/// (`HostConfig`) are compared with what it has and the differences converged. A second run finds nothing to do.
public struct Bootstrap: Sendable {
    /// How a run goes.
    public struct Options: Sendable {
        /// Plan only.
        public var dryRun = false
        /// Record the host key a node offers when neither the manifest nor an earlier run pinned one.
        public var trustOnFirstUse = false
        /// How to log in to SSH nodes.
        public var credentials: SSHHost.Credentials?
        /// Nodes worked on at once.
        public var parallelism = 8
        /// Seconds a node gets to answer.
        public var connectTimeout: Double = 10

        /// Default options.
        public init() {}
    }

    /// One node's outcome.
    public struct NodeReport: Sendable, Encodable {
        public var node: Address
        /// Why preflight failed (unreachable, host key refused, no credentials); nil when it passed.
        public var preflightError: String?
        /// Notes on the host key (`trusted on first use: SHA256:…`).
        public var notes: [String] = []
        public var facts: HostFacts?
        /// Where the host differs from its Node manifest, side by side.
        public var mismatches: [String] = []
        /// The items that were (or, with --dry-run, would be) converged.
        public var changes: [String] = []
        /// Why converging failed, if it did.
        public var error: String?

        init(node: Address) {
            self.node = node
        }
    }

    /// The whole outcome.
    public struct Report: Sendable {
        public var nodes: [NodeReport]
        /// Whether every node passed preflight (nothing is converged otherwise).
        public var preflightPassed: Bool { nodes.allSatisfy { $0.preflightError == nil } }
        public var succeeded: Bool { preflightPassed && nodes.allSatisfy { $0.error == nil } }
        public var changeCount: Int { nodes.reduce(0) { $0 + $1.changes.count } }
    }

    public let model: DesiredModel
    public let stateDirectory: String
    /// Saved ring builders by ring address (their files are installed).
    public let rings: [Address: StoredRing]

    /// A bootstrap of `model`'s nodes, keeping trusted host keys under `stateDirectory`.
    public init(model: DesiredModel, stateDirectory: String, rings: [Address: StoredRing]) {
        self.model = model
        self.stateDirectory = stateDirectory
        self.rings = rings
    }

    /// Bootstraps `region`'s nodes; `progress` hears each node's steps as they happen.
    public func run(region: String, options: Options, progress: @escaping @Sendable (Address, String) -> Void = { _, _ in }) -> Report {
        let nodes = model.nodes.filter { $0.region == region }.sorted { $0.name < $1.name }
        let known = KnownHosts(path: "\(stateDirectory)/known_hosts")
        // Preflight, all nodes at once (bounded): a node that fails does not stop the others from being reported.
        let hosts = ResultSlots<(NodeReport, (any HostDriver)?)>(count: nodes.count)
        concurrently(nodes.count, width: options.parallelism) { index in
            hosts[index] = preflight(nodes[index], known: known, options: options, progress: progress)
        }
        var reports = hosts.values.map(\.0)
        guard reports.allSatisfy({ $0.preflightError == nil }) else { return Report(nodes: reports) }

        let converged = ResultSlots<NodeReport>(count: nodes.count)
        let drivers = hosts.values.map(\.1)
        let preflighted = reports
        concurrently(nodes.count, width: options.parallelism) { index in
            var report = preflighted[index]
            guard let host = drivers[index] else {
                converged[index] = report
                return
            }
            do {
                report.changes = try converge(nodes[index], on: host, dryRun: options.dryRun, progress: progress)
            } catch {
                report.error = "\(error)"
            }
            converged[index] = report
        }
        reports = converged.values
        return Report(nodes: reports)
    }

    private func preflight(_ node: Resource<NodeSpec>, known: KnownHosts, options: Options,
                           progress: @Sendable (Address, String) -> Void) -> (NodeReport, (any HostDriver)?) {
        var report = NodeReport(node: node.address)
        progress(node.address, "preflight")
        let host: any HostDriver
        if node.spec.isSimulated {
            host = LocalHost(node: node.address, stateDirectory: stateDirectory)
        } else {
            guard let credentials = options.credentials else {
                report.preflightError = "no SSH key: pass --identity FILE or set STACKLAB_SSH_KEY"
                return (report, nil)
            }
            var pinned = node.spec.ssh?.hostKey?.value ?? known.key(for: node.address)
            if pinned == nil {
                guard options.trustOnFirstUse else {
                    let offered = (try? SSHHost.offeredKey(node: node, connectTimeout: options.connectTimeout)).map { " (it offers \($0.type) \($0.fingerprint))" } ?? ""
                    report.preflightError = "no pinned host key\(offered): put it in the Node's ssh.hostKey, or pass --trust-on-first-use to record it"
                    return (report, nil)
                }
                do {
                    let offered = try SSHHost.offeredKey(node: node, connectTimeout: options.connectTimeout)
                    let line = offered.line
                    try known.record(line, for: node.address)
                    report.notes.append("trusted on first use: \(offered.type) \(offered.fingerprint) (recorded in known_hosts)")
                    pinned = line
                } catch {
                    report.preflightError = "\(error)"
                    return (report, nil)
                }
            }
            do {
                host = try SSHHost(node: node, pinnedKey: pinned!, credentials: credentials, connectTimeout: options.connectTimeout)
            } catch {
                report.preflightError = error.message
                return (report, nil)
            }
        }
        do {
            if node.spec.isSimulated {
                // A simulated node is what its manifest says; its host directory is on this machine.
                report.facts = HostFacts(cpus: node.spec.cpus.value, memoryBytes: node.spec.memory.value.bytes,
                                         disks: Dictionary((node.spec.disks?.value ?? []).map { ($0.name.value, $0.size.value.bytes) }, uniquingKeysWith: { a, _ in a }),
                                         os: "simulated")
            } else {
                let facts = try host.facts()
                report.facts = facts
                report.mismatches = Self.mismatches(node.spec, facts)
            }
        } catch {
            report.preflightError = error.message
            return (report, nil)
        }
        return (report, host)
    }

    /// Where `facts` differ from the Node manifest, as "field: manifest X, host Y".
    static func mismatches(_ spec: NodeSpec, _ facts: HostFacts) -> [String] {
        var lines: [String] = []
        if facts.cpus != spec.cpus.value { lines.append("cpus: manifest \(spec.cpus.value), host \(facts.cpus)") }
        let declared = spec.memory.value.bytes
        // Firmware and the kernel keep some memory: within 10% is the same machine.
        if facts.memoryBytes < declared - declared / 10 || facts.memoryBytes > declared + declared / 10 {
            lines.append("memory: manifest \(spec.memory.value), host \(ByteSize(bytes: facts.memoryBytes).readable)")
        }
        for disk in spec.disks?.value ?? [] {
            if let size = facts.disks[disk.name.value] {
                let want = disk.size.value.bytes
                if size < want - want / 10 || size > want + want / 10 {
                    lines.append("disk \(disk.name.value): manifest \(disk.size.value), host \(ByteSize(bytes: size).readable)")
                }
            } else {
                lines.append("disk \(disk.name.value): manifest \(disk.size.value), host has no such disk")
            }
        }
        return lines
    }

    /// Compares `node`'s items with its host (one round trip for files, one for guards) and converges what
    /// differs. Returns what was (or would be) changed.
    private func converge(_ node: Resource<NodeSpec>, on host: any HostDriver, dryRun: Bool,
                          progress: @Sendable (Address, String) -> Void) throws -> [String] {
        try Self.converge(try HostConfig.items(for: node, model: model, rings: rings), on: host, dryRun: dryRun, progress: progress)
    }

    /// Compares `items` with `host` (one round trip for files, one for guards) and converges what differs, in order.
    /// Returns what was (or would be) changed.
    public static func converge(_ items: [HostItem], on host: any HostDriver, dryRun: Bool,
                                progress: @Sendable (Address, String) -> Void = { _, _ in }) throws -> [String] {
        var paths: [String] = []
        var guards: [String] = []
        for item in items {
            switch item.kind {
            case .file(let path, _, _): paths.append(path)
            case .command(_, let creates, let unless):
                if let creates { guards.append("[ -e \"$STACKLAB_ROOT\"\(shellQuote(creates)) ]") } else if let unless { guards.append("( \(unless) ) >/dev/null 2>&1") } else { guards.append("false") }
            }
        }
        // What the host has, in one round trip: the files' hashes and modes, then which guards hold.
        let script = (paths.isEmpty ? "true" : FileState.command(for: paths)) + "; "
            + guards.enumerated().map { "if \($0.element); then echo guard \($0.offset); fi" }.joined(separator: "; ")
        let observed = try host.run(script)
        let lines = observed.stdout.split(separator: "\n")
        let files = FileState.parse(lines.filter { !$0.hasPrefix("guard ") }.joined(separator: "\n"), root: host.root)
        let satisfied = Set(lines.filter { $0.hasPrefix("guard ") }.compactMap { Int($0.dropFirst("guard ".count)) })
        var changes: [String] = []
        var writes: [HostFile] = []
        var commands: [(name: String, run: String)] = []
        var guardIndex = 0
        for item in items {
            switch item.kind {
            case .file(let path, let content, let mode):
                let have = files[path]
                guard have?.sha256 != item.sha256 || have?.mode != mode else { continue }
                changes.append(have == nil ? "+ \(item.name)" : "~ \(item.name)")
                progress(host.address, changes.last!)
                writes.append(HostFile(path: path, content: content, mode: mode))
            case .command(let run, _, _):
                defer { guardIndex += 1 }
                guard !satisfied.contains(guardIndex) else { continue }
                changes.append("+ \(item.name)")
                progress(host.address, changes.last!)
                commands.append((item.name, run))
            }
        }
        guard !dryRun else { return changes }
        // Files first (configuration), then commands (services read it), each in one batch.
        try host.write(writes)
        let ran = try host.run(sequence: commands.map(\.run))
        if let failure = ran.failure {
            let result = failure.result
            throw HostError(node: host.address, message: "\(commands[failure.index].name) failed (exit \(result.exitStatus)): \(result.stderr.isEmpty ? result.stdout : result.stderr)")
        }
        return changes
    }
}

/// Host keys recorded by `--trust-on-first-use`: `<node address> <key type> <base64>` lines in the state directory.
final class KnownHosts: @unchecked Sendable {
    let path: String
    private let lock = NSLock()

    init(path: String) {
        self.path = path
    }

    func key(for node: Address) -> String? {
        lock.withLock {
            let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
            for line in text.split(separator: "\n") {
                let parts = line.split(separator: " ", maxSplits: 1)
                if parts.count == 2, parts[0] == node.description { return String(parts[1]) }
            }
            return nil
        }
    }

    func record(_ key: String, for node: Address) throws {
        try lock.withLock {
            var text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
            text += "\(node) \(key)\n"
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try text.write(toFile: path, atomically: true, encoding: .utf8)
        }
    }
}

/// Runs `body(0..<count)` on at most `width` threads at once.
func concurrently(_ count: Int, width: Int, _ body: @escaping @Sendable (Int) -> Void) {
    let next = Mutex(0)
    DispatchQueue.concurrentPerform(iterations: max(1, min(width, count))) { _ in
        while true {
            let index = next.withLock { value in
                defer { value += 1 }
                return value
            }
            guard index < count else { return }
            body(index)
        }
    }
}
