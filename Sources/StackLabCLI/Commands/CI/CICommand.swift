import ArgumentParser
import Foundation
import Git
import Manifests
import Pipelines
import Reconcile
import State
import StateStores

/// `stacklab ci`: the pipelines of `ci/`.
struct CICommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ci",
        abstract: "Gate changes on the staging region, and deploy revisions region by region, with the pipelines of ci/.",
        subcommands: [CICheck.self, CIGate.self, CIDeploy.self, CIHistory.self])
}

/// What every CI command reads: the repository, the state store and the output format (`ci history` takes no more).
struct CIStoreOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The manifests repository (git).", valueName: "dir"))
    var repo: String = "."

    @OptionGroup var global: GlobalOptions

    @OptionGroup var output: OutputOptions
}

/// What the CI commands that plan or apply share (`ci check`, and through `PipelineRunOptions`, gate and deploy).
struct PipelineOptions: ParsableArguments {
    @OptionGroup var store: CIStoreOptions

    @Option(name: .long, help: ArgumentHelp("SSH private key for production nodes.", valueName: "file"))
    var identity: String?

    var repo: String { store.repo }
    var global: GlobalOptions { store.global }
    var format: OutputFormat { store.output.format }

    func validate() throws {
        try ReconcileOptions.validateIdentity(identity)
    }

    /// A runner; `approve`: it passes the pipeline's approve steps (`PipelineRunOptions`'s --approve).
    func runner(approve: Bool = false) throws -> PipelineRunner {
        let directory = global.stateDirectory(repo: repo)
        let location = try global.location(repo: repo)
        var runner = PipelineRunner(repository: repo, stateDirectory: directory, leases: try location.leases(), existingState: { try location.existing() },
                                    openState: { try location.open() }, environment: ProcessEnvironment.run)
        runner.sshIdentity = identity
        runner.approved = approve
        return runner
    }
}

/// What the commands that run a pipeline add (`ci gate`, `ci deploy`): which pipeline, its JUnit report, approvals.
struct PipelineRunOptions: ParsableArguments {
    @OptionGroup var base: PipelineOptions

    @Option(name: .long, help: ArgumentHelp("The pipeline to run (default: the one the command's event triggers).", valueName: "name"))
    var pipeline: String?

    @Option(name: .long, help: ArgumentHelp("Write a JUnit XML report here (Jenkins reads it).", valueName: "file"))
    var junit: String?

    @Flag(help: "Approve the pipeline's approve steps.")
    var approve = false

    var repo: String { base.repo }
    var format: OutputFormat { base.format }

    func runner() throws -> PipelineRunner {
        try base.runner(approve: approve)
    }

    func writeJUnit(_ xml: String) throws {
        guard let junit else { return }
        do {
            try xml.write(toFile: junit, atomically: true, encoding: .utf8)
        } catch {
            throw fail("cannot write \(junit): \(error)")
        }
    }
}

