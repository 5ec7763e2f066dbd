import Foundation
import Manifests
import Planning
import Reconcile

/// Shows an apply's progress: one line per finished change, and on a terminal a counter on standard error.
///
/// Off a terminal (a log, CI) every change gets its line on standard output, as a record. On a terminal, a plan of
/// more than `lineLimit` changes shows only the failures and skips as lines, under one counter line that is
/// rewritten in place (`applying 1,200 of 5,000 changes · 3 failed · 41 s`), so a large apply says how far it is
/// without scrolling 100,000 lines past. A snapshot taken or restored shows its bytes and rate on a terminal as they go,
/// on a line of its own rewritten in place until its change finishes.
///
/// `@unchecked Sendable`: `lock` serialises the writes of parallel workers.
final class ProgressPrinter: @unchecked Sendable {
    static let lineLimit = 200

    private let colors: Bool
    private let interactive: Bool
    private let lock = NSLock()
    private var total = 0
    private var finished = 0
    private var failed = 0
    private var started = Date()
    private var counterShown = false
    /// A transfer's line is on the terminal (rewritten in place until its change finishes).
    private var transferShown = false

    init(colors: Bool, interactive: Bool = isatty(1) == 1 && isatty(2) == 1) {
        self.colors = colors
        self.interactive = interactive
    }

    /// The plan about to be applied: how many changes the counter counts to.
    func begin(changes: Int) {
        lock.withLock {
            total = changes
            finished = 0
            failed = 0
            started = Date()
        }
    }

    func show(_ event: Applier.ProgressEvent) {
        if event.outcome == nil, let moved = event.transferred {
            guard interactive else { return }
            lock.withLock {
                Terminal.standardError.write("\r\u{1B}[K" + Self.transfer(event.change, moved))
                transferShown = true
                counterShown = false
            }
            return
        }
        guard let outcome = event.outcome else { return }
        let change = event.change
        let place = change.target.node.map { "on \($0)" } ?? "in region \(change.region)"
        let line: String
        var succeeded = false
        switch outcome {
        case .done(let seconds):
            line = "  \(paint("✓", "32")) \(change.action.rawValue) \(change.address) \(place) (\(String(format: "%.2f", seconds))s)"
            succeeded = true
        case .failed(let message, _):
            line = "  \(paint("✗", "31")) \(change.action.rawValue) \(change.address) \(place) failed: \(message)"
        case .skipped(let reason):
            line = "  \(paint("-", "33")) skipped \(change.action.rawValue) \(change.address): \(reason)"
        }
        lock.lock()
        defer { lock.unlock() }
        if transferShown {
            Terminal.standardError.write("\r\u{1B}[K")
            transferShown = false
        }
        finished += 1
        if case .failed = outcome { failed += 1 }
        let counting = interactive && total > Self.lineLimit
        guard counting else {
            Terminal.standardOutput.write(line + "\n")
            return
        }
        if counterShown { Terminal.standardError.write("\r\u{1B}[K") }
        if !succeeded { Terminal.standardOutput.write(line + "\n") }
        Terminal.standardError.write(counter())
        counterShown = finished < total
        if !counterShown { Terminal.standardError.write("\n") }
    }

    /// `  snapshot/r/t/data@nightly: 512 MiB · 12.8 MiB/s · 40 s`
    static func transfer(_ change: Change, _ moved: Applier.Transferred) -> String {
        var line = "  \(change.address): \(ByteSize(bytes: moved.bytes).readable)"
        if moved.seconds >= 0.1 {
            line += " · \(ByteSize(bytes: UInt64(Double(moved.bytes) / moved.seconds)).readable)/s · \(Int(moved.seconds)) s"
        }
        return line
    }

    /// `applying 1,200 of 5,000 changes · 3 failed · 41 s`
    private func counter() -> String {
        let seconds = Int(Date().timeIntervalSince(started))
        return "  applying \(finished.formatted()) of \(total.formatted()) changes" + (failed > 0 ? " · \(failed) failed" : "") + " · \(seconds) s"
    }

    private func paint(_ text: String, _ code: String) -> String {
        colors ? "\u{1B}[\(code)m\(text)\u{1B}[0m" : text
    }
}
