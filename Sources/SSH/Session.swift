internal import CLibssh2
#if canImport(Glibc)
import Glibc
#endif

/// The result of a remote command.
public struct CommandResult: Sendable, Equatable {
    /// The remote exit status.
    public var exitStatus: Int32
    /// Everything the command wrote to stdout.
    public var stdout: String
    /// Everything the command wrote to stderr.
    public var stderr: String

    /// Creates a result.
    public init(exitStatus: Int32, stdout: String, stderr: String) {
        self.exitStatus = exitStatus
        self.stdout = stdout
        self.stderr = stderr
    }
}

/// A blocking SSH session over TCP (libssh2). Owns the socket and the session.
///
/// Not `Sendable`: libssh2 sessions must not be used from two threads; the compiler keeps it in one domain.
public final class Session {
    private let socket: Int32
    private let session: OpaquePointer
    /// `host:port`, for messages.
    public let endpoint: String

    private static let initialised: Bool = { libssh2_init(0) == 0 }()

    /// Connects to `host` (IPv4, IPv6 or a name) and `port` within `connectTimeout` seconds, and completes the SSH
    /// handshake.
    public init(host: String, port: UInt16, connectTimeout: Double = 10) throws(SSHError) {
        _ = Self.initialised
        endpoint = "\(host):\(port)"
        let fd = try TCPConnection.open(host: host, port: port, timeout: connectTimeout)
        guard let created = stacklab_ssh2_session_init() else {
            close(fd)
            throw SSHError(operation: "create session", code: -1, message: "libssh2_session_init failed")
        }
        libssh2_session_set_blocking(created, 1)
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
        _ = stacklab_ssh2_session_disconnect(session, "bye")
        libssh2_session_free(session)
        close(socket)
    }

    /// The server's host key as OpenSSH prints it: `SHA256:` and unpadded base64 of its SHA-256 hash.
    public func hostKeyFingerprint() throws(SSHError) -> String {
        guard let hash = libssh2_hostkey_hash(session, LIBSSH2_HOSTKEY_HASH_SHA256) else {
            throw SSHError.last("read host key of \(endpoint)", session: session)
        }
        let bytes = UnsafeRawBufferPointer(start: hash, count: 32)
        return "SHA256:" + Base64.encode(Array(bytes), padded: false)
    }

    /// Authenticates `user` with a key pair from files.
    public func authenticate(user: String, privateKey: String, publicKey: String? = nil, passphrase: String? = nil) throws(SSHError) {
        guard stacklab_ssh2_userauth_publickey_fromfile(session, user, publicKey, privateKey, passphrase) == 0 else {
            throw SSHError.last("authenticate \(user)@\(endpoint) with \(privateKey)", session: session)
        }
    }

    /// Runs `command` and collects its output and exit status.
    public func run(_ command: String) throws(SSHError) -> CommandResult {
        guard let channel = stacklab_ssh2_channel_open_session(session) else {
            throw SSHError.last("open channel on \(endpoint)", session: session)
        }
        defer { libssh2_channel_free(channel) }
        guard stacklab_ssh2_channel_exec(channel, command) == 0 else {
            throw SSHError.last("run '\(command)' on \(endpoint)", session: session)
        }
        var stdout: [UInt8] = []
        var stderr: [UInt8] = []
        var buffer = [CChar](repeating: 0, count: 16_384)
        while true {
            let count = stacklab_ssh2_channel_read(channel, &buffer, buffer.count)
            if count < 0 { throw SSHError.last("read output of '\(command)'", session: session) }
            if count == 0 { break }
            stdout += buffer.prefix(count).map { UInt8(bitPattern: $0) }
        }
        while true {
            let count = stacklab_ssh2_channel_read_stderr(channel, &buffer, buffer.count)
            if count <= 0 { break }
            stderr += buffer.prefix(count).map { UInt8(bitPattern: $0) }
        }
        libssh2_channel_close(channel)
        libssh2_channel_wait_closed(channel)
        return CommandResult(
            exitStatus: libssh2_channel_get_exit_status(channel),
            stdout: String(decoding: stdout, as: UTF8.self),
            stderr: String(decoding: stderr, as: UTF8.self))
    }
}
