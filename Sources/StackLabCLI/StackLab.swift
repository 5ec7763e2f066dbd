import ArgumentParser
import Manifests

/// The `stacklab` command.
public struct StackLab: AsyncParsableCommand {
    /// Command metadata and subcommands.
    public static let configuration = CommandConfiguration(
        commandName: "stacklab",
        abstract: "Declarative reconciler for StackLab clouds: manifests in git in, converged regions out.",
        discussion: """
            StackLab reads a revision of a manifests repository (manifests/, regions/, ci/), checks it, and \
            converges each region to it. Start with:

              stacklab validate              check the manifests in this directory
              stacklab validate --rev main   check the 'main' branch as committed
              stacklab show node             list the servers of every region
              stacklab plan                  what apply would change on every node
              stacklab apply                 converge (asks first, or --auto-approve)
              stacklab drift                 what changed behind StackLab's back
              stacklab ring show sina        a region's Swift rings, device by device
              stacklab firewall show sina/sina-2   a compute node's nftables ruleset, rule by rule
              stacklab bill devops --month 2026-11 a tenant's statement, rated from the ledger
              stacklab ci gate --change review/42  test a change on staging: Verified +1/-1, JUnit
              stacklab ci deploy --rev main        roll a revision out region by region
              stacklab serve --repo cloud.git ...  the GitOps service: pushes in, converged regions out

            Run 'stacklab help <command>' for a command's options.
            """,
        version: StackLab.version,
        subcommands: [Validate.self, Show.self, PlanCommand.self, ApplyCommand.self, DriftCommand.self, BootstrapCommand.self, RingCommand.self, FirewallCommand.self, MonitoringCommand.self, MetadataCommand.self, BillCommand.self, MeterCommand.self, AccountCommand.self, TenantCommand.self, CICommand.self, RollbackCommand.self, ServeCommand.self, RegionControlCommand.self, ApproveCommand.self, HookCommand.self, DocsCommand.self]
    )

    /// The version `stacklab --version` prints.
    public static let version = "0.2.0"

    /// Creates the command (ArgumentParser requires it).
    public init() {}
}

extension StackLab {
    /// Parses the process's arguments and runs the command (asynchronous commands, such as `metadata serve`, included).
    ///
    /// With `--format json` anywhere on the command line, the process prints exactly one JSON document on standard
    /// output whatever happens (`Answer`): the command's answer, a failure, a usage error, or `--help` as text in it.
    public static func run() async {
        let arguments = Array(CommandLine.arguments.dropFirst())
        Answer.shared.start(arguments: arguments)
        do {
            var command = try parseAsRoot(arguments)
            if var asynchronous = command as? any AsyncParsableCommand {
                try await asynchronous.run()
            } else {
                try command.run()
            }
            Answer.shared.finish(exitCode: 0)
        } catch {
            let code = exitCode(for: error).rawValue
            guard Answer.shared.json else { exit(withError: error) }
            if code == 0 {
                // --help or --version: their text, as the answer.
                Terminal.standardOutput.write(try! JSON.encode(["help": fullMessage(for: error)]))
            } else if !(error is ExitCode) {
                // A usage error (exit 64) or an error no step caught: said once, as the document's diagnostic.
                let message = message(for: error).trimmingCharacters(in: .whitespacesAndNewlines)
                _ = Answer.shared.record(DiagnosticRecord(error: message.isEmpty ? "\(error)" : message,
                                                          hint: code == ExitCode.validationFailure.rawValue ? "see 'stacklab help \(commandPath(arguments))'" : nil))
            }
            Answer.shared.finish(exitCode: code)
            exit(withError: ExitCode(code))
        }
    }

    /// The subcommand path the arguments name (`ci gate`), as far as they name one.
    static func commandPath(_ arguments: [String]) -> String {
        var command: any ParsableCommand.Type = StackLab.self
        var path: [String] = []
        for argument in arguments {
            guard let next = command.configuration.subcommands.first(where: { $0.configuration.commandName == argument }) else { break }
            path.append(argument)
            command = next
        }
        return path.joined(separator: " ")
    }
}
