import Foundation
import Hosts
import Libvirt
import Manifests
import Planning
import SSH
#if canImport(Glibc)
import Glibc
#endif

/// A production node: libvirt over `qemu+libssh2://` with the manifest's pinned host key, and its host face over SSH
/// (files under the node's file root, guarded commands). A node with a file root (a test host sharing a machine) gets
/// the files and an `nft -c` check, never a change to the machine's own interfaces or ruleset.
///
/// `@unchecked Sendable`: `lock` guards the SSH session opened on first use.
public final class RemoteMachine: NodeMachine, @unchecked Sendable {
    /// The node (for errors).
    let node: Address
    let host: String
    let port: UInt16
    let user: String
    let fileRoot: String?
    let hostKey: String
    let identity: String
    public let uri: String
    /// The known_hosts file libvirt checks the node against (a temporary file, removed with the machine).
    private let knownHostsFile: String
    private var session: SSHHost?
    private let lock = NSLock()
    /// Seconds the node gets to accept a connection and show its SSH banner (set before the machine is first used).
    public var connectTimeout: Double = 10

    /// The machine at `endpoint` (`qemu+ssh://user@host:port/system`, checked), reached with SSH key `identity`;
    /// `socket` is the libvirt daemon's socket on the node when it is not the default one.
    public init(endpoint: NodeEndpoint, identity: String, socket: String?) throws(DriverError) {
        node = endpoint.address
        guard let parsed = LibvirtURI(parsing: endpoint.libvirt), case .ssh(let user, let host, let port, _) = parsed.endpoint else {
            throw DriverError(node: endpoint.address, message: "refusing libvirt URI '\(endpoint.libvirt)': \(LibvirtURI.hint)", isTransient: false)
        }
        guard let hostKey = endpoint.hostKey, HostKey(publicKeyLine: hostKey) != nil else {
            throw DriverError(node: endpoint.address, message: "no pinned host key: put the server's key in the Node's ssh.hostKey (stacklab bootstrap --trust-on-first-use shows and records it)", isTransient: false)
        }
        self.host = host
        self.port = UInt16(port ?? 22)
        self.user = user ?? "root"
        fileRoot = endpoint.fileRoot
        self.hostKey = hostKey
        self.identity = identity
        // Written where any user may write (a read-only plan needs it too), and only for this machine's life.
        knownHostsFile = NSTemporaryDirectory() + "/stacklab-known-hosts-\(getpid())-\(UUID().uuidString.prefix(8))"
        let entry = self.port == 22 ? (host.contains(":") ? "[\(host)]" : host) : "[\(host)]:\(self.port)"
        do {
            try Data("\(entry) \(hostKey.split(separator: " ").prefix(2).joined(separator: " "))\n".utf8).write(to: URL(fileURLWithPath: knownHostsFile), options: .atomic)
        } catch {
            throw DriverError(node: endpoint.address, message: "cannot write \(knownHostsFile): \(error)", isTransient: false)
        }
        // libvirt's in-process libssh2 transport, with what the reconciler (not the manifest) supplies: the key, a
        // known_hosts file holding only the node's pinned host key (so libvirt verifies the server as StackLab does),
        // and the daemon's socket when it is not the default one.
        var query = ["sshauth=privkey", "keyfile=\(Self.escape(identity))", "known_hosts=\(Self.escape(knownHostsFile))", "known_hosts_verify=normal"]
        if let socket, !socket.isEmpty { query.append("socket=\(Self.escape(socket))") }
        uri = "qemu+libssh2://\(self.user)@\(host.contains(":") ? "[\(host)]" : host):\(self.port)/system?" + query.joined(separator: "&")
    }

    deinit { unlink(knownHostsFile) }

    /// The daemon's socket on `host` when it is not the default one, from a setting (`$STACKLAB_LIBVIRT_SOCKET`): one
    /// path for every node, or `host=path` pairs separated by commas (nodes not named use the default).
    public static func socket(for host: String, in setting: String?) -> String? {
        guard let setting, !setting.isEmpty else { return nil }
        guard setting.contains("=") else { return setting }
        for pair in setting.split(separator: ",") {
            let parts = pair.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            if parts.count == 2, parts[0] == host { return parts[1] }
        }
        return nil
    }

