import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Runs a program to completion and measures it the way the benchmarks report: wall time and peak RSS.
struct ChildProcess {
    struct Outcome {
        var status: Int32
        var seconds: Double
        /// Peak resident set size of the child, in bytes (from `wait4`'s rusage).
        var peakRSS: UInt64
        var output: String
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// Runs `arguments[0]` (searched in PATH when it has no '/'), capturing stdout and stderr (stderr is shown instead when `showErrors`).
    static func run(_ arguments: [String], showErrors: Bool = false) throws -> Outcome {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        let capture = FileManager.default.temporaryDirectory.appendingPathComponent("stacklab-child-\(getpid())-\(UInt32.random(in: 0...UInt32.max))").path
        defer { unlink(capture) }
        posix_spawn_file_actions_addopen(&actions, 1, capture, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        if !showErrors { posix_spawn_file_actions_adddup2(&actions, 1, 2) }
        let argv = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let start = DispatchTime.now().uptimeNanoseconds
        let spawned = arguments[0].contains("/")
            ? posix_spawn(&pid, arguments[0], &actions, nil, argv, environ)
            : posix_spawnp(&pid, arguments[0], &actions, nil, argv, environ)
        guard spawned == 0 else { throw Failure(description: "cannot run \(arguments[0]): \(String(cString: strerror(spawned)))") }
        var status: Int32 = 0
        var usage = rusage()
        while wait4(pid, &status, 0, &usage) < 0 {
            guard errno == EINTR else { throw Failure(description: "wait for \(arguments[0]): \(String(cString: strerror(errno)))") }
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        let exit = (status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
        let output = (try? String(contentsOfFile: capture, encoding: .utf8)) ?? ""
        return Outcome(status: exit, seconds: seconds, peakRSS: UInt64(usage.ru_maxrss) * 1024, output: output)
    }

    /// Runs and throws unless the exit status is 0.
    @discardableResult
    static func check(_ arguments: [String]) throws -> Outcome {
        let outcome = try run(arguments, showErrors: true)
        guard outcome.status == 0 else { throw Failure(description: "\(arguments.joined(separator: " ")) exited \(outcome.status)") }
        return outcome
    }

    /// This executable's path.
    static var selfPath: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }
}
