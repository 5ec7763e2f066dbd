import ArgumentParser
import Foundation
import Manifests

/// `stacklab validate`: load a revision of the manifests and report every problem, compiler-style.
struct Validate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check the manifests and report every problem with its file, line and column.",
        discussion: """
            Reads manifests/, regions/ and ci/ from the repository (or from a git revision with --rev), decodes every \
            document, and checks references, networks, rings and capacity. All problems are reported in one run. \
            Exits 1 when there are errors; warnings alone exit 0.

            Examples:
              stacklab validate
              stacklab validate --repo ~/cloud --rev origin/main
              stacklab validate --format json
            """)

    @OptionGroup var repository: RepositoryOptions

    @OptionGroup var output: OutputOptions
    var format: OutputFormat { output.format }

    @Flag(help: "Print how long reading, decoding and validating took (to stderr).")
    var timings = false

    func run() throws {
        let result = try repository.load()
        var output = try Self.output(for: result, format: format, colors: Terminal.standardError.wantsColor)
        if timings {
            output.stderr += result.timings.phases + "\n"
        }
        output.emitAndExit(keeping: result)
    }

    /// The report for a loaded revision: diagnostics (text on stderr, or JSON on stdout) and exit 1 on errors.
    static func output(for result: LoadResult, format: OutputFormat, colors: Bool) throws -> CommandOutput {
        var output = CommandOutput(exitCode: result.hasErrors ? 1 : 0)
        switch format {
        case .text:
            if !result.diagnostics.isEmpty {
                output.stderr = DiagnosticRenderer(files: result.files, colors: colors).render(result.diagnostics)
            }
            if !result.hasErrors { output.stdout = "ok: \(Summary(result).text)\n" }
        case .json:
            output.stdout = try JSON.encode(ValidationReport(result))
        }
        return output
    }
}

/// The JSON form of a validation.
struct ValidationReport: Encodable {
    var ok: Bool
    var revision: String?
    var errors: Int
    var warnings: Int
    var resources: [String: Int]
    var diagnostics: [DiagnosticRecord]

    init(_ result: LoadResult) {
        ok = !result.hasErrors
        revision = result.revision
        errors = result.diagnostics.count { $0.severity == .error }
        warnings = result.diagnostics.count - errors
        resources = Summary(result).counts
        diagnostics = result.diagnostics.map { DiagnosticRecord($0, files: result.files) }
    }
}

/// Counts of what was loaded.
struct Summary {
    var counts: [String: Int] = [:]
    var files: Int
    var revision: String?

    init(_ result: LoadResult) {
        for (kind, count) in result.model.countsByKind { counts[kind.rawValue] = count }
        files = result.files.files.count
        revision = result.revision
    }

    var text: String {
        let order = Kind.manifestKinds.map(\.rawValue).filter { counts[$0] != nil }
        let parts = order.map { "\(counts[$0]!) \($0)" }
        let source = revision.map { " at \($0.prefix(12))" } ?? ""
        return "\(files) files\(source): " + parts.joined(separator: ", ")
    }
}
