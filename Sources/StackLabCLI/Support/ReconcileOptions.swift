import ArgumentParser
import Billing
import Foundation
import Manifests
import Planning
import Reconcile
import StateStores

/// Options shared by plan, apply and drift.
struct ReconcileOptions: ParsableArguments {
    @OptionGroup var global: GlobalOptions

    @Option(name: .long, help: ArgumentHelp("Only this region (repeatable).", valueName: "name"))
    var region: [String] = []

    @Flag(help: "Report StackLab's objects on nodes or regions that left the manifests instead of deleting them.")
    var keepOrphans = false

    @Flag(help: "Delete a tenant's container that left the manifests even when it holds objects, with all of them (the plan shows it).")
    var deleteContainerObjects = false

    @Option(name: .long, help: ArgumentHelp("SSH private key for production nodes (ed25519 or ECDSA; default $STACKLAB_SSH_IDENTITY, else ~/.ssh/id_ed25519).", valueName: "file"))
    var identity: String?

    @Option(name: .long, help: ArgumentHelp("Record the ledger (billing) as if it were this time (UTC: 2026-11-01 or 2026-11-01T09:00): for demos and tests.", valueName: "time"))
    var at: String?

    func validate() throws {
        try Self.validateTime(at)
        try Self.validateIdentity(identity)
    }

    /// Checks an `--identity` value: a key that is not there is refused at once, not when (or whether) a node needs it.
    static func validateIdentity(_ identity: String?) throws {
        guard let identity else { return }
        var directory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: identity, isDirectory: &directory), !directory.boolValue else {
            throw ValidationError("--identity \(identity): there is no key file there; pass the private key's path (ed25519 or ECDSA)")
        }
    }

    /// The ledger's clock: `--at`, else the wall clock.
    var clock: (@Sendable () -> Int64)? { Self.clock(at: at) }

    /// Checks an `--at` value.
    static func validateTime(_ at: String?) throws {
        if let at, Calendar.UTC.parse(at) == nil { throw ValidationError("--at takes a UTC date or time: 2026-11-30 or 2026-11-30T14:05, not \(at)") }
    }

    /// A clock stopped at `at` (nil: the wall clock).
    static func clock(at: String?) -> (@Sendable () -> Int64)? {
        guard let at, let time = Calendar.UTC.parse(at) else { return nil }
        return { time }
    }

    /// A reconciler for a loaded revision, reading the state store if there is one (never creating it).
    func reconciler(for loaded: LoadResult, repo: String) throws -> Reconciler {
        let directory = stateDirectory(repo: repo)
        let location = try stateLocation(repo: repo)
        do {
            var reconciler = Reconciler(model: loaded.model, revision: loaded.revision, stateDirectory: directory,
                                        state: try location.existing(clock: clock), options: Planner.Options(keepOrphans: keepOrphans, deleteContainerObjects: deleteContainerObjects),
                                        environment: ProcessEnvironment.run)
            reconciler.sshIdentity = identity
            return reconciler
        } catch {
            throw fail("cannot open the state store \(location): \(error)")
        }
    }

    /// The state store in force: `--database`, else the embedded one in the state directory.
    func stateLocation(repo: String) throws -> StateLocation {
        try global.location(repo: repo)
    }

    /// The state directory in force.
    func stateDirectory(repo: String) -> String {
        global.stateDirectory(repo: repo)
    }
}

extension RepositoryOptions {
    /// Loads the manifests and refuses to go on when they have errors (printing them, or with `json` the validation
    /// report on standard output).
    func loadValid() throws -> LoadResult {
        let result = try load()
        if result.hasErrors && Answer.shared.json {
            Terminal.standardOutput.write(try JSON.encode(ValidationReport(result)))
            throw ExitCode(1)
        }
        if result.hasErrors {
            let renderer = DiagnosticRenderer(files: result.files, colors: Terminal.standardError.wantsColor)
            Terminal.standardError.write(renderer.render(result.diagnostics.filter { $0.severity == .error }))
            Terminal.standardError.write("the manifests have errors: nothing was planned or changed\n")
            throw ExitCode(1)
        }
        return result
    }
}

/// `error` as a command fails with it: an exit a step already chose (having said why) passes through as it is;
/// anything else is printed (with `json`, as the command's one JSON document) and exits 1.
func failing(_ error: any Error) -> any Error {
    error as? ExitCode ?? failure("\(error)")
}

/// Prints a failure and exits 1 (`failure` without a hint).
public func fail(_ message: String) -> ExitCode {
    failure(message)
}
