import Foundation
import Processes
import TestSupport
import Testing

/// State that operators already have stays theirs: a SQLite state directory and a PostgreSQL database written by the
/// last commit before Core v3 (`Tests/Fixtures/state-before-v3`) are opened by today's code. The migrations run, the
/// plan of the same revision changes only what this version adds (the rulesets' traffic counters), the ledger reads
/// back with its deposit, and a new change applies.
@Suite struct StateFixtureTests {
    @Test(arguments: ["sqlite", "postgres"])
    func stateWrittenBeforeCoreV3IsReadAndKeptConverged(backend: String) throws {
        let fixture = Fixtures.path("state-before-v3")
        let scratch = try Scratch("state-fixture")
        let repo = scratch.file("repo"), state = scratch.file("state")
        try Command.check(["git", "clone", "-q", "-b", "main", "\(fixture)/repo.bundle", repo])
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: "\(fixture)/\(backend)/nodes", toPath: "\(state)/nodes")
        var database: [String] = []
        if backend == "sqlite" {
            try FileManager.default.copyItem(atPath: "\(fixture)/sqlite/stacklab.sqlite", toPath: "\(state)/stacklab.sqlite")
        } else {
            let url = try LoopbackPostgres.shared().database("fixture")
            try Command.check(["psql", "-q", "-v", "ON_ERROR_STOP=1", "-f", "\(fixture)/postgres/postgres.sql", url])
            database = ["--database", url]
        }
        func stacklab(_ arguments: [String]) throws -> Command.Result {
            try Command.run([StackLabBinary.path] + arguments + ["--repo", repo, "--state-dir", state] + database)
        }
        // What changes is what this version adds: each compute node's ruleset gains its traffic counters (bandwidth
        // billing), rules added and none removed. Once applied, the plan is empty.
        let plan = try stacklab(["plan", "--rev", "main"])
        let lines = plan.output.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        let resources = lines.filter { $0.range(of: #"^[~+-] [a-z]+/"#, options: .regularExpression) != nil }
        let rules = lines.filter { $0.hasPrefix("+ rule:") || $0.hasPrefix("- rule:") }
        #expect(plan.status == 2 && !resources.isEmpty && resources.allSatisfy { $0.hasPrefix("~ firewall/") }, "\(plan.output)")
        #expect(!rules.isEmpty && rules.allSatisfy { $0.hasPrefix("+ rule: traffic-") }, "\(plan.output)")
        let upgraded = try stacklab(["apply", "--rev", "main", "--auto-approve"])
        #expect(upgraded.status == 0, "\(upgraded.output)")
        let converged = try stacklab(["plan", "--rev", "main"])
        #expect(converged.status == 0 && converged.output.contains("No changes"), "\(converged.output)")
        let entries = try stacklab(["account", "acme", "entries"])
        #expect(entries.status == 0 && entries.output.contains("deposit") && entries.output.contains("100.00"), "\(entries.output)")
        let verify = try stacklab(["bill", "--verify"])
        #expect(verify.status == 0, "\(verify.output)")

        // A new revision applies on top of it, and the run history reads on (an older revision is refused).
        let acme = try String(contentsOfFile: "\(repo)/manifests/tenants/acme.yaml", encoding: .utf8)
        try (acme + "---\nkind: Instance\nname: web-9\nregion: lab\ntenant: acme\nspec: {flavor: m1.small, image: ubuntu, network: private}\n")
            .write(toFile: "\(repo)/manifests/tenants/acme.yaml", atomically: true, encoding: .utf8)
        try GitCLI.commitAll(in: repo, message: "web-9")
        let apply = try stacklab(["apply", "--rev", "main", "--auto-approve"])
        #expect(apply.status == 0 && apply.output.contains("+ instance/lab/acme/web-9"), "\(apply.output)")
        let older = try stacklab(["apply", "--rev", "main~1", "--auto-approve"])
        #expect(older.status == 1 && older.output.contains("is older than what"), "\(older.output)")
    }
}