    static func escape(_ value: String) -> String {
        value.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed.subtracting(CharacterSet(charactersIn: "&=+"))) ?? value
    }

    /// Whether commands may change the machine itself (a production node's root is `/`).
    private var ownsMachine: Bool { fileRoot.map { $0 == "/" || $0.isEmpty } ?? true }

    // MARK: Connection

    /// libvirt's ssh transport waits forever on a port that accepts and stays silent: the node must show an SSH banner
    /// within the deadline before libvirt is let near it.
    public func willConnect() throws(LibvirtError) {
        do {
            try TCPConnection.probeSSH(host: host, port: port, timeout: connectTimeout)
        } catch {
            throw LibvirtError.cannotConnect("connect to \(host):\(port)", message: "\(error)")
        }
    }

    public func connectionIsCurrent() -> Bool { true }
    public func connected() {}

    public func disconnect() {
        lock.withLock { session = nil }
    }

    /// Changes are durable as libvirt makes them.
    public func willChange(domain: String, volumePrefixes: [String], deferring: Bool) {}
    public func didChange(on connection: Connection, succeeded: Bool) throws(DriverError) {}

    /// The host face, opened on first use with the reconciler's key and the node's pinned host key; the same session
    /// serves every file of the run.
    func face() throws(DriverError) -> SSHHost {
        lock.lock()
        defer { lock.unlock() }
        if let session { return session }
        do {
            let opened = try SSHHost(address: node, host: host, port: port, user: user, fileRoot: fileRoot, pinnedKey: hostKey,
                                     credentials: .init(key: .file(identity)), connectTimeout: connectTimeout)
            session = opened
            return opened
        } catch {
            throw DriverError(node: node, message: error.message, isTransient: true)
        }
    }

    /// Runs `body` on the host face, its failures as the node's (transient: a lost connection may come back).
    private func onHost<T>(_ what: String, _ body: (SSHHost) throws -> T) throws(DriverError) -> T {
        let face = try face()
        do {
            return try body(face)
        } catch let error as DriverError {
            throw error
        } catch {
            throw DriverError(node: node, message: "\(what): \(error)", isTransient: true)
        }
    }

    // MARK: Rings

    public func rings() throws(DriverError) -> [String: String] {
        try onHost("cannot read the ring files") { face in
            try face.files(RingFiles.standard.map { "/etc/swift/\($0)" }).reduce(into: [:]) { $0[($1.key as NSString).lastPathComponent] = $1.value.sha256 }
        }
    }

    public func readRing(_ name: String) throws(DriverError) -> Data {
        try onHost("cannot read \(name)") { face in Data(try face.read("/etc/swift/\(name)")) }
    }

    public func installRing(_ name: String, content: Data, sha256: String) throws(DriverError) {
        try onHost("cannot install \(name)") { face in try face.write("/etc/swift/\(name)", content: [UInt8](content), mode: 0o644) }
        guard try rings()[name] == sha256 else {
            throw DriverError(node: node, message: "\(name) does not match its checksum after install", isTransient: true)
        }
    }

    // MARK: Networking

    public func networkFiles() throws(DriverError) -> NetworkFiles {
        let dnsmasq = NetworkFiles.dnsmasqDirectory, metadata = NetworkFiles.metadataDirectory, ruleset = NetworkFiles.rulesetFile
        let script = """
            cd "$STACKLAB_ROOT/" || exit 0
            for f in .\(dnsmasq)/*.conf .\(dnsmasq)/*.hosts .\(metadata)/*.json .\(ruleset) .\(ProxyConfig.file); do
              [ -f "$f" ] && { printf '\\n@@file %s\\n' "${f#.}"; cat "$f"; }
            done
            if [ -f .\(ProxyConfig.file) ]; then
              printf '\\n@@haproxy\\n'; \(Self.proxyAlive) && echo running || echo stopped
            fi
            if [ -z "$STACKLAB_ROOT" ] && [ -f .\(ruleset) ]; then
              printf '\\n@@live\\n'; \(Ruleset.listing)
              printf '\\n@@listed\\n'; cat .\(NetworkFiles.listedFile) 2>/dev/null
            fi
            printf '\\n'
            """
        let output = try run(script)
        var found = NetworkFiles(files: [:])
        var section: String?
        var text = ""
        // Every section is followed by the newline that precedes the next marker (a file need not end with one).
        func close() {
            guard let section else { return }
            if text.hasSuffix("\n") { text.removeLast() }
            if section == "@@live" {
                found.live = text
            } else if section == "@@haproxy" {
                found.proxyRunning = text.hasPrefix("running")
            } else if section == "@@listed" {
                found.listed = text
            } else {
                found.files[String(section.dropFirst("@@file ".count))] = text
            }
        }
        for line in output.split(separator: "\n", omittingEmptySubsequences: false).dropLast(output.hasSuffix("\n") ? 1 : 0) {
            if line.hasPrefix("@@file ") || line == "@@live" || line == "@@listed" || line == "@@haproxy" {
                close()
                section = String(line)
                text = ""
            } else {
                text += line + "\n"
            }
        }
        close()
        return found
    }

    public func writeNetworkFiles(_ files: [(path: String, content: String)], dhcp: NodeDHCP) throws(DriverError) {
        let face = try face()
        do {
            try face.write(files.map { HostFile(path: $0.path, content: Array($0.content.utf8), mode: 0o644) })
        } catch {
            throw DriverError(node: node, message: "cannot write the DHCP configuration: \(error.message)", isTransient: true)
        }
        let dnsmasq = NetworkFiles.dnsmasqDirectory
        var script = "cd \"$STACKLAB_ROOT/\" || exit 1\nfor f in .\(dnsmasq)/*.conf .\(dnsmasq)/*.hosts .\(NetworkFiles.metadataDirectory)/*.json; do\n  case \"${f#.}\" in\n"
        for path in Set(files.map(\.path)).sorted() { script += "    \(Session.quote(path))) ;;\n" }
        script += "    *) rm -f \"$f\" ;;\n  esac\ndone\n"
        if ownsMachine {
            for network in dhcp.networks {
                script += "ip addr replace \(network.gateway)/\(network.range.prefix) dev \(Session.quote(network.bridge))\n"
                script += "systemctl reload-or-restart stacklab-dnsmasq@\(network.network) || true\n"
            }
        }
        _ = try run(script + "true\n")
    }

    /// The file is checked with `nft -c` on the node first, so a ruleset the kernel refuses never replaces a working one.
    public func loadRuleset(_ ruleset: Ruleset) throws(DriverError) {
        let file = NetworkFiles.rulesetFile
        let remove = ruleset.rules.isEmpty
        if !remove {
            let face = try face()
            do {
                try face.write(file, content: Array(ruleset.nft.utf8), mode: 0o644)
            } catch {
                throw DriverError(node: node, message: "cannot write the ruleset: \(error.message)", isTransient: true)
            }
        }
        var script = "cd \"$STACKLAB_ROOT/\" || exit 1\n"
        if remove {
            if ownsMachine { script += "\(Ruleset.removal)\n" }
            script += "rm -f .\(file) .\(NetworkFiles.listedFile)\n"
        } else {
            script += "nft -c -f .\(file) || exit 3\n"
            if ownsMachine {
                // The metadata service knows an instance by its port's mark, which an accepted connection carries only
                // with tcp_fwmark_accept; the bridge table sees bridged frames without br_netfilter.
                script += "sysctl -qw net.ipv4.tcp_fwmark_accept=1\n"
                // The bridge table's counters carry on across a reload (the file flushes it, and declares it again). A
                // table without StackLab's epoch counter is not one whose counters StackLab knows: it is made anew, with
                // a new epoch, in the same transaction (see `TrafficReading`).
                let epoch = TrafficCounter.epochCounter, table = Ruleset.table
                script += """
                    if nft list counter bridge \(table) \(epoch) >/dev/null 2>&1; then nft -f .\(file)
                    else { printf 'table bridge \(table)\\ndelete table bridge \(table)\\n'; cat .\(file)
                      printf 'add counter bridge \(table) \(epoch) { comment "%s" }\\n' "$(cat /proc/sys/kernel/random/uuid)"; } | nft -f -
                    fi && { \(Ruleset.listing); } > .\(NetworkFiles.listedFile)

                    """
            }
        }
        _ = try run(script + "true\n")
    }

    /// Reads the counters of StackLab's bridge table (`nft -j`), the node's boot id and the installed ruleset (which
    /// counters it still declares), in one command.
    public func trafficReading() throws(DriverError) -> TrafficReading? {
        guard ownsMachine else { return nil }
        let output = try run("""
            cd "$STACKLAB_ROOT/" || exit 1
            printf '@@boot\\n'; cat /proc/sys/kernel/random/boot_id
            printf '@@counters\\n'; nft -j list counters table bridge \(Ruleset.table) 2>/dev/null; printf '\\n'
            printf '@@file\\n'; cat .\(NetworkFiles.rulesetFile) 2>/dev/null; true

            """)
        guard let boot = output.range(of: "@@boot\n"), let counters = output.range(of: "@@counters\n"), let file = output.range(of: "@@file\n") else {
            throw DriverError(node: node, message: "cannot read the traffic counters: unexpected output \(output.prefix(200))", isTransient: true)
        }
        let bootID = output[boot.upperBound..<counters.lowerBound].trimmingCharacters(in: .whitespacesAndNewlines)
        let json = output[counters.upperBound..<file.lowerBound].trimmingCharacters(in: .whitespacesAndNewlines)
        let declared = Set((Ruleset(parsing: String(output[file.upperBound...])).map { Array($0.counters) } ?? []).map(\.name))
        return try Self.trafficReading(json: json, boot: bootID, declared: declared, node: node)
    }

    /// A reading from `nft -j list counters` output.
    static func trafficReading(json: String, boot: String, declared: Set<String>, node: Address) throws(DriverError) -> TrafficReading {
        struct Listing: Decodable {
            struct Item: Decodable { var counter: Counter? }
            struct Counter: Decodable { var name: String; var comment: String?; var packets: Int64; var bytes: Int64 }
            var nftables: [Item]
        }
        guard !json.isEmpty else { return TrafficReading(epoch: nil, counters: [], stale: []) }
        let listing: Listing
        do {
            listing = try JSONDecoder().decode(Listing.self, from: Data(json.utf8))
        } catch {
            throw DriverError(node: node, message: "cannot read the traffic counters: nft -j printed what is not its JSON (\(error))", isTransient: true)
        }
        var epoch: String?
        var counters: [(counter: TrafficCounter, bytes: Int64, packets: Int64)] = []
        var stale: Set<String> = []
        for case let item? in listing.nftables.map(\.counter) {
            if item.name == TrafficCounter.epochCounter {
                epoch = item.comment.map { "\(boot)/\($0)" }
            } else if let counter = item.comment.flatMap(TrafficCounter.init(comment:)), counter.name == item.name {
                counters.append((counter, item.bytes, item.packets))
                if !declared.contains(item.name) { stale.insert(item.name) }
            }
        }
        return TrafficReading(epoch: epoch, counters: counters.sorted { $0.counter < $1.counter }, stale: stale)
    }

    public func deleteTrafficCounters(_ names: [String]) throws(DriverError) {
        guard ownsMachine, !names.isEmpty else { return }
        // A name is the node's own (read from it) and safe in a shell word only if it is one of ours.
        let ours = names.filter { $0.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") } }
        _ = try run(ours.map { "nft delete counter bridge \(Ruleset.table) \($0) 2>/dev/null" }.joined(separator: "\n") + "\ntrue\n")
    }

    /// The shell test that StackLab's HAProxy master runs (its pid file names a live process), run under the file root.
    static let proxyAlive = "{ p=\"$(cat .\(ProxyConfig.runDirectory)/haproxy.pid 2>/dev/null | head -n1)\"; [ -n \"$p\" ] && kill -0 \"$p\" 2>/dev/null; }"

    /// The new file is written beside the installed one and checked with `haproxy -c` on the node; only then is it
    /// renamed into place and HAProxy reloaded: a master process started by StackLab (`haproxy -W -D`, its pid file
    /// named by the configuration) gets USR2 (its
    /// workers hand their listening sockets to the new ones, so no established connection is dropped), or systemd's
    /// `stacklab-haproxy` unit is reloaded on a server StackLab owns; a stopped HAProxy is started. The master keeps
    /// the stdout and stderr it was started with and writes a notice on each reload: they go to `haproxy.log` in the
    /// run directory, not to the command that started it.
    public func loadProxy(_ config: ProxyConfig) throws(DriverError) {
        let file = ProxyConfig.file, run = ProxyConfig.runDirectory
        var script = "cd \"$STACKLAB_ROOT/\" || exit 1\n"
        if config.services.isEmpty {
            script += "if \(Self.proxyAlive); then kill -USR1 \"$p\"; fi\n"
            if ownsMachine { script += "if [ -d /run/systemd/system ]; then systemctl disable --now stacklab-haproxy 2>/dev/null; fi\n" }
            script += "rm -f .\(file) .\(file).new\n"
            _ = try self.run(script + "true\n")
            return
        }
        let face = try face()
        do {
            try face.write(file + ".new", content: Array(config.text.utf8), mode: 0o644)
        } catch {
            throw DriverError(node: node, message: "cannot write the HAProxy configuration: \(error.message)", isTransient: true)
        }
        script += """
            out="$(haproxy -c -f .\(file).new 2>&1)" || { echo "haproxy -c refused the configuration: $out" >&2; rm -f .\(file).new; exit 3; }
            mv -f .\(file).new .\(file)
            mkdir -p .\(run)

            """
        if ownsMachine {
            script += "if [ -d /run/systemd/system ]; then systemctl enable stacklab-haproxy >/dev/null 2>&1; systemctl reload-or-restart stacklab-haproxy || exit 4; exit 0; fi\n"
        }
        script += """
            if \(Self.proxyAlive); then
              kill -USR2 "$p" || exit 4
            else
              haproxy -W -D -f "$PWD\(file)" </dev/null >>.\(run)/haproxy.log 2>&1 || { tail -n 20 .\(run)/haproxy.log >&2; exit 4; }
              # The daemonized master writes its pid file after the starting process exits: done once it runs.
              i=0
              until \(Self.proxyAlive); do
                i=$((i + 1))
                [ "$i" -lt 100 ] || { echo "haproxy started but no live master in 10 s" >&2; tail -n 20 .\(run)/haproxy.log >&2; exit 4; }
                sleep 0.1
              done
            fi

            """
        _ = try self.run(script + "true\n")
    }

    /// `show stat` on the stats socket, with OpenBSD netcat (`nc -U`) or socat, whichever the node has.
    public func proxyHealth() throws(DriverError) -> [ProxyServerHealth]? {
        let socket = ".\(ProxyConfig.runDirectory)/haproxy.sock"
        let output = try run("""
            cd "$STACKLAB_ROOT/" || exit 0
            [ -S \(socket) ] || { echo '@@none'; exit 0; }
            echo 'show stat' | { nc -N -U \(socket) 2>/dev/null || socat stdio unix-connect:\(socket); } || echo '@@none'
            """)
        return output.contains("@@none") ? nil : ProxyServerHealth.parse(stats: output)
    }

    /// Runs a script through the host face; a failure carries its output.
    func run(_ script: String) throws(DriverError) -> String {
        let result: CommandResult
        let face = try face()
        do {
            result = try face.run(script)
        } catch {
            throw DriverError(node: node, message: error.message, isTransient: true)
        }
        guard result.exitStatus == 0 else {
            throw DriverError(node: node, message: "a host command failed (exit \(result.exitStatus)): \(result.stderr)\(result.stdout)", isTransient: false)
        }
        return result.stdout
    }
}
