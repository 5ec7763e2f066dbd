import Foundation
import Manifests
import SSH

/// A production node's host face over one SSH session (reused for every step of a run). The host key is checked
/// against the pinned one before anything is sent; commands run with `STACKLAB_ROOT` set to the node's file root, in
/// the shell the session keeps (`Session.runInShell`: one sshd session for every command of a run, not one each).
///
/// `@unchecked Sendable`: the session is used under `lock`, one step at a time.
public final class SSHHost: HostDriver, @unchecked Sendable {
    public let address: Address
    /// The node's file root without a trailing slash (`""` for `/`).
    public let root: String
    private let session: Session
    private let lock = NSLock()
    /// Directories this session made (or found) already: each is made once per run.
    private var madeDirectories = Set<String>()

    /// How to log in.
    public struct Credentials: Sendable {
        /// A private key file, or the key's text (from the environment).
        public enum Key: Sendable {
            case file(String)
            case text(String)
        }

        public var key: Key

        /// Credentials with `key`.
        public init(key: Key) {
            self.key = key
        }
    }

    /// Connects to `node` (its address, `ssh.port`, `ssh.user`), checks its host key against `pinnedKey` (an OpenSSH
    /// public key line) before anything is sent, and logs in.
    public convenience init(node: Resource<NodeSpec>, pinnedKey: String, credentials: Credentials, connectTimeout: Double = 10) throws(HostError) {
        let spec = node.spec
        try self.init(address: node.address, host: spec.address.value.description, port: UInt16(spec.ssh?.port?.value ?? 22),
                      user: spec.ssh?.user?.value ?? "root", fileRoot: spec.fileRoot?.value, pinnedKey: pinnedKey, credentials: credentials,
                      connectTimeout: connectTimeout)
    }

    /// Connects to `host`:`port` as `user`, checks the host key against `pinnedKey` before anything is sent, and logs in.
    public init(address: Address, host: String, port: UInt16, user: String, fileRoot: String?, pinnedKey: String, credentials: Credentials,
                connectTimeout: Double = 10) throws(HostError) {
        self.address = address
        let fileRoot = fileRoot ?? "/"
        root = fileRoot == "/" ? "" : (fileRoot.hasSuffix("/") ? String(fileRoot.dropLast()) : fileRoot)
        do {
            session = try Session(host: host, port: port, connectTimeout: connectTimeout)
            try session.verifyHostKey(pinned: pinnedKey)
            switch credentials.key {
            case .file(let path): try session.authenticate(user: user, privateKey: path)
            case .text(let text): try session.authenticate(user: user, privateKeyText: text)
            }
        } catch {
            throw HostError(node: address, message: "\(error)")
        }
    }

    /// The bytes of `path` (binary-safe: carried as base64).
    public func read(_ path: String) throws(HostError) -> [UInt8] {
        let result = try run("base64 -w0 \"$STACKLAB_ROOT\"\(shellQuote(path))")
        guard result.exitStatus == 0, let data = Data(base64Encoded: result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw HostError(node: address, message: "cannot read \(path): \(result.stderr)")
        }
        return [UInt8](data)
    }

    /// The host key the node at `node` offers (for trust on first use), without logging in.
    public static func offeredKey(node: Resource<NodeSpec>, connectTimeout: Double = 10) throws(HostError) -> HostKey {
        do {
            return try Session(host: node.spec.address.value.description, port: UInt16(node.spec.ssh?.port?.value ?? 22), connectTimeout: connectTimeout).hostKey()
        } catch {
            throw HostError(node: node.address, message: "\(error)")
        }
    }

    public func facts() throws(HostError) -> HostFacts {
        let result = try run(HostFacts.command)
        guard result.exitStatus == 0 else { throw HostError(node: address, message: "cannot read facts: \(result.stderr)") }
        return HostFacts.parse(result.stdout)
    }

    public func files(_ paths: [String]) throws(HostError) -> [String: FileState] {
        guard !paths.isEmpty else { return [:] }
        let result = try run(FileState.command(for: paths))
        guard result.exitStatus == 0 else { throw HostError(node: address, message: "cannot read files: \(result.stderr)") }
        return FileState.parse(result.stdout, root: root)
    }

    public func write(_ path: String, content: [UInt8], mode: Int32) throws(HostError) {
        let full = root + path
        let parent = (full as NSString).deletingLastPathComponent
        lock.lock()
        defer { lock.unlock() }
        do {
            if !madeDirectories.contains(parent) {
                let made = try session.runInShell("mkdir -p -- \(Session.quote(parent))")
                guard made.exitStatus == 0 else { throw HostError(node: address, message: "cannot make \(parent): \(made.stderr)") }
                madeDirectories.insert(parent)
            }
            try session.upload(content, to: full, mode: mode)
        } catch let error as HostError {
            throw error
        } catch {
            throw HostError(node: address, message: "cannot write \(path): \(error)")
        }
    }

    public func write(_ files: [HostFile]) throws(HostError) {
        guard files.count > 1 else {
            for file in files { try write(file.path, content: file.content, mode: file.mode) }
            return
        }
        lock.lock()
        defer { lock.unlock() }
        do {
            let parents = Set(files.map { ((root + $0.path) as NSString).deletingLastPathComponent }).subtracting(madeDirectories).sorted()
            if !parents.isEmpty {
                let made = try session.runInShell("mkdir -p -- " + parents.map(Session.quote).joined(separator: " "))
                guard made.exitStatus == 0 else { throw HostError(node: address, message: "cannot make directories: \(made.stderr)") }
                madeDirectories.formUnion(parents)
            }
            var moves: [String] = []
            for file in files {
                let temporary = try session.uploadAside(file.content, for: root + file.path, mode: file.mode)
                moves.append(Session.replaceCommand(temporary: temporary, path: root + file.path, mode: file.mode))
            }
            let moved = try session.runInShell(moves.joined(separator: " && "))
            guard moved.exitStatus == 0 else { throw HostError(node: address, message: "cannot put the files in place: \(moved.stderr)") }
        } catch let error as HostError {
            throw error
        } catch {
            throw HostError(node: address, message: "cannot write files: \(error)")
        }
    }

    public func run(_ command: String) throws(HostError) -> CommandResult {
        lock.lock()
        defer { lock.unlock() }
        do {
            let result = try session.runInShell("STACKLAB_ROOT=\(Session.quote(root)); export STACKLAB_ROOT; \(command)")
            return result
        } catch {
            throw HostError(node: address, message: "\(error)")
        }
    }
}
