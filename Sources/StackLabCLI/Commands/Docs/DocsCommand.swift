import ArgumentParser
import Foundation

/// `stacklab docs`: writes (or checks) the generated reference.
struct DocsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "docs",
        abstract: "Write the command-line and manifest reference (docs/reference/) for this build.",
        discussion: """
            Generates cli.md (every command's --help) and manifests.md (every kind and field) into --out. With \
            --check, writes nothing and exits 1 when a file there differs from what this build generates.

            Examples:
              stacklab docs --out docs/reference
              stacklab docs --out docs/reference --check
            """)

    @Option(help: ArgumentHelp("The directory to write into.", valueName: "dir"))
    var out: String

    @Flag(help: "Only compare: exit 1 when a file differs (names it).")
    var check = false

    @OptionGroup var output: OutputOptions

    func run() throws {
        var stale: [String] = []
        var written: [String] = []
        if !check { try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true) }
        for file in try ReferenceDocs.files() {
            let path = (out as NSString).appendingPathComponent(file.name)
            if check {
                if (try? String(contentsOfFile: path, encoding: .utf8)) != file.text { stale.append(path) }
            } else {
                try file.text.write(toFile: path, atomically: true, encoding: .utf8)
                written.append(path)
                if output.format != .json { Terminal.standardOutput.write("wrote \(path)\n") }
            }
        }
        if output.format == .json {
            Terminal.standardOutput.write(try JSON.encode(["written": written, "stale": stale]))
        }
        guard stale.isEmpty else {
            throw fail("\(stale.joined(separator: ", ")) differ from what this build generates; run 'stacklab docs --out \(out)'")
        }
        if check && output.format != .json { Terminal.standardOutput.write("the reference in \(out) is up to date\n") }
    }
}
