internal import CLibssh2
import Crypto
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What a remote command produced.
public struct CommandResult: Sendable, Equatable {
    public var exitStatus: Int32
    public var stdout: String
    public var stderr: String

    /// Creates a result.
    public init(exitStatus: Int32, stdout: String, stderr: String) {
        self.exitStatus = exitStatus
        self.stdout = stdout
        self.stderr = stderr
    }
}

/// An SSH session over TCP (libssh2): connect with a deadline, check the host key, authenticate with a key, run
/// commands (stdout and stderr read together, each with a deadline) and upload files (SFTP, replaced atomically).
/// Owns the socket and the session; one session serves every step of a run on its node.
///
/// Not `Sendable`: libssh2 sessions must not be used from two threads; the compiler keeps it in one domain.
public final class Session {
    private let socket: Int32
    private let session: OpaquePointer
    private var sftp: OpaquePointer?
    /// The shell `runInShell` keeps (a channel), and how many commands it has run.
    private var shell: OpaquePointer?
    private var shellCommands = 0
    /// Ends each command's output in the kept shell: unguessable by what a command prints.
    private let shellMarker = "stacklab-end-" + UUID().uuidString.prefix(13).lowercased()
    /// `host:port`, for messages.
    public let endpoint: String
    /// Seconds a command (or an upload) may take before it is abandoned.
    public var commandTimeout: Double = 300

    private static let initialised: Bool = { libssh2_init(0) == 0 }()

    /// Connects to `host` (IPv4, IPv6 or a name) and `port` within `connectTimeout` seconds, and completes the SSH
    /// handshake within the same deadline.
    public init(host: String, port: UInt16, connectTimeout: Double = 10) throws(SSHError) {
        _ = Self.initialised
        endpoint = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        let fd = try TCPConnection.open(host: host, port: port, timeout: connectTimeout)
        guard let created = stacklab_ssh2_session_init() else {
            close(fd)
            throw SSHError(operation: "create session", code: -1, message: "libssh2_session_init failed")
        }
        libssh2_session_set_blocking(created, 1)
        libssh2_session_set_timeout(created, Int(connectTimeout * 1000))
        guard libssh2_session_handshake(created, fd) == 0 else {
            let error = SSHError.last("handshake with \(endpoint)", session: created)
            libssh2_session_free(created)
            close(fd)
            throw error
        }
        socket = fd
        session = created
    }

    deinit {
        if let shell { libssh2_channel_free(shell) }
        if let sftp { libssh2_sftp_shutdown(sftp) }
        _ = stacklab_ssh2_session_disconnect(session, "bye")
        libssh2_session_free(session)
        close(socket)
    }

    // MARK: Host key

    /// The server's host key: its type (`ssh-ed25519`) and the key blob.
    public func hostKey() throws(SSHError) -> HostKey {
        var length = 0
        var type: Int32 = 0
        guard let key = libssh2_session_hostkey(session, &length, &type) else {
            throw SSHError.last("read the host key of \(endpoint)", session: session)
        }
        let blob = Array(UnsafeRawBufferPointer(start: key, count: length))
        return HostKey(blob: blob)
    }

    /// The server's host key as OpenSSH prints it: `SHA256:` and unpadded base64 of its SHA-256 hash.
    public func hostKeyFingerprint() throws(SSHError) -> String {
        try hostKey().fingerprint
    }

    /// Checks the server's host key against `pinned` (an OpenSSH public key line, as in known_hosts) before anything
    /// is sent: a mismatch is refused with both fingerprints.
    public func verifyHostKey(pinned: String) throws(SSHError) {
        guard let expected = HostKey(publicKeyLine: pinned) else {
            throw SSHError(operation: "check the host key of \(endpoint)", code: -1, message: "the pinned key '\(pinned.prefix(40))…' is not an OpenSSH public key")
        }
        let found = try hostKey()
        guard found == expected else {
            throw SSHError(operation: "check the host key of \(endpoint)", code: -1,
                           message: "HOST KEY MISMATCH: the manifest pins \(expected.type) \(expected.fingerprint), the server offers \(found.type) \(found.fingerprint); nothing was sent. If the server was reinstalled, put its new key in the Node's ssh.hostKey")
        }
    }

    // MARK: Authentication

