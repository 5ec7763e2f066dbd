import Foundation
import Manifests
import SSH

/// A node's host face: its operating system as StackLab converges it (files and guarded commands), beside the
/// hypervisor face (`NodeDriver`). One protocol, two kinds of host: a server over SSH, and a directory under the
/// state directory for simulated nodes. Paths are absolute host paths (`/etc/stacklab/node.json`); a host with a
/// file root keeps them under it.
public protocol HostDriver: AnyObject, Sendable {
    /// The node (`node/<region>/<name>`).
    var address: Address { get }
    /// The directory that stands for the host's `/` (`""` when it is `/`); commands see it as `$STACKLAB_ROOT`.
    var root: String { get }
    /// What the host is: CPUs, memory, disks, operating system.
    func facts() throws(HostError) -> HostFacts
    /// The state of each of `paths` that exists (content hash and mode), in one round trip.
    func files(_ paths: [String]) throws(HostError) -> [String: FileState]
    /// Writes `content` to `path` with `mode`, replacing it atomically (parent directories are made).
    func write(_ path: String, content: [UInt8], mode: Int32) throws(HostError)
    /// Writes several files, each replaced atomically; a host over SSH does it in three round trips whatever their
    /// number (make the directories, upload beside, rename all).
    func write(_ files: [HostFile]) throws(HostError)
    /// Runs a shell command with `STACKLAB_ROOT` set to the host's file root; returns its exit status and output.
    func run(_ command: String) throws(HostError) -> CommandResult
}

/// A file to write.
public struct HostFile: Sendable, Equatable {
    public var path: String
    public var content: [UInt8]
    public var mode: Int32

    /// Creates a file.
    public init(path: String, content: [UInt8], mode: Int32) {
        self.path = path
        self.content = content
        self.mode = mode
    }
}

extension HostDriver {
    public func write(_ files: [HostFile]) throws(HostError) {
        for file in files { try write(file.path, content: file.content, mode: file.mode) }
    }

    /// Runs `commands` in order in one round trip, stopping at the first that fails; returns how many succeeded and the
    /// failure (its index, status and output), if any.
    public func run(sequence commands: [String]) throws(HostError) -> (completed: Int, failure: (index: Int, result: CommandResult)?) {
        guard !commands.isEmpty else { return (0, nil) }
        let script = commands.enumerated().map { index, command in
            "( \(command) ); status=$?; if [ $status -ne 0 ]; then echo \"stacklab-failed \(index) $status\"; exit $status; fi"
        }.joined(separator: "\n")
        let result = try run(script)
        guard result.exitStatus != 0 else { return (commands.count, nil) }
        let marker = result.stdout.split(separator: "\n").last { $0.hasPrefix("stacklab-failed ") }?.split(separator: " ")
        let index = marker.flatMap { $0.count > 1 ? Int($0[1]) : nil } ?? 0
        return (index, (index, result))
    }
}

/// What a host reports about itself.
public struct HostFacts: Sendable, Equatable, Codable {
    public var cpus: Int
    public var memoryBytes: UInt64
    /// Block devices by name (`sdb`) → bytes.
    public var disks: [String: UInt64]
    /// `PRETTY_NAME` of `/etc/os-release`.
    public var os: String

    /// Creates facts.
    public init(cpus: Int, memoryBytes: UInt64, disks: [String: UInt64], os: String) {
        self.cpus = cpus
        self.memoryBytes = memoryBytes
        self.disks = disks
        self.os = os
    }

    /// The command that prints them (one round trip), and its parser.
    static let command = """
        echo "cpus $(nproc)"; awk '/^MemTotal:/ {print "memory_kib", $2}' /proc/meminfo; \
        lsblk -bdno NAME,SIZE 2>/dev/null | awk '{print "disk", $1, $2}'; \
        (. /etc/os-release 2>/dev/null; echo "os ${PRETTY_NAME:-unknown}")
        """

    static func parse(_ output: String) -> HostFacts {
        var facts = HostFacts(cpus: 0, memoryBytes: 0, disks: [:], os: "unknown")
        for line in output.split(separator: "\n") {
            let parts = line.split(separator: " ", maxSplits: 2).map(String.init)
            switch parts.first {
            case "cpus": facts.cpus = parts.count > 1 ? Int(parts[1]) ?? 0 : 0
            // In KiB as /proc/meminfo has it: awk (mawk) cannot print the bytes of a large machine as an integer.
            case "memory_kib": facts.memoryBytes = parts.count > 1 ? (UInt64(parts[1]) ?? 0) &* 1024 : 0
            case "disk" where parts.count > 2: facts.disks[parts[1]] = UInt64(parts[2]) ?? 0
            case "os": facts.os = parts.dropFirst().joined(separator: " ")
            default: continue
            }
        }
        return facts
    }
}

/// A file as it is on a host.
public struct FileState: Sendable, Equatable {
    /// Hex sha256 of the content.
    public var sha256: String
    /// Permission bits (`0o644`).
    public var mode: Int32

    /// Creates a state.
    public init(sha256: String, mode: Int32) {
        self.sha256 = sha256
        self.mode = mode
    }

    /// The command that prints `<sha256> <octal mode> <path>` for each existing path (one round trip).
    public static func command(for paths: [String]) -> String {
        let quoted = paths.map { "\"$STACKLAB_ROOT\"" + shellQuote($0) }.joined(separator: " ")
        return "for f in \(quoted); do [ -f \"$f\" ] && printf '%s %s %s\\n' \"$(sha256sum < \"$f\" | cut -d' ' -f1)\" \"$(stat -c %a \"$f\")\" \"$f\"; done; true"
    }

    /// Parses that command's output back to host paths (the root is stripped).
    public static func parse(_ output: String, root: String) -> [String: FileState] {
        var states: [String: FileState] = [:]
        for line in output.split(separator: "\n") {
            let parts = line.split(separator: " ", maxSplits: 2).map(String.init)
            guard parts.count == 3, let mode = Int32(parts[1], radix: 8) else { continue }
            let path = root == "/" || root.isEmpty ? parts[2] : String(parts[2].dropFirst(root.count))
            states[path] = FileState(sha256: parts[0], mode: mode)
        }
        return states
    }
}

/// A host failure: which node, what failed.
public struct HostError: Error, Sendable, CustomStringConvertible {
    public var node: Address
    public var message: String

    /// Creates an error.
    public init(node: Address, message: String) {
        self.node = node
        self.message = message
    }

    public var description: String { "\(node): \(message)" }
}

/// `text` as one shell word.
public func shellQuote(_ text: String) -> String {
    "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
}
