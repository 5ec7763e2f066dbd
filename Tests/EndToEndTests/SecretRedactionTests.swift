import Foundation
import Postgres
import Processes
import TestSupport
import Testing

/// A PostgreSQL password never reaches output or logs, in any form libpq takes it: in the URL's user part (one host or
/// a primary and its standbys), as a `?password=` parameter, or as a keyword string.
@Suite struct SecretRedactionTests {
    static let secret = "Pw-s3cret-42"

    /// Connection strings in each form, to a loopback port where nothing listens.
    static let forms = [
        "postgres://stacklab:\(secret)@127.0.0.1:1/cloud",
        "postgresql://stacklab:\(secret)@127.0.0.1:1,127.0.0.2:1/cloud?target_session_attrs=read-write",
        "postgres://stacklab@127.0.0.1:1/cloud?sslmode=disable&password=\(secret)",
        "postgresql://stacklab@127.0.0.1:1/cloud?PassWord=\(secret)",
        "host=127.0.0.1 port=1 password='\(secret) x' dbname=cloud",
    ]

    @Test(arguments: [
        ("postgres://u:\(secret)@db:5432/cloud", "postgres://u:***@db:5432/cloud"),
        ("postgresql://u:\(secret)@h1:5432,h2:5433/cloud?target_session_attrs=read-write", "postgresql://u:***@h1:5432,h2:5433/cloud?target_session_attrs=read-write"),
        ("postgres://u@db/cloud?sslmode=require&password=\(secret)&sslpassword=\(secret)", "postgres://u@db/cloud?sslmode=require&password=***&sslpassword=***"),
        ("postgres://u:p%2Fw@x@db/cloud", "postgres://u:***@db/cloud"),
        ("host=db password=\(secret) dbname=cloud", "host=db password=*** dbname=cloud"),
        ("host=db password = '\(secret) \\' x' dbname=cloud", "host=db password=*** dbname=cloud"),
        ("not a connection string \(secret)", "***"),
    ])
    func aConnectionStringIsRedactedByItsStructure(_ given: String, _ shown: String) {
        #expect(PostgresConnection.redacted(given) == shown)
    }

    @Test func noCommandThatTakesADatabasePrintsItsPassword() throws {
        let repo = try Fixtures.deployment()
        let state = try Scratch("redaction-state")
        try "t0ken\n".write(toFile: state.file("token"), atomically: true, encoding: .utf8)
        try "s3\n".write(toFile: state.file("secret"), atomically: true, encoding: .utf8)
        let base = ["--repo", repo.path, "--state-dir", state.path]
        let commands: [[String]] = [
            ["plan"], ["apply", "--auto-approve"], ["drift"], ["bill", "--all"], ["account", "acme", "entries"],
            ["ci", "history"], ["ci", "check", "--rev", "HEAD"],
        ]
        var leaks: [String] = []
        for form in Self.forms {
            for command in commands {
                let result = try StackLabBinary.run(command + base + ["--database", form])
                if result.output.contains(Self.secret) { leaks.append("\(command.joined(separator: " ")) with \(form): \(result.output.suffix(400))") }
                #expect(result.status != 0, "\(command) cannot reach the database: \(result.output.suffix(300))")
            }
            // The same through the environment, and the service (its log) for a few seconds.
            let environment = try Command.run(["env", "STACKLAB_DATABASE=\(form)", StackLabBinary.path, "plan"] + base)
            if environment.output.contains(Self.secret) { leaks.append("plan with $STACKLAB_DATABASE=\(form): \(environment.output.suffix(400))") }
            let log = state.file("serve.log")
            let pid = try Command.start([StackLabBinary.path, "serve", "--repo", repo.path, "--state-dir", state.path, "--port", "0", "--token-file", state.file("token"),
                                         "--webhook-secret-file", state.file("secret"), "--database", form], output: log)
            usleep(2_500_000)
            _ = Command.stop(pid, signal: SIGKILL)
            let logged = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            if logged.contains(Self.secret) { leaks.append("serve with \(form): \(logged.suffix(400))") }
        }
        #expect(leaks.isEmpty, "\(leaks.joined(separator: "\n"))")
    }
}