    /// Authenticates `user` with a private key from a file (ed25519 or ECDSA; libssh2 1.10 cannot sign with RSA-SHA2,
    /// which OpenSSH requires, so an RSA key is refused with that reason before it is tried).
    public func authenticate(user: String, privateKey: String, publicKey: String? = nil, passphrase: String? = nil) throws(SSHError) {
        if let text = FileManager.default.contents(atPath: privateKey), PrivateKeyType.isRSA(String(decoding: text, as: UTF8.self)) {
            throw SSHError.rsaKey(privateKey)
        }
        guard stacklab_ssh2_userauth_publickey_fromfile(session, user, publicKey, privateKey, passphrase) == 0 else {
            throw SSHError.last("authenticate \(user)@\(endpoint) with \(privateKey)", session: session)
        }
    }

    /// Authenticates `user` with a private key given as text (from the environment, never from a file on disk).
    public func authenticate(user: String, privateKeyText: String, passphrase: String? = nil) throws(SSHError) {
        if PrivateKeyType.isRSA(privateKeyText) { throw SSHError.rsaKey("the key in the environment") }
        let status = privateKeyText.withCString { text in
            stacklab_ssh2_userauth_publickey_frommemory(session, user, text, strlen(text), passphrase)
        }
        guard status == 0 else { throw SSHError.last("authenticate \(user)@\(endpoint) with the key from the environment", session: session) }
    }

    // MARK: Commands

    /// Runs `command` and collects its output and exit status. stdout and stderr are read as they come (a command
    /// that fills one while the other is drained cannot deadlock); past `timeout` (default `commandTimeout`) the
    /// channel is closed and the command is reported as timed out.
    public func run(_ command: String, stdin: [UInt8]? = nil, timeout: Double? = nil) throws(SSHError) -> CommandResult {
        let deadline = Date().addingTimeInterval(timeout ?? commandTimeout)
        libssh2_session_set_timeout(session, Int((timeout ?? commandTimeout) * 1000))
        guard let channel = stacklab_ssh2_channel_open_session(session) else {
            throw SSHError.last("open a channel on \(endpoint)", session: session)
        }
        defer { libssh2_channel_free(channel) }
        guard stacklab_ssh2_channel_exec(channel, command) == 0 else {
            throw SSHError.last("run a command on \(endpoint)", session: session)
        }
        if let stdin {
            try send(stdin, to: channel, what: "send input to a command")
            libssh2_channel_send_eof(channel)
        }
        libssh2_session_set_blocking(session, 0)
        defer { libssh2_session_set_blocking(session, 1) }
        var stdout: [UInt8] = []
        var stderr: [UInt8] = []
        var buffer = [CChar](repeating: 0, count: 32_768)
        while true {
            var progressed = false
            for stream: Int32 in [0, Int32(SSH_EXTENDED_DATA_STDERR)] {
                while true {
                    let count = libssh2_channel_read_ex(channel, stream, &buffer, buffer.count)
                    if count == Int(LIBSSH2_ERROR_EAGAIN) { break }
                    if count < 0 { throw SSHError.last("read the output of a command on \(endpoint)", session: session) }
                    if count == 0 { break }
                    progressed = true
                    let bytes = buffer.prefix(count).map { UInt8(bitPattern: $0) }
                    if stream == 0 { stdout += bytes } else { stderr += bytes }
                }
            }
            if stacklab_ssh2_channel_eof(channel) != 0 && !progressed { break }
            if progressed { continue }
            guard Date() < deadline else {
                throw SSHError(operation: "run a command on \(endpoint)", code: Int32(LIBSSH2_ERROR_TIMEOUT),
                               message: "no end within \(Int(timeout ?? commandTimeout)) s")
            }
            try waitForSocket(until: deadline)
        }
        while libssh2_channel_close(channel) == LIBSSH2_ERROR_EAGAIN { try waitForSocket(until: deadline) }
        while libssh2_channel_wait_closed(channel) == LIBSSH2_ERROR_EAGAIN { try waitForSocket(until: deadline) }
        return CommandResult(exitStatus: libssh2_channel_get_exit_status(channel),
                             stdout: String(decoding: stdout, as: UTF8.self), stderr: String(decoding: stderr, as: UTF8.self))
    }

    // MARK: A kept shell