/// `stacklab ci gate --change REF …`.
struct CIGate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gate",
        abstract: "Test changes exactly as they would merge: merged onto the base, applied to staging by the gate pipeline, smoke-checked.",
        discussion: """
            Each --change (a branch or commit) is merged onto the base tip (with libgit2, in the object database only) \
            on top of the changes before it that passed, then the gate pipeline (triggered by change-approved; \
            validate, apply staging, check) runs on the merge. A change whose merge conflicts (the files are named), \
            whose manifests do not validate, whose apply fails or whose smoke checks fail gets Verified: -1, and \
            staging is applied back to the revision it was tested on; the changes behind it are tested without it. \
            The exit status is the verdict: 0 when every change got +1. --merge moves the base branch to the tip the \
            passing changes make (only if nobody moved it meanwhile); when that branch is checked out, its files come \
            along, and a work tree with uncommitted changes is refused before anything moves.

            Examples:
              stacklab ci gate --change review/42 --junit gate.xml
              stacklab ci gate --change a --change b --change c --merge
            """)

    @OptionGroup var options: PipelineRunOptions

    @Option(name: .long, help: ArgumentHelp("A change to test (repeatable; tested in order).", valueName: "ref"))
    var change: [String]

    @Option(name: .long, help: ArgumentHelp("The branch the changes merge into.", valueName: "branch"))
    var base: String = "main"

    @Flag(help: "Move the base branch to the tip the passing changes make.")
    var merge = false

    func validate() throws {
        if change.isEmpty { throw ValidationError("name at least one --change") }
    }

    func run() throws {
        let runner = try options.runner()
        let outcome: (results: [PipelineRunner.GateResult], tip: String)
        let baseTip: String
        do {
            baseTip = try Repository(at: options.repo).resolveCommit(base)
            outcome = try runner.gate(changes: change, base: base, pipeline: options.pipeline)
        } catch {
            throw failing(error)
        }
        if merge, outcome.tip != baseTip {
            do {
                try Repository(at: options.repo).advanceBranch("refs/heads/\(base)", to: outcome.tip, expected: baseTip, message: "stacklab ci gate")
            } catch {
                // Someone pushed meanwhile (the compare-and-swap), or the checked-out work tree has uncommitted changes.
                throw failure("the gate passed but \(base) was not moved: \(error)")
            }
        }
        try options.writeJUnit(JUnit.report(name: "stacklab ci gate", suites: outcome.results.map {
            (name: "\($0.change) (\(String(($0.commit ?? "").prefix(12))))", timestamp: Date(), steps: $0.steps)
        }))
        switch options.format {
        case .json:
            struct Report: Encodable { var base: String; var tip: String; var merged: Bool; var results: [PipelineRunner.GateResult] }
            Terminal.standardOutput.write(try JSON.encode(Report(base: baseTip, tip: outcome.tip, merged: merge && outcome.tip != baseTip, results: outcome.results)))
        case .text:
            var out = ""
            for result in outcome.results {
                out += "change \(result.change) (\(String((result.commit ?? "?").prefix(12)))) on \(String(result.base.prefix(12))):\n"
                for step in result.steps {
                    let mark = step.status == .passed ? "✓" : step.status == .failed ? "✗" : "-"
                    out += "  \(mark) \(step.name) (\(String(format: "%.2f", step.seconds))s): \(step.message)\n"
                    if step.status == .failed, !step.log.isEmpty { out += step.log.split(separator: "\n").prefix(20).map { "      \($0)\n" }.joined() }
                }
                if let restored = result.restored { out += "  staging restored: \(restored)\n" }
                out += "Verified: \(result.verdict.label)\n"
            }
            if merge { out += outcome.tip == baseTip ? "\(base) stays at \(String(baseTip.prefix(12)))\n" : "\(base) moved to \(String(outcome.tip.prefix(12)))\n" }
            Terminal.standardOutput.write(out)
        }
        if outcome.results.contains(where: { $0.verdict == .failed }) { throw ExitCode(1) }
    }
}

