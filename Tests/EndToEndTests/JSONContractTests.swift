import Foundation
import Manifests
import Processes
import StackLabCLI
import TestSupport
import Testing

/// The output contract, command by command: with `--format json` every command of the parser tree prints exactly one
/// JSON object on standard output — on success, on a usage error, when what it looks up is not there, and on bad input
/// — with `ok` and `diagnostics`, and exits as the reference's table says (0 or 2 answered, 1 failed, 64 usage).
@Suite(.serialized) struct JSONContractTests {
    enum Expect: CustomStringConvertible {
        /// Answered: exit 0, or 2 for "changes found" (plan, drift, a dry-run bootstrap).
        case ok
        /// Failed or refused: exit 1, `ok: false`, at least one error diagnostic.
        case failed
        /// A usage error: exit 64, `ok: false`, the parser's message as the diagnostic.
        case usage

        var description: String { self == .ok ? "ok" : self == .failed ? "failed" : "usage" }
    }

    /// One command's cases (beside the usage error every command gets): the arguments after the command's path, run
    /// in the deployment's work tree. Nil where the case cannot be made, with why in `CommandCases.without`.
    struct CommandCases {
        var success: String?
        var notFound: String?
        var badInput: String?
        /// How bad input ends: a failure when the command runs (1), or a usage error when the parser's checks refuse it (64).
        var bad: Expect = .failed
    }

    /// Each command path's cases, in the order they run (later ones use the state earlier ones made: `apply` before
    /// `bill`, `ring build` before `ring validate`).
    static func cases(_ world: World) -> [(path: String, cases: CommandCases)] {
        let broken = "--repo '\(world.broken)'"
        let token = "--token-file '\(world.token)'"
        let secret = "--webhook-secret-file '\(world.secret)'"
        let nowhere = "--url http://127.0.0.1:9"  // the discard port: nothing listens there on loopback
        return [
            ("validate", .init(success: "", notFound: "--rev nosuch", badInput: broken)),
            ("show", .init(success: "instance", notFound: "instance nosuch", badInput: "instance \(broken)")),
            ("plan", .init(success: "--region staging", notFound: "--region nosuch", badInput: broken)),
            ("drift", .init(success: "--region staging", notFound: "--region nosuch", badInput: broken)),
            ("firewall show", .init(success: "sina/sina-2", notFound: "sina/nope", badInput: "sina/sina-2 \(broken)")),
            ("monitoring config", .init(success: "--out monitoring-out", notFound: "--out monitoring-out --rev nosuch", badInput: "--out monitoring-out \(broken)")),
            ("ring show", .init(success: "sina", notFound: "nosuch", badInput: "sina \(broken)")),
            ("ring build", .init(success: "sina", notFound: "nosuch", badInput: "sina \(broken)")),
            ("ring validate", .init(success: "sina", notFound: "nosuch", badInput: "sina \(broken)")),
            ("bootstrap", .init(success: "staging --dry-run", notFound: "nosuch", badInput: "staging \(broken)")),
            ("apply", .init(success: "--region staging --auto-approve", notFound: "--region nosuch --auto-approve", badInput: "missing-plan.json")),
            ("bill", .init(success: "devops", notFound: "nosuch", badInput: "devops --repo '\(world.broken)'")),
            ("tenant token", .init(success: "devops laptop", notFound: "nosuch laptop", badInput: "devops laptop \(broken)")),
            ("tenant storage-key", .init(success: "devops", notFound: "nosuch", badInput: "devops \(broken)")),
            ("meter", .init(success: "--region staging", notFound: "--region nosuch", badInput: broken)),
            ("account", .init(success: "devops entries", notFound: "nosuch entries", badInput: "devops deposit 2000000000")),
            ("ci check", .init(success: "--change review/good", notFound: "--change nosuch", badInput: "--change review/bad")),
            ("ci gate", .init(success: "--change review/good", notFound: "--change nosuch", badInput: "--change review/bad")),
            ("ci deploy", .init(success: "--rev main", notFound: "--rev nosuch", badInput: "--rev main --pipeline nosuch")),
            ("ci history", .init(success: "", notFound: nil, badInput: "--limit 0", bad: .usage)),
            ("rollback", .init(success: "staging --to HEAD --auto-approve", notFound: "staging --to nosuch --auto-approve", badInput: "nosuch --to HEAD --auto-approve")),
            ("docs", .init(success: "--out '\(world.root)/reference'", notFound: "--out '\(world.root)/nosuch' --check", badInput: "--out /proc/version")),
            ("hook install", .init(success: "'\(world.bare)' \(secret)", notFound: "'\(world.root)/nosuch.git' \(secret)", badInput: "'\(world.bare)' --webhook-secret-file '\(world.root)/nosuch'", bad: .usage)),
            ("hook notify", .init(success: "\(secret) \(nowhere)", notFound: nil, badInput: "--webhook-secret-file '\(world.root)/nosuch'")),
            ("region", .init(success: nil, notFound: "sync nosuch \(nowhere) \(token)", badInput: "sync staging \(token) --wait -1", bad: .usage)),
            ("approve", .init(success: nil, notFound: "--rev nosuch \(nowhere) \(token)", badInput: "--token-file '\(world.root)/nosuch'", bad: .usage)),
            ("serve", .init(success: nil, notFound: "--repo '\(world.root)/nosuch.git' \(token) \(secret) --port 0", badInput: "\(token) --webhook-secret-file '\(world.root)/nosuch' --port 0")),
            ("metadata serve", .init(success: nil, notFound: nil, badInput: "--listen nowhere", bad: .usage)),
        ]
    }