    /// Runs `command` in a shell this session keeps open (started by the first call), and collects its output and
    /// exit status as `run` does. sshd starts a session for every `run`, forking and executing the user's shell (on a
    /// loaded machine about 140 ms each); a kept shell costs that once, and each command after it a round trip.
    ///
    /// Each command runs in a subshell of its own, through `eval` (so neither a syntax error, `exit`, `cd` nor a
    /// variable it sets reaches the next one), with stdin from /dev/null and stdout and stderr to files of its own (in
    /// `$TMPDIR` or /tmp), which the shell prints and removes; its end is a marker printed on stdout (with its exit
    /// status) and on stderr, which the output never holds. A process the command leaves behind (a daemon, such as
    /// HAProxy's master, which writes a notice on each reload) keeps only those files: what it writes before the shell
    /// prints them is that command's output, and nothing it writes later reaches the shell. A command past its
    /// deadline ends the kept shell: the next call starts another.
    public func runInShell(_ command: String, timeout: Double? = nil) throws(SSHError) -> CommandResult {
        let limit = timeout ?? commandTimeout
        let deadline = Date().addingTimeInterval(limit)
        libssh2_session_set_timeout(session, Int(limit * 1000))
        if shell == nil {
            guard let channel = stacklab_ssh2_channel_open_session(session) else {
                throw SSHError.last("open a channel on \(endpoint)", session: session)
            }
            guard stacklab_ssh2_channel_exec(channel, "exec \"${SHELL:-/bin/sh}\"") == 0 else {
                let error = SSHError.last("start a shell on \(endpoint)", session: session)
                libssh2_channel_free(channel)
                throw error
            }
            shell = channel
        }
        guard let channel = shell else { throw SSHError(operation: "start a shell on \(endpoint)", code: -1, message: "no channel") }
        var ended = true
        defer {
            if ended {
                libssh2_channel_free(channel)
                shell = nil
            }
        }
        shellCommands += 1
        let mark = "\(shellMarker)-\(shellCommands)"
        // The command writes to files of its own, which the shell then prints: what it leaves running keeps those
        // (removed) files, not the shell's stdout and stderr, and cannot reach another command's output.
        let files = "stacklab_o=\"${TMPDIR:-/tmp}/.\(mark).out\"; stacklab_e=\"${TMPDIR:-/tmp}/.\(mark).err\"; "
        let line = Array((files + "( eval \(Self.quote(command)) ) </dev/null >\"$stacklab_o\" 2>\"$stacklab_e\"; stacklab_s=$?; "
            + "cat \"$stacklab_o\"; printf '\\n%s %d\\n' \(mark) $stacklab_s; "
            + "cat \"$stacklab_e\" >&2; rm -f \"$stacklab_o\" \"$stacklab_e\"; printf '\\n%s\\n' \(mark) >&2\n").utf8)
        try send(line, to: channel, what: "send a command to the shell")
        let outEnd = Array("\n\(mark) ".utf8), errEnd = Array("\n\(mark)\n".utf8)
        libssh2_session_set_blocking(session, 0)
        defer { libssh2_session_set_blocking(session, 1) }
        var stdout: [UInt8] = [], stderr: [UInt8] = []
        // Where each stream's marker is looked for next: the bytes before were searched.
        var outFrom = 0, errFrom = 0
        var status: Int32?
        var stderrDone = false
        var buffer = [CChar](repeating: 0, count: 32_768)
        while status == nil || !stderrDone {
            var progressed = false
            for stream: Int32 in [0, Int32(SSH_EXTENDED_DATA_STDERR)] {
                while true {
                    let count = libssh2_channel_read_ex(channel, stream, &buffer, buffer.count)
                    if count == Int(LIBSSH2_ERROR_EAGAIN) || count == 0 { break }
                    if count < 0 { throw SSHError.last("read the output of a command on \(endpoint)", session: session) }
                    progressed = true
                    let bytes = buffer.prefix(count).map { UInt8(bitPattern: $0) }
                    if stream == 0 { stdout += bytes } else { stderr += bytes }
                }
            }
            if status == nil {
                if let cut = Self.firstRange(of: outEnd, in: stdout, from: outFrom) {
                    if let newline = stdout[cut.upperBound...].firstIndex(of: UInt8(ascii: "\n")) {
                        status = Int32(String(decoding: stdout[cut.upperBound..<newline], as: UTF8.self))
                        if status == nil { break }
                        stdout.removeSubrange(cut.lowerBound...)
                    } else {
                        outFrom = cut.lowerBound
                    }
                } else {
                    outFrom = max(0, stdout.count - outEnd.count + 1)
                }
            }
            if !stderrDone {
                if let cut = Self.firstRange(of: errEnd, in: stderr, from: errFrom) {
                    stderr.removeSubrange(cut.lowerBound...)
                    stderrDone = true
                } else {
                    errFrom = max(0, stderr.count - errEnd.count + 1)
                }
            }
            if status != nil && stderrDone { break }
            if progressed { continue }
            if stacklab_ssh2_channel_eof(channel) != 0 {
                throw SSHError(operation: "run a command on \(endpoint)", code: -1, message: "the shell ended before the command did")
            }
            guard Date() < deadline else {
                throw SSHError(operation: "run a command on \(endpoint)", code: Int32(LIBSSH2_ERROR_TIMEOUT), message: "no end within \(Int(limit)) s")
            }
            try waitForSocket(until: deadline)
        }
        guard let status else {
            throw SSHError(operation: "run a command on \(endpoint)", code: -1, message: "the shell's output ended unreadably")
        }
        ended = false
        return CommandResult(exitStatus: status, stdout: String(decoding: stdout, as: UTF8.self), stderr: String(decoding: stderr, as: UTF8.self))
    }

