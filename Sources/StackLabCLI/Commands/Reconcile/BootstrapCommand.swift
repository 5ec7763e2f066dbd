import ArgumentParser
import Foundation
import Hosts
import Manifests
import Pipelines
import Planning
import StateSQLite

/// `stacklab bootstrap REGION`: brings a region's servers into shape over SSH.
struct BootstrapCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bootstrap",
        abstract: "Preflight a region's servers over SSH and converge their host configuration.",
        discussion: """
            Preflight checks every node at once: reachable, host key (the Node's ssh.hostKey, or one recorded by \
            --trust-on-first-use), and its facts (CPUs, memory, disks, OS) against the Node manifest, side by side. \
            Only when every node passes is each converged: its identity and the service catalog under /etc/stacklab, \
            its storage layout, the Swift rings StackLab has built, the directories its roles use, and (on hosts \
            whose fileRoot is /) its services. A second run changes nothing. Simulated nodes are bootstrapped \
            under the state directory. Exit status: 0 done (or nothing to do), 2 changes planned (--dry-run), 1 errors.
            """)

    @OptionGroup var repository: RepositoryOptions

    @Argument(help: "The region to bootstrap.")
    var region: String

    @OptionGroup var global: GlobalOptions
    @OptionGroup var output: OutputOptions

    @Option(name: .long, help: ArgumentHelp("SSH private key (ed25519 or ECDSA); default $STACKLAB_SSH_KEY (the key's text), else ~/.ssh/id_ed25519.", valueName: "file"))
    var identity: String?

    @Flag(help: "Show what would change; change nothing.")
    var dryRun = false

    @Flag(help: "Record the host key a node offers when no key is pinned for it (and say so).")
    var trustOnFirstUse = false

    @Option(help: ArgumentHelp("Nodes worked on at once.", valueName: "n"))
    var parallelism = 8

    func validate() throws {
        try ReconcileOptions.validateIdentity(identity)
    }

    func run() throws {
        let loaded = try repository.loadValid()
        guard loaded.model.regions.contains(where: { $0.name == region }) else {
            throw fail("region '\(region)' is not declared; regions are: \(loaded.model.regions.map(\.name).sorted().joined(separator: ", "))")
        }
        let directory = global.stateDirectory(repo: repository.repo)
        let rings: [Address: StoredRing]
        let location = try global.location(repo: repository.repo)
        do {
            // The ring builders apply saved, from the store in force (the embedded one, or PostgreSQL).
            rings = try location.existing()?.rings(nil) ?? [:]
        } catch {
            throw fail("cannot read the ring builders in \(location): \(error)")
        }
        var options = Bootstrap.Options()
        options.dryRun = dryRun
        options.trustOnFirstUse = trustOnFirstUse
        options.parallelism = max(1, parallelism)
        options.credentials = credentials()
        let json = output.format == .json
        let report = Bootstrap(model: loaded.model, stateDirectory: directory, rings: rings)
            .run(region: region, options: options) { node, step in
                if !json { Terminal.standardOutput.write("  \(node.name): \(step.terminalSafe)\n") }
            }
        if json {
            struct Document: Encodable {
                var ok: Bool
                var dryRun: Bool
                var preflightPassed: Bool
                var changes: Int
                var nodes: [Bootstrap.NodeReport]
            }
            Terminal.standardOutput.write(try JSON.encode(Document(ok: report.succeeded, dryRun: dryRun, preflightPassed: report.preflightPassed,
                                                                   changes: report.changeCount, nodes: report.nodes)))
        } else {
            Terminal.standardOutput.write(Self.render(report, dryRun: dryRun))
        }
        if !report.succeeded { throw ExitCode(1) }
        if dryRun && report.changeCount > 0 { throw ExitCode(2) }
    }

    private func credentials() -> SSHHost.Credentials? {
        if let identity { return .init(key: .file(identity)) }
        if let text = ProcessEnvironment.values["STACKLAB_SSH_KEY"], !text.isEmpty { return .init(key: .text(text)) }
        let home = ProcessEnvironment.values["HOME"] ?? NSHomeDirectory()
        let standard = "\(home)/.ssh/id_ed25519"
        return FileManager.default.fileExists(atPath: standard) ? .init(key: .file(standard)) : nil
    }

    static func render(_ report: Bootstrap.Report, dryRun: Bool) -> String {
        var out = "\nPreflight:\n"
        for node in report.nodes {
            if let error = node.preflightError {
                out += "  ✗ \(node.node.name): \(error.terminalSafe)\n"
                continue
            }
            let facts = node.facts.map { "\($0.cpus) CPUs, \(ByteSize(bytes: $0.memoryBytes).readable) memory, \($0.disks.count) disks, \($0.os)" } ?? ""
            out += "  ✓ \(node.node.name): \(facts.terminalSafe)\n"
            for note in node.notes { out += "      \(note.terminalSafe)\n" }
            for mismatch in node.mismatches { out += "      differs: \(mismatch.terminalSafe)\n" }
        }
        guard report.preflightPassed else {
            let failed = report.nodes.filter { $0.preflightError != nil }.count
            return out + "\nPreflight failed on \(failed) of \(report.nodes.count.counted("node")): nothing was changed.\n"
        }
        out += "\n"
        let failed = report.nodes.filter { $0.error != nil }
        for node in failed { out += "  ✗ \(node.node.name): \(node.error!.terminalSafe)\n" }
        let count = report.changeCount
        guard failed.isEmpty else {
            return out + "Bootstrap failed on \(failed.count) of \(report.nodes.count.counted("node")) after \(count.counted("change")); run it again once fixed (what is done stays done).\n"
        }
        if count == 0 {
            out += "No changes: \(report.nodes.count.counted("node")) \(report.nodes.count == 1 ? "is" : "are") in shape.\n"
        } else {
            out += dryRun ? "Bootstrap would make \(count.counted("change")) on \(report.nodes.filter { !$0.changes.isEmpty }.count.counted("node")) (dry run).\n"
                          : "Bootstrap made \(count.counted("change")) on \(report.nodes.filter { !$0.changes.isEmpty }.count.counted("node")).\n"
        }
        return out
    }
}
