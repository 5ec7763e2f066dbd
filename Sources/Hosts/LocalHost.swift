import Foundation
import Manifests
import Processes
import SSH

/// A simulated node's host face: a directory under the state directory stands for its `/`
/// (`nodes/<region>/<name>/`, beside the simulated hypervisor's host file), and commands run on this machine with
/// `STACKLAB_ROOT` set to it. The bundled deployment bootstraps on any machine through it.
public final class LocalHost: HostDriver, @unchecked Sendable {
    public let address: Address
    /// The directory standing for the host's `/`.
    public let root: String

    /// The host of simulated `node` under `stateDirectory`.
    public init(node: Address, stateDirectory: String) {
        address = node
        root = "\(stateDirectory)/nodes/\(node.region ?? "-")/\(node.name)"
    }

    public func facts() throws(HostError) -> HostFacts {
        let result = try run(HostFacts.command)
        return HostFacts.parse(result.stdout)
    }

    public func files(_ paths: [String]) throws(HostError) -> [String: FileState] {
        guard !paths.isEmpty else { return [:] }
        return FileState.parse(try run(FileState.command(for: paths)).stdout, root: root)
    }

    public func write(_ path: String, content: [UInt8], mode: Int32) throws(HostError) {
        let full = root + path
        let temporary = "\(full).tmp-\(getpid())"  // the name a start's sweep of crashed writes knows
        do {
            try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            guard FileManager.default.createFile(atPath: temporary, contents: Data(content), attributes: [.posixPermissions: Int(mode)]) else {
                throw HostError(node: address, message: "cannot write \(temporary)")
            }
            chmod(temporary, mode_t(mode))
            guard rename(temporary, full) == 0 else { throw HostError(node: address, message: "cannot replace \(full)") }
        } catch let error as HostError {
            throw error
        } catch {
            throw HostError(node: address, message: "cannot write \(path): \(error)")
        }
    }

    public func run(_ command: String) throws(HostError) -> CommandResult {
        do {
            let result = try Command.run(["/bin/sh", "-c", "STACKLAB_ROOT=\(shellQuote(root)); export STACKLAB_ROOT; \(command)"])
            return CommandResult(exitStatus: result.status, stdout: result.output, stderr: "")
        } catch {
            throw HostError(node: address, message: "\(error)")
        }
    }
}