    /// Writes all of `bytes` to `channel`'s stdin (the session blocking).
    private func send(_ bytes: [UInt8], to channel: OpaquePointer, what: String) throws(SSHError) {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBufferPointer { buffer in
                buffer.withMemoryRebound(to: CChar.self) { libssh2_channel_write_ex(channel, 0, $0.baseAddress, $0.count) }
            }
            guard written > 0 else { throw SSHError.last("\(what) on \(endpoint)", session: session) }
            offset += written
        }
    }

    /// Where `needle` first occurs in `bytes` at or after `from`.
    private static func firstRange(of needle: [UInt8], in bytes: [UInt8], from: Int) -> Range<Int>? {
        guard let first = needle.first, bytes.count - from >= needle.count else { return nil }
        var start = from
        while start <= bytes.count - needle.count {
            if bytes[start] == first && bytes[start..<(start + needle.count)].elementsEqual(needle) { return start..<(start + needle.count) }
            start += 1
        }
        return nil
    }

    /// Waits until the socket is ready in the direction libssh2 is blocked on, or `deadline`.
    private func waitForSocket(until deadline: Date) throws(SSHError) {
        let directions = libssh2_session_block_directions(session)
        var events: Int16 = 0
        if directions & LIBSSH2_SESSION_BLOCK_INBOUND != 0 { events |= Int16(POLLIN) }
        if directions & LIBSSH2_SESSION_BLOCK_OUTBOUND != 0 { events |= Int16(POLLOUT) }
        if events == 0 { events = Int16(POLLIN) }
        let left = deadline.timeIntervalSinceNow
        guard left > 0 else {
            throw SSHError(operation: "wait for \(endpoint)", code: Int32(LIBSSH2_ERROR_TIMEOUT), message: "no answer within the deadline")
        }
        var entry = pollfd(fd: socket, events: events, revents: 0)
        _ = poll(&entry, 1, Int32(min(left, 1) * 1000))
    }

    // MARK: Files

    /// Writes `content` to `path` with `mode`, replacing it atomically: the bytes go to a temporary file beside it
    /// (SFTP), which is then renamed over `path`. A reader sees the old file or the new one, never half of one.
    public func upload(_ content: [UInt8], to path: String, mode: Int32 = 0o644) throws(SSHError) {
        let temporary = try uploadAside(content, for: path, mode: mode)
        // SFTP v3's rename refuses an existing target: the rename(2) is done by the shell, atomically.
        let moved = try run(Self.replaceCommand(temporary: temporary, path: path, mode: mode))
        guard moved.exitStatus == 0 else {
            _ = stacklab_sftp_unlink(sftp, temporary)
            throw SSHError(operation: "replace \(path) on \(endpoint)", code: moved.exitStatus, message: moved.stderr.trimmingCharacters(in: .whitespacesAndNewlines))
        }
    }

    /// The shell command that gives an uploaded temporary file its mode and renames it over `path` (atomically).
    public static func replaceCommand(temporary: String, path: String, mode: Int32) -> String {
        "chmod \(String(mode, radix: 8)) \(quote(temporary)) && mv -f -- \(quote(temporary)) \(quote(path))"
    }

    /// Uploads `content` (SFTP) to a temporary file beside `path` and returns its name; `replaceCommand` then puts it in
    /// place. Many files are uploaded this way and renamed by one command: one round trip instead of one per file.
    public func uploadAside(_ content: [UInt8], for path: String, mode: Int32 = 0o644) throws(SSHError) -> String {
        libssh2_session_set_timeout(session, Int(commandTimeout * 1000))
        if sftp == nil {
            guard let opened = libssh2_sftp_init(session) else { throw SSHError.last("start SFTP on \(endpoint)", session: session) }
            sftp = opened
        }
        let temporary = "\(path).stacklab-\(UUID().uuidString.prefix(8))"
        guard let handle = stacklab_sftp_open_write(sftp, temporary, Int(mode)) else {
            throw SSHError.last("create \(temporary) on \(endpoint)", session: session)
        }
        var offset = 0
        while offset < content.count {
            let written = content[offset...].withUnsafeBufferPointer { buffer in
                buffer.withMemoryRebound(to: CChar.self) { libssh2_sftp_write(handle, $0.baseAddress, min($0.count, 256 << 10)) }
            }
            guard written > 0 else {
                libssh2_sftp_close_handle(handle)
                _ = stacklab_sftp_unlink(sftp, temporary)
                throw SSHError.last("write \(temporary) on \(endpoint)", session: session)
            }
            offset += written
        }
        guard libssh2_sftp_close_handle(handle) == 0 else { throw SSHError.last("close \(temporary) on \(endpoint)", session: session) }
        return temporary
    }

    /// `text` as one shell word.
    public static func quote(_ text: String) -> String {
        "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}

/// A host key: its type and blob, compared byte for byte.
public struct HostKey: Sendable, Equatable {
    /// The key blob (as in the known_hosts line, base64-decoded).
    public var blob: [UInt8]

    /// A key from its blob.
    public init(blob: [UInt8]) {
        self.blob = blob
    }

    /// A key from an OpenSSH public key line (`ssh-ed25519 AAAA… [comment]`), or nil.
    public init?(publicKeyLine: String) {
        let parts = publicKeyLine.split(separator: " ")
        guard parts.count >= 2, let blob = Base64.decode(String(parts[1])) else { return nil }
        self.blob = blob
        guard type == String(parts[0]) else { return nil }
    }

    /// The key type the blob names (`ssh-ed25519`).
    public var type: String {
        guard blob.count >= 4 else { return "unknown" }
        let length = Int(blob[0]) << 24 | Int(blob[1]) << 16 | Int(blob[2]) << 8 | Int(blob[3])
        guard length <= blob.count - 4 else { return "unknown" }
        return String(decoding: blob[4..<(4 + length)], as: UTF8.self)
    }

    /// The key as an OpenSSH public key line (`ssh-ed25519 AAAA…`), as a Node's `ssh.hostKey` pins it.
    public var line: String { "\(type) \(Base64.encode(blob, padded: true))" }

    /// `SHA256:` and unpadded base64 of the blob's SHA-256, as `ssh-keygen -l` prints it.
    public var fingerprint: String {
        "SHA256:" + Base64.encode(Array(SHA256.hash(data: blob)), padded: false)
    }
}

/// Tells RSA private keys apart (libssh2 1.10 cannot use them against OpenSSH 8.8+).
enum PrivateKeyType {
    static func isRSA(_ text: String) -> Bool {
        if text.contains("BEGIN RSA PRIVATE KEY") { return true }
        guard text.contains("BEGIN OPENSSH PRIVATE KEY") else { return false }
        let body = text.split(separator: "\n").filter { !$0.hasPrefix("-----") }.joined()
        guard let bytes = Base64.decode(body) else { return false }
        // "openssh-key-v1\0", then ciphername, kdfname, kdfoptions (strings), the key count, then the first public key
        // blob, whose first string is its type.
        var offset = 15
        func string() -> ArraySlice<UInt8>? {
            guard offset + 4 <= bytes.count else { return nil }
            let length = Int(bytes[offset]) << 24 | Int(bytes[offset + 1]) << 16 | Int(bytes[offset + 2]) << 8 | Int(bytes[offset + 3])
            guard length >= 0, offset + 4 + length <= bytes.count else { return nil }
            defer { offset += 4 + length }
            return bytes[(offset + 4)..<(offset + 4 + length)]
        }
        guard bytes.starts(with: Array("openssh-key-v1".utf8)), string() != nil, string() != nil, string() != nil else { return false }
        offset += 4
        guard let publicKey = string(), publicKey.count >= 4 else { return false }
        let key = Array(publicKey)
        let length = Int(key[0]) << 24 | Int(key[1]) << 16 | Int(key[2]) << 8 | Int(key[3])
        guard length <= key.count - 4 else { return false }
        return String(decoding: key[4..<(4 + length)], as: UTF8.self) == "ssh-rsa"
    }
}

extension SSHError {
    static func rsaKey(_ which: String) -> SSHError {
        SSHError(operation: "authenticate with \(which)", code: -1,
                 message: "it is an RSA key, which libssh2 1.10 can only sign with SHA-1 and OpenSSH refuses; use an ed25519 or ECDSA key (ssh-keygen -t ed25519)")
    }
}