    /// The commands with no success case here, and why: each is covered where it can succeed for real.
    static let withoutSuccess: [String: String] = [
        "region": "needs a running service: ServiceTests drives `region pause|resume|sync --wait` against one",
        "approve": "needs a running service with a deploy waiting: the deploy-approval tests drive it",
        "serve": "runs until stopped: theServicesAnswerOnceWhenUpAndNothingMoreWhenStopped",
        "metadata serve": "runs until stopped: theServicesAnswerOnceWhenUpAndNothingMoreWhenStopped",
    ]

    /// The deployment the cases run in: the bundled manifests in git, a change that passes and one that does not, a
    /// copy with an error, a bare repository, a token and a webhook secret.
    struct World {
        let scratch: Scratch
        let deployment: Scratch
        var root: String { scratch.path }
        var repo: String { deployment.path }
        var broken: String { root + "/broken" }
        var bare: String { root + "/hooks.git" }
        var token: String { root + "/token" }
        var secret: String { root + "/secret" }

        init() throws {
            deployment = try Fixtures.bundledDeployment("json-contract")
            scratch = try Scratch("json-contract-files")
            try FileManager.default.createDirectory(atPath: broken, withIntermediateDirectories: true)
            for top in ManifestLayout.roots { try FileManager.default.copyItem(atPath: repo + "/" + top, toPath: broken + "/" + top) }
            let resources = "manifests/tenants/devops-resources.yaml"
            try Self.edit(broken + "/" + resources) { $0.replacingOccurrences(of: "  flavor: m1.large", with: "  flavr: m1.large") }
            _ = try GitCLI.run(["checkout", "-q", "-b", "review/good"], in: repo)
            try Self.edit(repo + "/regions/staging/region.yaml") { $0 + "\n# reviewed\n" }
            _ = try GitCLI.commitAll(in: repo, message: "a change that passes")
            _ = try GitCLI.run(["checkout", "-q", "-b", "review/bad", "main"], in: repo)
            try Self.edit(repo + "/" + resources) { $0.replacingOccurrences(of: "  flavor: m1.large", with: "  flavr: m1.large") }
            _ = try GitCLI.commitAll(in: repo, message: "a change with a typo")
            _ = try GitCLI.run(["checkout", "-q", "main"], in: repo)
            _ = try GitCLI.run(["init", "-q", "--bare", bare], in: root)
            try "op-token\n".write(toFile: token, atomically: true, encoding: .utf8)
            try "hook-secret\n".write(toFile: secret, atomically: true, encoding: .utf8)
        }

        static func edit(_ path: String, _ change: (String) -> String) throws {
            let text = try String(contentsOfFile: path, encoding: .utf8)
            let changed = change(text)
            #expect(changed != text, "the fixture edit of \(path) changed nothing")
            try changed.write(toFile: path, atomically: true, encoding: .utf8)
        }
    }

    /// Runs `stacklab PATH ARGS --format json` in the deployment and checks the one document against `expect`.
    @discardableResult
    static func check(_ path: String, _ arguments: String, _ expect: Expect, in world: World) throws -> [String: Any]? {
        let out = world.root + "/stdout"
        let line = "\(path) \(arguments) --format json"
        let result = try Command.run(["bash", "-c", "cd '\(world.repo)' && '\(StackLabBinary.path)' \(line) > '\(out)' < /dev/null"])
        let stdout = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
        guard let document = (try? JSONSerialization.jsonObject(with: Data(stdout.utf8))) as? [String: Any] else {
            Issue.record("stacklab \(line) (\(expect)): stdout is not one JSON object (exit \(result.status)): \(stdout.prefix(400)) \(result.output.suffix(400))")
            return nil
        }
        let ok = document["ok"] as? Bool
        let diagnostics = document["diagnostics"] as? [[String: Any]]
        #expect(ok != nil && diagnostics != nil, "stacklab \(line): no ok or diagnostics: \(stdout.prefix(400))")
        let errors = (diagnostics ?? []).filter { $0["severity"] as? String == "error" && !(($0["message"] as? String) ?? "").isEmpty }
        switch expect {
        case .ok:
            #expect(ok == true && [0, 2].contains(result.status), "stacklab \(line): exit \(result.status): \(stdout.prefix(600)) \(result.output.suffix(600))")
        case .failed:
            #expect(ok == false && result.status == 1 && !errors.isEmpty, "stacklab \(line): exit \(result.status): \(stdout.prefix(600))")
        case .usage:
            #expect(ok == false && result.status == 64 && !errors.isEmpty, "stacklab \(line): exit \(result.status): \(stdout.prefix(600))")
        }
        return document
    }

