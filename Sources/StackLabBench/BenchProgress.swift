import Foundation
import StackLabCLI

/// Progress lines on standard error while a benchmark runs (a large size takes minutes): on a terminal and not with
/// `--format json`, so tables and JSON stay clean and a redirected run stays quiet.
enum BenchProgress {
    static let enabled = isatty(2) == 1 && !CommandLine.arguments.contains("json") && !CommandLine.arguments.contains("--format=json")

    /// Runs one measured step, saying what it is and, once done, how long it took.
    static func step<T>(_ what: String, _ body: () throws -> T) rethrows -> T {
        guard enabled else { return try body() }
        Terminal.standardError.write("stacklab-bench: \(what)…")
        let start = Date()
        defer { Terminal.standardError.write(String(format: " %.2f s\n", Date().timeIntervalSince(start))) }
        return try body()
    }
}
