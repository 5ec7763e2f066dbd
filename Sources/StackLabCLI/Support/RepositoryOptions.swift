import ArgumentParser
import Foundation
import ManifestSources
import Manifests

/// Where the manifests come from: `--repo` and optionally `--rev`.
struct RepositoryOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The manifests repository (a git work tree or any directory).", valueName: "dir"))
    var repo: String = "."

    @Option(name: .long, help: ArgumentHelp(
        "Read this git revision (branch, tag, SHA, HEAD~1) from the repository's object store instead of the files on disk.",
        valueName: "rev"))
    var rev: String?

    @Option(name: .long, help: ArgumentHelp("Largest manifest file accepted, in MiB.", valueName: "mib"))
    var maxFileSize: Int = 8

    @Option(name: .long, help: ArgumentHelp("Threads that decode files (default: one per core).", valueName: "n"))
    var jobs: Int = 0

    func validate() throws {
        guard (1...1024).contains(maxFileSize) else {
            throw ValidationError("--max-file-size must be between 1 and 1024 MiB, not \(maxFileSize)")
        }
        guard (0...256).contains(jobs) else { throw ValidationError("--jobs must be between 0 (one per core) and 256, not \(jobs)") }
    }

    /// The source these options name.
    func source() -> any ManifestSource {
        if let rev { return GitSource(repository: repo, revision: rev) }
        return DirectorySource(root: repo)
    }

    /// Limits these options set.
    var limits: LoadLimits { LoadLimits(maxFileBytes: maxFileSize << 20, parallelism: jobs) }

    /// Loads and validates, turning an unreadable source (or a directory that is no manifests repository) into a
    /// clean failure: text on standard error, or with `json` a JSON document on standard output.
    func load() throws -> LoadResult {
        let result: LoadResult
        do {
            result = try Loader(limits: limits).load(source())
        } catch {
            throw failure(error.message, hint: error.hint)
        }
        // A repository is recognised by its manifests/ or regions/ directory (in the tree, or in the revision read).
        let isRepository = rev == nil
            ? ["manifests", "regions"].contains { FileManager.default.fileExists(atPath: (repo as NSString).appendingPathComponent($0)) }
            : result.files.count > 0
        guard isRepository else {
            throw failure("\(rev.map { "revision \($0) of " } ?? "")\(repo == "." ? "this directory" : repo) is not a StackLab manifests repository: it has no manifests/ or regions/ directory",
                          hint: "run stacklab inside one, or pass --repo DIR")
        }
        return result
    }
}

/// Prints a failure (text on standard error; with --format json, a diagnostic of the command's one document) and
/// returns the exit code 1.
func failure(_ message: String, hint: String? = nil) -> ExitCode {
    // An error may quote what it was given (a revision, a file, a node's answer): shown, never obeyed.
    if !Answer.shared.record(DiagnosticRecord(error: message, hint: hint)) {
        Terminal.standardError.write("error: \(message.terminalSafeLines)\n" + (hint.map { "  hint: \($0.terminalSafeLines)\n" } ?? ""))
    }
    return ExitCode(1)
}

/// Output format for commands that print data.
public enum OutputFormat: String, ExpressibleByArgument, CaseIterable, Sendable {
    case text, json
}