/// `stacklab ci deploy --rev REV`.
struct CIDeploy: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deploy",
        abstract: "Roll a revision out with the deploy pipeline: its regions in order, halting at the first failure.",
        discussion: """
            The pipeline triggered by a push (ci/deploy.yaml) runs on REV: each step in order (apply a region, check \
            it, wait, approve); the first failure halts the rollout, and the report says what was applied where. \
            A rollback is a deploy of an older revision: stacklab ci deploy --rev v41.

            Examples:
              stacklab ci deploy --rev main
              stacklab ci deploy --rev main --junit deploy.xml --approve
            """)

    @OptionGroup var options: PipelineRunOptions

    @Option(name: .long, help: ArgumentHelp("The revision to roll out.", valueName: "rev"))
    var rev: String = "HEAD"

    func run() throws {
        var runner = try options.runner()
        runner.allowOlder = true  // a deploy of the revision named: going back with it is a rollback, said as one
        let steps: [PipelineRunner.StepResult]
        let commit: String
        let started = Date()
        do {
            commit = try Repository(at: options.repo).resolveCommit(rev)
            let loaded = try runner.load(commit)
            let pipeline = try PipelineRunner.pipeline(options.pipeline, in: loaded.model, event: .push)
            steps = runner.run(pipeline, on: loaded)
            if let problem = runner.remember(kind: .deploy, pipeline: pipeline.name, subject: rev, commit: commit,
                                             verdict: steps.contains { $0.status == .failed } ? .failed : .passed, started: started, steps: steps) {
                Terminal.standardError.write("warning: \(problem)\n")
            }
        } catch {
            throw failing(error)
        }
        try options.writeJUnit(JUnit.report(name: "stacklab ci deploy", suites: [(name: "\(rev) (\(String(commit.prefix(12))))", timestamp: Date(), steps: steps)]))
        let failed = steps.first { $0.status == .failed }
        switch options.format {
        case .json:
            struct Report: Encodable { var revision: String; var succeeded: Bool; var steps: [PipelineRunner.StepResult] }
            Terminal.standardOutput.write(try JSON.encode(Report(revision: commit, succeeded: failed == nil, steps: steps)))
        case .text:
            var out = "deploy \(rev) (\(String(commit.prefix(12)))):\n"
            for step in steps {
                let mark = step.status == .passed ? "✓" : step.status == .failed ? "✗" : "-"
                out += "  \(mark) \(step.name) (\(String(format: "%.2f", step.seconds))s): \(step.message)\n"
            }
            if let failed {
                let done = steps.prefix { $0.status == .passed }.filter { $0.region != nil }.map(\.name)
                out += "halted at \(failed.name): \(failed.message)\n"
                out += done.isEmpty ? "nothing was applied before it\n" : "applied before it, and left converged: \(done.joined(separator: ", "))\n"
            } else {
                out += "deployed: every step passed\n"
            }
            Terminal.standardOutput.write(out)
        }
        if failed != nil { throw ExitCode(1) }
    }
}

/// `stacklab ci check --change REF`.
struct CICheck: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Validate and plan a change against every region it touches, touching nothing; each planned change names the lines that caused it.",
        discussion: """
            The change is merged onto the base tip in memory (a conflict is reported with its files), validated, and \
            planned for every region whose documents (or the cloud-wide documents they use) it alters; nodes are \
            observed, never changed. For every planned change the report names the manifest lines of the change \
            behind it (in the changed resource's own document or in those it is made from: its flavor, image, \
            network, volumes, security groups), with the commit and author that wrote each (git blame). Verified +1 \
            when it validates and plans without errors.

            Example:
              stacklab ci check --change review/42 --base main
            """)

    @OptionGroup var options: PipelineOptions

    @Option(name: .long, help: ArgumentHelp("The change to check.", valueName: "ref"))
    var change: String

    @Option(name: .long, help: ArgumentHelp("The branch it merges into.", valueName: "branch"))
    var base: String = "main"

    func run() throws {
        let result: PipelineRunner.CheckResult
        do {
            result = try options.runner().check(change: change, base: base)
        } catch {
            throw failing(error)
        }
        if options.format == .json {
            Terminal.standardOutput.write(try JSON.encode(result))
        } else {
            // Everything a proposed change wrote (names, commits, authors, manifest text) is shown, never obeyed: a control
            // character in it cannot draw a fake verdict or hide the real one.
            var out = "change \(change.terminalSafe) (\(String((result.commit ?? "?").prefix(12)))) onto \(base.terminalSafe) (\(String(result.base.prefix(12)))):\n"
            if !result.conflicts.isEmpty { out += "  ✗ does not merge: conflicts in \(result.conflicts.joined(separator: ", ").terminalSafe)\n" }
            if !result.diagnostics.isEmpty { out += "  ✗ validate\n" + result.report.split(separator: "\n").map { "      \($0)\n" }.joined() }
            if result.merged != nil && result.diagnostics.isEmpty {
                out += result.regions.isEmpty ? "  it changes no region\n" : "  regions it touches: \(result.regions.joined(separator: ", "))\n"
                for change in result.changes {
                    out += "  \(change.action) \(change.id.terminalSafe) (\(change.reason))\n"
                    for field in change.fields {
                        out += "      \(field.field.terminalSafe): \(field.old.isEmpty ? "" : field.old.terminalSafe + " → ")\(field.new.terminalSafe)\n"
                    }
                    for cause in change.causes {
                        out += "      caused by \(cause.file.terminalSafe):\(cause.line)  \(cause.text.trimmingCharacters(in: .whitespaces).terminalSafe)\n"
                        out += "        \(String(cause.commit.prefix(12))) \(cause.author.terminalSafe) <\(cause.email.terminalSafe)>: \(cause.summary.terminalSafe)\n"
                    }
                }
                for error in result.planErrors { out += "  error: \(error.terminalSafe)\n" }
                for note in result.deferred { out += "  note: \(note.terminalSafe)\n" }
            }
            out += "Verified: \(result.verdict.label)\n"
            Terminal.standardOutput.write(out)
        }
        if result.verdict == .failed { throw ExitCode(1) }
    }
}

