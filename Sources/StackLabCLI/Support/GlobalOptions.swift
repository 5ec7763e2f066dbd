import ArgumentParser
import Foundation
import Reconcile
import StateStores

/// The options every command that keeps or reads state shares, declared once: where the state directory is and
/// which store holds the state.
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "Where StackLab keeps its state: the SQLite journal, simulated nodes, locks (default: <repo>/.stacklab, or $STACKLAB_STATE_DIR).",
        valueName: "dir"))
    var stateDir: String?

    @Option(name: .long, help: ArgumentHelp(
        "Keep the state in this PostgreSQL database (postgres://user@host:port/db, or $STACKLAB_DATABASE), shared by several reconcilers; default: the embedded SQLite store in the state directory.",
        valueName: "url"))
    var database: String?

    @Option(name: .long, help: ArgumentHelp("With --database: seconds a region's lease lasts unrenewed (how soon a dead reconciler's regions move).", valueName: "s"))
    var leaseSeconds: Double = 15

    /// `--state-dir`, else `$STACKLAB_STATE_DIR`, else `<repo>/.stacklab`.
    func stateDirectory(repo: String) -> String {
        let path = stateDir ?? ProcessEnvironment.values["STACKLAB_STATE_DIR"] ?? (repo as NSString).appendingPathComponent(".stacklab")
        return URL(fileURLWithPath: path).standardizedFileURL.path
    }

    /// The store in force for `repo`: `--database` (else `$STACKLAB_DATABASE`) when set, else the embedded store in the
    /// state directory; as a command (`apply`) or a long-running service (`serve`).
    func location(repo: String, role: String = "apply") throws -> StateLocation {
        do {
            return try StateLocation.resolve(database: database ?? ProcessEnvironment.values["STACKLAB_DATABASE"], stateDirectory: stateDirectory(repo: repo),
                                             leaseSeconds: leaseSeconds, role: role)
        } catch {
            throw ValidationError("\(error)")
        }
    }

    /// The options as given, for a command that runs `stacklab` again.
    var arguments: [String] {
        (stateDir.map { ["--state-dir", $0] } ?? []) + (database.map { ["--database", $0, "--lease-seconds", "\(leaseSeconds)"] } ?? [])
    }
}

/// The process's environment, read once: the CLI passes what it holds down (`RunEnvironment`, a state directory, a
/// database URL); no library reads the environment.
enum ProcessEnvironment {
    static let values = ProcessInfo.processInfo.environment

    /// What a reconcile takes from it.
    static var run: RunEnvironment { RunEnvironment(values) }
}

/// `--format text|json`, declared once for every command that answers in either.
struct OutputOptions: ParsableArguments {
    @Option(help: "text or json.")
    var format: OutputFormat = .text
}
