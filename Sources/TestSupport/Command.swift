import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Runs programs for tests with posix_spawn (Foundation's `Process` can hang on Linux when a long-lived
/// child such as sshd is running alongside), capturing output through a file.
public enum Command {
    /// A finished program.
    public struct Result: Sendable {
        /// Exit status (128 + signal when killed).
        public var status: Int32
        /// stdout and stderr together.
        public var output: String
    }

    /// A program that failed.
    public struct Failure: Error, CustomStringConvertible {
        /// What ran and what it said.
        public var description: String
    }

    /// Runs `arguments` (the first searched in PATH) and waits for it.
    public static func run(_ arguments: [String]) throws -> Result {
        let capture = "\(NSTemporaryDirectory())/stacklab-command-\(UUID().uuidString).out"
        defer { unlink(capture) }
        let status = wait(try spawn(arguments, outputFile: capture))
        let output = (try? String(contentsOfFile: capture, encoding: .utf8)) ?? ""
        return Result(status: status, output: output)
    }

    /// Runs and throws unless it exits 0; returns the output.
    @discardableResult
    public static func check(_ arguments: [String]) throws -> String {
        let result = try run(arguments)
        guard result.status == 0 else {
            throw Failure(description: "\(arguments.joined(separator: " ")) exited \(result.status): \(result.output)")
        }
        return result.output
    }

    /// Starts `arguments` in the background with output discarded; stop it with `stop(_:)`.
    public static func start(_ arguments: [String]) throws -> pid_t {
        try spawn(arguments, outputFile: "/dev/null")
    }

    /// Sends SIGTERM to `pid` and reaps it.
    public static func stop(_ pid: pid_t) {
        kill(pid, SIGTERM)
        _ = wait(pid)
    }

    private static func spawn(_ arguments: [String], outputFile: String) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, outputFile, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        let argv = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let result = posix_spawnp(&pid, arguments[0], &actions, nil, argv, environ)
        guard result == 0 else { throw Failure(description: "cannot run \(arguments[0]): \(String(cString: strerror(result)))") }
        return pid
    }

    private static func wait(_ pid: pid_t) -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0, errno == EINTR {}
        return (status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
    }
}