    @Test func everyCommandAnswersInOneDocumentOnEveryPath() throws {
        let world = try World()
        let table = Self.cases(world)
        let commands = ReferenceDocs.leaves()
        #expect(Set(commands) == Set(table.map(\.path)), "commands without cases: \(Set(commands).subtracting(table.map(\.path))); cases of no command: \(Set(table.map(\.path)).subtracting(commands))")
        #expect(Set(table.filter { $0.cases.success == nil }.map(\.path)) == Set(Self.withoutSuccess.keys))
        var paths = 0
        for (path, cases) in table {
            try Self.check(path, "--no-such-option", .usage, in: world)
            paths += 1
            if let success = cases.success { try Self.check(path, success, .ok, in: world); paths += 1 }
            if let notFound = cases.notFound { try Self.check(path, notFound, .failed, in: world); paths += 1 }
            if let bad = cases.badInput { try Self.check(path, bad, cases.bad, in: world); paths += 1 }
        }
        #expect(paths >= 80, "\(commands.count) commands, \(paths) paths")
    }

    /// `serve` and `metadata serve` print one document once they listen (where, and where their state is), log on
    /// standard error, and print nothing more when SIGTERM stops them.
    @Test func theServicesAnswerOnceWhenUpAndNothingMoreWhenStopped() throws {
        let world = try World()
        let metadataRoot = try Scratch("metadata-root")
        let servePort = try LoopbackSSHD.freePort(), metadataPort = try LoopbackSSHD.freePort()
        let services: [(name: String, arguments: String, port: UInt16, expect: [String: String])] = [
            ("serve", "serve --repo '\(world.repo)' --state-dir '\(world.root)/serve-state' --port \(servePort) --token-file '\(world.token)' --webhook-secret-file '\(world.secret)'",
             servePort, ["listening": "http://127.0.0.1:\(servePort)", "stateDirectory": "\(world.root)/serve-state"]),
            ("metadata serve", "metadata serve --root '\(metadataRoot.path)' --listen 127.0.0.1:\(metadataPort)", metadataPort, [:]),
        ]
        for service in services {
            let out = world.scratch.file("\(service.port).out"), err = world.scratch.file("\(service.port).err")
            let pid = try Command.start(["bash", "-c", "exec '\(StackLabBinary.path)' \(service.arguments) --format json > '\(out)' 2> '\(err)'"])
            var up = false
            for _ in 0..<200 where !up {
                up = LoopbackSSHD.accepts(address: "127.0.0.1", port: service.port)
                if !up { usleep(50_000) }
            }
            let status = Command.stop(pid)
            let stdout = try String(contentsOfFile: out, encoding: .utf8)
            let log = (try? String(contentsOfFile: err, encoding: .utf8)) ?? ""
            #expect(up, "\(service.name) listened: \(log.suffix(1000))")
            #expect(status == 0, "\(service.name) stops cleanly on SIGTERM: exit \(status), \(log.suffix(1000))")
            let document = try JSONSerialization.jsonObject(with: Data(stdout.utf8)) as? [String: Any]
            #expect(document?["ok"] as? Bool == true && document?["diagnostics"] is [Any], "\(service.name): one document: \(stdout)")
            #expect(document?["listening"] is String, "\(service.name) says where it listens: \(stdout)")
            for (key, value) in service.expect { #expect(document?[key] as? String == value, "\(service.name): \(key) in \(stdout)") }
        }
    }

    @Test func helpIsTheDocumentsTextAndNestedDataIsNeverAString() throws {
        let world = try World()
        let help = try #require(try Self.check("plan", "--help", .ok, in: world))
        #expect((help["help"] as? String)?.contains("USAGE: stacklab plan") == true)
        try Self.check("ci gate", "--change review/good", .ok, in: world)
        let history = try #require(try Self.check("ci history", "", .ok, in: world))
        let runs = try #require(history["runs"] as? [[String: Any]])
        #expect(!runs.isEmpty && runs.allSatisfy { $0["steps"] is [Any] }, "steps are JSON, not JSON in a string: \(runs)")
    }
}
