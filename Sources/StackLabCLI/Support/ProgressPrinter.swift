import Foundation
import Planning
import Reconcile

/// Prints one line per finished change while apply runs.
///
/// `@unchecked Sendable`: `lock` serialises the writes of parallel workers.
final class ProgressPrinter: @unchecked Sendable {
    private let colors: Bool
    private let lock = NSLock()

    init(colors: Bool) {
        self.colors = colors
    }

    func show(_ event: Applier.ProgressEvent) {
        guard let outcome = event.outcome else { return }
        let change = event.change
        let place = change.target.node.map { "on \($0)" } ?? "in region \(change.region)"
        let line: String
        switch outcome {
        case .done(let seconds):
            line = "  \(paint("✓", "32")) \(change.action.rawValue) \(change.address) \(place) (\(String(format: "%.2f", seconds))s)"
        case .failed(let message, _):
            line = "  \(paint("✗", "31")) \(change.action.rawValue) \(change.address) \(place) failed: \(message)"
        case .skipped(let reason):
            line = "  \(paint("-", "33")) skipped \(change.action.rawValue) \(change.address): \(reason)"
        }
        lock.lock()
        defer { lock.unlock() }
        Terminal.standardOutput.write(line + "\n")
    }

    private func paint(_ text: String, _ code: String) -> String {
        colors ? "\u{1B}[\(code)m\(text)\u{1B}[0m" : text
    }
}
