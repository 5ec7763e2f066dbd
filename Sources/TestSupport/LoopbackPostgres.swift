import Foundation
import Processes
#if canImport(Glibc)
import Glibc
#endif

/// A real PostgreSQL server on loopback for tests and benchmarks, from Debian's package: `initdb` into a temporary
/// directory, `postgres` on 127.0.0.1 at a free port (no Unix socket outside that directory), stopped by PID (a fast
/// shutdown) when the process exits. PostgreSQL refuses to run as root, so as root the server runs as the
/// `postgres` user (`setpriv`). Each caller takes its own database (`database()`), so tests never see each other's rows.
public final class LoopbackPostgres: @unchecked Sendable {
    // @unchecked: immutable after init except `databases`, which `lock` guards.
    /// The server's port on 127.0.0.1, and its superuser.
    public let port: UInt16
    public let user = "stacklab"
    /// The server's PID.
    public let pid: pid_t
    private let directory: String
    private let lock = NSLock()
    private var databases = 0

    /// One server per process, started on first use.
    public static func shared() throws -> LoopbackPostgres {
        try sharedServer.withLock { server in
            if let server { return server }
            let started = try LoopbackPostgres()
            server = started
            atexit { LoopbackPostgres.stopShared() }
            return started
        }
    }

    private static let sharedServer = NSLockedBox<LoopbackPostgres?>(nil)

    private static func stopShared() {
        if let server = sharedServer.withLock({ $0 }) { server.stop() }
    }

    /// The directory of the PostgreSQL programs (`initdb`, `postgres`): `$STACKLAB_POSTGRES_BIN`, or the newest
    /// `/usr/lib/postgresql/<version>/bin`.
    public static var binDirectory: String? {
        if let bin = ProcessInfo.processInfo.environment["STACKLAB_POSTGRES_BIN"] { return bin }
        let root = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).compactMap(Int.init).sorted()
        guard let newest = versions.last else { return nil }
        let bin = "\(root)/\(newest)/bin"
        return FileManager.default.isExecutableFile(atPath: "\(bin)/postgres") ? bin : nil
    }

    /// Initialises a cluster and starts its server; returns once it accepts connections.
    public init() throws {
        guard let bin = Self.binDirectory else {
            throw Command.Failure(description: "no PostgreSQL server programs: apt-get install postgresql (.ci/setup does), or set STACKLAB_POSTGRES_BIN")
        }
        directory = NSTemporaryDirectory() + "stacklab-pg-\(UUID().uuidString.prefix(8))"
        let data = "\(directory)/data"
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        var prefix: [String] = []
        if getuid() == 0 {
            guard let account = getpwnam("postgres") else { throw Command.Failure(description: "running as root and there is no postgres user to run the server as") }
            chown(directory, account.pointee.pw_uid, account.pointee.pw_gid)
            chown(data, account.pointee.pw_uid, account.pointee.pw_gid)
            prefix = ["/usr/bin/setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"]
        }
        let initdb = try Command.run(prefix + ["\(bin)/initdb", "-D", data, "-U", user, "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync"])
        guard initdb.status == 0 else { throw Command.Failure(description: "initdb failed: \(initdb.output)") }
        port = try LoopbackSSHD.freePort(address: "127.0.0.1")
        pid = try Command.start(prefix + [
            "\(bin)/postgres", "-D", data, "-h", "127.0.0.1", "-p", "\(port)", "-k", directory,
            "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=200",
            "-c", "shared_buffers=64MB", "-c", "log_min_messages=warning",
        ], output: "\(directory)/server.log")
        let deadline = Date().addingTimeInterval(30)
        while !LoopbackSSHD.accepts(address: "127.0.0.1", port: port) || !ready(bin: bin) {
            guard Date() < deadline else {
                stop()
                throw Command.Failure(description: "postgres did not start: \((try? String(contentsOfFile: "\(directory)/server.log", encoding: .utf8)) ?? "")")
            }
            usleep(100_000)
        }
    }

    private func ready(bin: String) -> Bool {
        (try? Command.run(["\(bin)/pg_isready", "-h", "127.0.0.1", "-p", "\(port)", "-U", user, "-d", "postgres"]).status) == 0
    }

    /// A new, empty database on the server; its URL.
    public func database(_ label: String = "test") throws -> String {
        let name = lock.withLock {
            databases += 1
            return "\(label.lowercased().filter { $0.isLetter || $0.isNumber })_\(getpid())_\(databases)"
        }
        guard let bin = Self.binDirectory else { throw Command.Failure(description: "no PostgreSQL programs") }
        let created = try Command.run(["\(bin)/createdb", "-h", "127.0.0.1", "-p", "\(port)", "-U", user, name])
        guard created.status == 0 else { throw Command.Failure(description: "createdb \(name): \(created.output)") }
        return url(database: name)
    }

    /// The URL of `database` on this server.
    public func url(database: String) -> String { "postgres://\(user)@127.0.0.1:\(port)/\(database)" }

    /// Stops the server (fast shutdown: clients are disconnected) and removes its files.
    public func stop() {
        Command.stop(pid, signal: SIGINT)
        try? FileManager.default.removeItem(atPath: directory)
    }
}

/// A value behind a lock.
final class NSLockedBox<Value>: @unchecked Sendable {
    // @unchecked: every access goes through `lock`.
    private let lock = NSLock()
    private var value: Value

    init(_ value: Value) { self.value = value }

    func withLock<T>(_ body: (inout Value) throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}