/// `stacklab rollback REGION --to REV`: a deploy of an older revision to one region.
struct RollbackCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollback",
        abstract: "Apply an older revision of the manifests to one region (what it would do is shown first; --auto-approve to skip asking).",
        discussion: """
            A rollback is an apply of REV's manifests to REGION: the plan shows what goes back (and what is deleted \
            because REV does not have it) before anything changes. The region then stays at REV: `stacklab serve` \
            and a plain `apply` leave it there until a newer push than the revision it was taken back from (apply \
            --allow-older moves it at once).

            Example:
              stacklab rollback sina --to HEAD~1 --auto-approve
            """)

    @Option(name: .long, help: ArgumentHelp("The manifests repository (git).", valueName: "dir"))
    var repo: String = "."

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The region.")
    var region: String

    @Option(name: .long, help: ArgumentHelp("The revision to go back to.", valueName: "rev"))
    var to: String

    @Flag(help: "Apply without asking.")
    var autoApprove = false

    @Option(help: ArgumentHelp("Seconds to wait for a run (or the service) holding the region.", valueName: "seconds"))
    var lockTimeout: Double = 0

    @OptionGroup var output: OutputOptions

    func run() throws {
        var arguments = ["apply", "--repo", repo, "--rev", to, "--region", region, "--allow-older", "--lock-timeout", "\(lockTimeout)"]
        arguments += global.arguments + ["--format", output.format.rawValue]
        if autoApprove { arguments.append("--auto-approve") }
        var command = try StackLab.parseAsRoot(arguments)
        try command.run()
    }
}

/// `stacklab ci history`: the pipeline runs kept in the state store.
struct CIHistory: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "history", abstract: "List the pipeline runs (gate, deploy) kept in the state store, newest first.")

    @OptionGroup var options: CIStoreOptions

    @Option(help: "How many runs.")
    var limit = 20

    func validate() throws {
        guard limit > 0 else { throw ValidationError("--limit takes a number of runs above 0, not \(limit)") }
    }

    func run() throws {
        // No state store yet is no run yet: an empty history, not an error.
        let runs = try options.global.location(repo: options.repo).existing()?.pipelineRuns(limit: limit) ?? []
        if options.output.format == .json {
            Terminal.standardOutput.write(try JSON.encode(["runs": runs]))
            return
        }
        var out = ""
        for run in runs {
            let steps = run.steps
            let failed = steps.first { $0.status == .failed }
            // A deploy the service is rolling out has no verdict yet: it says which step it is at.
            let verdict = run.verdict != .running ? run.verdict.label : "running\(steps.first { $0.status == .running }.map { " (at \($0.name))" } ?? "")"
            out += "#\(run.id ?? 0) \(run.kind) \(run.pipeline.terminalSafe) \(run.subject.terminalSafe) (\(String(run.commit.prefix(12)))) \(verdict) "
            out += "\(String(format: "%.1f", run.seconds))s, \(steps.count.counted("step"))\(failed.map { "; failed at \($0.name.terminalSafe): \($0.message.terminalSafe)" } ?? "")\n"
        }
        Terminal.standardOutput.write(runs.isEmpty ? "no pipeline runs yet\n" : out)
    }
}
