import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Runs programs with posix_spawn and waits with wait4, so the caller gets the exit status, the output, the wall
/// time and the child's peak RSS. (Foundation's `Process` can hang on Linux when a long-lived child such as sshd
/// runs alongside, and does not report resource usage.)
public enum Command {
    /// A finished program.
    public struct Result: Sendable {
        /// Exit status (128 + signal when killed).
        public var status: Int32
        /// What it wrote (stdout, and stderr when it was captured with it).
        public var output: String
        /// What it wrote to stderr when that was kept apart (`Stderr.apart`); empty otherwise.
        public var errors: String = ""
        /// Wall time from spawn to exit.
        public var seconds: Double
        /// The child's peak resident set size, bytes.
        public var peakRSS: UInt64
    }

    /// Where a child's stderr goes.
    public enum Stderr: Sendable {
        /// Into `output`, interleaved with stdout.
        case captured
        /// To this process's stderr.
        case passedThrough
        /// Into `errors`, apart from stdout: for programs whose stdout is parsed and whose stderr may carry warnings
        /// (a Python library's deprecation warnings, say).
        case apart
    }

    /// A program that could not run or failed.
    public struct Failure: Error, CustomStringConvertible {
        /// What ran and what it said.
        public var description: String

        /// Creates a failure.
        public init(description: String) { self.description = description }
    }

    /// Runs `arguments` (the first is searched in PATH when it has no '/') and waits for it.
    public static func run(_ arguments: [String], stderr: Stderr = .captured) throws -> Result {
        let capture = "\(NSTemporaryDirectory())/stacklab-command-\(UUID().uuidString).out"
        let errorCapture = String(capture.dropLast(4)) + ".err"
        defer { unlink(capture); if stderr == .apart { unlink(errorCapture) } }
        let start = DispatchTime.now().uptimeNanoseconds
        let pid = try spawn(arguments, outputFile: capture, stderr: stderr, errorFile: errorCapture)
        var usage = rusage()
        let status = wait(pid, usage: &usage)
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        let output = (try? String(contentsOfFile: capture, encoding: .utf8)) ?? ""
        let errors = stderr == .apart ? (try? String(contentsOfFile: errorCapture, encoding: .utf8)) ?? "" : ""
        return Result(status: status, output: output, errors: errors, seconds: seconds, peakRSS: UInt64(usage.ru_maxrss) * 1024)
    }

    /// Runs and throws unless it exits 0; returns the output.
    @discardableResult
    public static func check(_ arguments: [String], stderr: Stderr = .captured) throws -> String {
        let result = try run(arguments, stderr: stderr)
        guard result.status == 0 else {
            throw Failure(description: "\(arguments.joined(separator: " ")) exited \(result.status): \(result.output)\(result.errors)")
        }
        return result.output
    }

    /// Starts `arguments` in the background with output discarded; stop it with `stop(_:)`.
    public static func start(_ arguments: [String]) throws -> pid_t {
        try spawn(arguments, outputFile: "/dev/null", stderr: .captured)
    }

    /// Starts `arguments` in the background with standard output and error written to `output`.
    public static func start(_ arguments: [String], output: String) throws -> pid_t {
        try spawn(arguments, outputFile: output, stderr: .captured)
    }

    /// Sends `signal` (SIGTERM unless told) to `pid` and reaps it; its exit status (128 + signal when a signal ended it).
    @discardableResult
    public static func stop(_ pid: pid_t, signal: Int32 = SIGTERM) -> Int32 {
        kill(pid, signal)
        var usage = rusage()
        return wait(pid, usage: &usage)
    }

    private static func spawn(_ arguments: [String], outputFile: String, stderr: Stderr, errorFile: String = "/dev/null") throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, outputFile, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        switch stderr {
        case .captured: posix_spawn_file_actions_adddup2(&actions, 1, 2)
        case .apart: posix_spawn_file_actions_addopen(&actions, 2, errorFile, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        case .passedThrough: break
        }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        let argv = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        // A child starts with every signal unblocked and at its default action: the thread that spawns it may block
        // signals (Swift's and Dispatch's threads do), and a child that inherits a blocked SIGTERM never stops, one
        // with a blocked SIGCHLD never reaps its own children.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        sigemptyset(&none)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGTERM, SIGINT, SIGHUP, SIGCHLD, SIGPIPE, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var pid: pid_t = 0
        let result = posix_spawnp(&pid, arguments[0], &actions, &attributes, argv, environ)
        guard result == 0 else { throw Failure(description: "cannot run \(arguments[0]): \(String(cString: strerror(result)))") }
        return pid
    }

    private static func wait(_ pid: pid_t, usage: inout rusage) -> Int32 {
        var status: Int32 = 0
        while wait4(pid, &status, 0, &usage) < 0, errno == EINTR {}
        return (status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
    }
}
