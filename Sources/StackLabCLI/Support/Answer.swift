import ArgumentParser
import Foundation
import Manifests

/// The one answer a command gives with `--format json`: exactly one JSON document on standard output, success or
/// failure, usage errors included, always with `ok` and `diagnostics`.
///
/// Commands write their payload as they always do (`Terminal.standardOutput`); in JSON mode that text is held here
/// instead of written, and `fail`/`failure` record their message as a diagnostic instead of printing it. When the
/// command returns or throws, `finish` writes the one document: the command's own object with `ok` (from the exit
/// status, unless the command set it), `diagnostics` (the recorded ones added to any the command gave) and `error`
/// (the first error's message) filled in; or, when the command printed nothing, a document made of those alone.
///
/// `@unchecked Sendable`: `lock` guards every field; a command's parallel workers may write at once.
final class Answer: @unchecked Sendable {
    static let shared = Answer()

    private let lock = NSLock()
    private var jsonMode = false
    private var held = ""
    private var recorded: [DiagnosticRecord] = []

    /// Whether this process answers in JSON (`--format json` among its arguments).
    var json: Bool { lock.withLock { jsonMode } }

    /// Decides the mode from the command line: `--format json` or `--format=json` anywhere in it.
    func start(arguments: [String]) {
        let wanted = zip(arguments, arguments.dropFirst()).contains { $0 == "--format" && $1 == "json" } || arguments.contains("--format=json")
        lock.withLock {
            jsonMode = wanted
            held = ""
            recorded = []
        }
    }

    /// Holds standard output's text in JSON mode (returns true), or lets it through (false).
    func hold(_ text: String) -> Bool {
        lock.withLock {
            guard jsonMode else { return false }
            held += text
            return true
        }
    }

    /// Records an error or warning for the document, in JSON mode (returns true); in text mode the caller prints it.
    func record(_ diagnostic: DiagnosticRecord) -> Bool {
        lock.withLock {
            guard jsonMode else { return false }
            recorded.append(diagnostic)
            return true
        }
    }

    /// The document for a command that ended with `exitCode`, having written `held` and recorded `recorded`.
    static func document(held: String, recorded: [DiagnosticRecord], exitCode: Int32) -> String {
        // Exit 2 is "changes found" (plan, drift, a dry-run bootstrap): an answer, not a failure.
        let succeeded = exitCode == 0 || exitCode == 2
        var object: [String: Any]
        let text = held.trimmingCharacters(in: .whitespacesAndNewlines)
        if text.isEmpty {
            object = [:]
        } else if let parsed = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] {
            object = parsed
        } else {
            // A command that printed something other than one JSON object in JSON mode is a bug the contract test
            // catches; its text is kept, not lost.
            object = ["text": held]
        }
        if object["ok"] == nil { object["ok"] = succeeded }
        let given = object["diagnostics"] as? [Any] ?? []
        let added = recorded.compactMap { record -> Any? in
            (try? JSONEncoder().encode(record)).flatMap { try? JSONSerialization.jsonObject(with: $0) }
        }
        object["diagnostics"] = given + added
        if object["error"] == nil, let first = recorded.first(where: { $0.severity == .error }) {
            object["error"] = first.message
            if object["hint"] == nil, let hint = first.hint { object["hint"] = hint }
        }
        if object["error"] == nil, object["ok"] as? Bool == false, given.isEmpty, added.isEmpty {
            object["error"] = "failed with exit status \(exitCode)"
            object["diagnostics"] = [["severity": "error", "message": "failed with exit status \(exitCode)"]]
        }
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])) ?? Data("{\"ok\": false}".utf8)
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    /// Writes the one document (JSON mode) for a command that ended with `exitCode`.
    func finish(exitCode: Int32) {
        let (mode, text, diagnostics) = lock.withLock { (jsonMode, held, recorded) }
        guard mode else { return }
        lock.withLock {
            jsonMode = false
            held = ""
            recorded = []
        }
        Terminal.standardOutput.raw(Self.document(held: text, recorded: diagnostics, exitCode: exitCode))
    }
}
