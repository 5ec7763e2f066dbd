import ArgumentParser
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

    /// The source these options name.
    func source() -> any ManifestSource {
        if let rev { return GitSource(repository: repo, revision: rev) }
        return DirectorySource(root: repo)
    }

    /// Limits these options set.
    var limits: LoadLimits { LoadLimits(maxFileBytes: maxFileSize << 20, parallelism: jobs) }

    /// Loads and validates, turning an unreadable source into a clean failure.
    func load() throws -> LoadResult {
        do {
            return try Loader(limits: limits).load(source())
        } catch {
            var message = "error: \(error.message)\n"
            if let hint = error.hint { message += "  hint: \(hint)\n" }
            Terminal.standardError.write(message)
            throw ExitCode(1)
        }
    }
}

/// Output format for commands that print data.
enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json
}
