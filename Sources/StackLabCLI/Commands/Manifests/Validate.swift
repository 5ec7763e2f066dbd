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

    @Option(help: "text (compiler-style) or json.")
    var format: OutputFormat = .text

    @Flag(help: "Print how long reading, decoding and validating took (to stderr).")
    var timings = false

    func run() throws {
        let result = try repository.load()
        if timings {
            let t = result.timings
            let read = t.read - t.decode - t.validate
            Terminal.standardError.write(String(format: "read %.3fs, decode %.3fs, validate %.3fs\n", read, t.decode, t.validate))
        }
        switch format {
        case .text:
            let renderer = DiagnosticRenderer(files: result.files, colors: Terminal.standardError.wantsColor)
            if !result.diagnostics.isEmpty {
                Terminal.standardError.write(renderer.render(result.diagnostics))
            }
            if !result.hasErrors {
                Terminal.standardOutput.write("ok: \(Summary(result).text)\n")
            }
        case .json:
            Terminal.standardOutput.write(try JSON.encode(ValidationReport(result)))
        }
        if result.hasErrors { throw ExitCode(1) }
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
        for meta in result.model.metas { counts[meta.kind.rawValue, default: 0] += 1 }
        files = result.files.files.count
        revision = result.revision
    }

    var text: String {
        let order = Kind.allCases.map(\.rawValue).filter { counts[$0] != nil }
        let parts = order.map { "\(counts[$0]!) \($0)" }
        let source = revision.map { " at \($0.prefix(12))" } ?? ""
        return "\(files) files\(source): " + parts.joined(separator: ", ")
    }
}
