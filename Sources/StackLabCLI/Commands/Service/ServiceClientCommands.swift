import ArgumentParser
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Manifests
import Service

/// What the commands that talk to a running service share.
struct ServiceClientOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The service's URL.", valueName: "url"))
    var url: String = "http://127.0.0.1:8480"

    @Option(name: .long, help: ArgumentHelp("File holding the bearer token.", valueName: "file"))
    var tokenFile: String

    @OptionGroup var output: OutputOptions

    func validate() throws {
        guard FileManager.default.isReadableFile(atPath: tokenFile) else {
            throw ValidationError("--token-file \(tokenFile): no readable file there; it holds the service's operator token (serve --token-file)")
        }
    }

    /// POSTs to `path` with the token; the response body, or a failure.
    func post(_ path: String) throws -> String { try call("POST", path) }

    /// GETs `path` with the token; the response body, or a failure.
    func get(_ path: String) throws -> String { try call("GET", path) }

    private func call(_ method: String, _ path: String) throws -> String {
        guard let token = try? String(contentsOfFile: tokenFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines) else {
            throw fail("cannot read the token from \(tokenFile)")
        }
        guard let target = URL(string: url + path) else { throw fail("bad URL \(url)") }
        var request = URLRequest(url: target, timeoutInterval: 10)
        request.httpMethod = method
        request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        let (status, body) = try HTTPCall.send(request)
        guard status == 200 else { throw fail("the service answered \(status): \(body.trimmingCharacters(in: .whitespacesAndNewlines))") }
        return body
    }
}

/// A blocking HTTP call (completion handler), for short command-line requests.
public enum HTTPCall {
    /// The status and body; a failure to connect throws after saying so on standard error.
    public static func send(_ request: URLRequest) throws -> (Int, String) {
        do {
            return try quietly(request)
        } catch let failure as Unreachable {
            throw fail("cannot reach \(request.url?.absoluteString ?? "the service"): \(failure.message)")
        }
    }

    public struct Unreachable: Error { public var message: String }

    /// The status and body; a failure to connect throws `Unreachable`, saying nothing.
    public static func quietly(_ request: URLRequest) throws -> (Int, String) {
        final class Box: @unchecked Sendable { var result: (Int, String)?; var error: (any Error)? }
        let box = Box()
        let done = DispatchSemaphore(value: 0)
        URLSession.shared.dataTask(with: request) { data, response, error in
            if let error { box.error = error } else { box.result = ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data ?? Data(), as: UTF8.self)) }
            done.signal()
        }.resume()
        done.wait()
        if let error = box.error { throw Unreachable(message: error.localizedDescription) }
        return box.result!
    }
}

/// `stacklab sync|pause|resume REGION`.
struct RegionControlCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "region",
        abstract: "Ask the running service to sync a region now, or to pause or resume it.",
        discussion: """
            Examples:
              stacklab region sync sina --token-file /etc/stacklab/token
              stacklab region pause intel --url http://127.0.0.1:8480 --token-file token
            """)

    enum Action: String, ExpressibleByArgument, CaseIterable { case sync, pause, resume }

    @Argument(help: "sync, pause or resume.")
    var action: Action

    @Argument(help: "The region.")
    var region: String

    @OptionGroup var client: ServiceClientOptions

    @Option(help: ArgumentHelp("With sync or resume: wait up to this many seconds for the run it starts to end, and say how it ended (exit 1 if it failed).",
                               valueName: "seconds"))
    var wait: Double?

    func validate() throws {
        if wait != nil && action == .pause { throw ValidationError("--wait goes with sync or resume: a pause starts no run") }
        if let wait, wait <= 0 { throw ValidationError("--wait takes a number of seconds above 0, not \(wait)") }
    }

    func run() throws {
        let body = try client.post("/api/regions/\(region)/\(action.rawValue)")
        guard var outcome = try? JSONDecoder().decode(ServiceState.RegionRequest.self, from: Data(body.utf8)) else {
            throw fail("the service answered something other than a region request: \(body.prefix(200))")
        }
        if let wait {
            outcome.state = try waitForRun(after: outcome.requestedAt, seconds: wait)
            outcome.waited = true
        }
        let failed = outcome.waited == true && outcome.state?.lastResult != "converged"
        if client.output.format == .json {
            Terminal.standardOutput.write(try JSON.encode(outcome))
        } else {
            Terminal.standardOutput.write(Self.describe(outcome) + "\n")
        }
        if failed { throw ExitCode(1) }
    }

    /// Polls the status until a run of the region that started after `time` has ended.
    private func waitForRun(after time: Double, seconds: Double) throws -> ServiceState.Region? {
        struct Status: Decodable { var regions: [ServiceState.Region] }
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            let status = try JSONDecoder().decode(Status.self, from: Data(try client.get("/api/status?region=\(region)").utf8))
            let now = status.regions.first { $0.region == region }
            if let now, !now.running, let finished = now.lastRunAt, finished >= time { return now }
            if Date() > deadline {
                throw fail("region \(region): no run that started after the request has ended within \(seconds) s (it may still be queued or running); see 'stacklab region' without --wait, or the dashboard")
            }
            usleep(200_000)
        }
    }

    /// One line for a person.
    static func describe(_ outcome: ServiceState.RegionRequest) -> String {
        let region = outcome.region
        let state = outcome.state
        let revision = state?.appliedRevision.map { String($0.prefix(12)) } ?? "nothing yet"
        if outcome.waited == true, let state {
            let took = state.lastRunSeconds.map { String(format: " in %.1f s", $0) } ?? ""
            if state.lastResult == "converged" {
                return "\(region): converged at \(revision)\(took)\(state.drift > 0 ? ", healing \(state.drift.counted("drifted object"))" : "")"
            }
            return "\(region): \(state.lastResult ?? "not run")\(took): \(state.lastError ?? "no error recorded")"
        }
        switch outcome.action {
        case "pause": return "paused \(region): the service leaves it as it is (at \(revision)) until 'stacklab region resume \(region)'"
        default:
            return "asked the service to \(outcome.action) \(region); it runs next (it was at \(revision)\(state?.running == true ? ", running now" : "")); --wait SECONDS waits for the run to end"
        }
    }
}

/// `stacklab approve`: lets a deploy waiting at an `approve` step go on.
struct ApproveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "approve",
        abstract: "Approve the deploy the running service holds at an approve step, so the rollout goes on.",
        discussion: """
            A push-triggered pipeline with an `approve` step (for example [{apply: {region: staging}}, approve, \
            {apply: {region: sina}}]) stops there: the regions before it run the new revision, the ones after it keep \
            theirs, and the dashboard and /api/status show the step waiting. This approves it; the step's message keeps \
            who did. Without --rev, the deploy waiting is approved.

            Examples:
              stacklab approve --token-file /etc/stacklab/token
              stacklab approve --rev 3f2a9c1 --by sina --url http://127.0.0.1:8480 --token-file token
            """)

    @Option(help: ArgumentHelp("The revision (or a prefix of it) whose deploy to approve.", valueName: "rev"))
    var rev: String?

    @Option(help: ArgumentHelp("Who approves (default: $USER).", valueName: "name"))
    var by: String?

    @OptionGroup var client: ServiceClientOptions

    func run() throws {
        var query = URLComponents()
        query.queryItems = [URLQueryItem(name: "by", value: by ?? ProcessEnvironment.values["USER"] ?? "an operator")]
            + (rev.map { [URLQueryItem(name: "revision", value: $0)] } ?? [])
        let answer = try client.post("/api/deploy/approve?" + (query.percentEncodedQuery ?? "")).trimmingCharacters(in: .whitespacesAndNewlines)
        Terminal.standardOutput.write(client.output.format == .json ? try JSON.encode(["approved": answer]) : answer + "\n")
    }
}

/// `stacklab hook install|notify`.
struct HookCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hook",
        abstract: "Make a bare repository announce its pushes to the service.",
        subcommands: [HookInstall.self, HookNotify.self])
}

/// `stacklab hook install BARE_REPO`.
struct HookInstall: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "install",
        abstract: "Install a post-receive hook in a bare repository that notifies the service of each push (signed).")

    @Argument(help: "The bare repository.")
    var repository: String

    @Option(name: .long, help: ArgumentHelp("The service's URL.", valueName: "url"))
    var url: String = "http://127.0.0.1:8480"

    @Option(name: .long, help: ArgumentHelp("File holding the webhook secret.", valueName: "file"))
    var webhookSecretFile: String

    @OptionGroup var output: OutputOptions

    func validate() throws {
        // The hook reads the secret at every push: a file missing now would only show as a failed push later.
        guard let secret = try? String(contentsOfFile: webhookSecretFile, encoding: .utf8), !secret.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw ValidationError("--webhook-secret-file \(webhookSecretFile): no readable, non-empty file there; write the secret the service was given (serve --webhook-secret-file) first")
        }
    }

    func run() throws {
        let hooks = (repository as NSString).appendingPathComponent("hooks")
        guard FileManager.default.fileExists(atPath: (repository as NSString).appendingPathComponent("objects")) else {
            throw fail("\(repository) is not a bare git repository (no objects/ directory)")
        }
        try FileManager.default.createDirectory(atPath: hooks, withIntermediateDirectories: true)
        let binary = SelfPath.current
        func quote(_ text: String) -> String { "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'" }
        let script = """
            #!/bin/sh
            # Installed by stacklab hook install: tells the StackLab service about each push (refs on standard input).
            exec \(quote(binary)) hook notify --url \(quote(url)) --webhook-secret-file \(quote(URL(fileURLWithPath: webhookSecretFile).standardizedFileURL.path))

            """
        let path = (hooks as NSString).appendingPathComponent("post-receive")
        try script.write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o755)
        Terminal.standardOutput.write(output.format == .json ? try JSON.encode(["installed": path]) : "installed \(path)\n")
    }
}

/// `stacklab hook notify` (run by the hook): each updated ref on standard input, POSTed signed to /hooks/git.
struct HookNotify: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "notify", abstract: "Announce pushed refs (post-receive input) to the service.")

    @Option(name: .long, help: ArgumentHelp("The service's URL.", valueName: "url"))
    var url: String = "http://127.0.0.1:8480"

    @Option(name: .long, help: ArgumentHelp("File holding the webhook secret.", valueName: "file"))
    var webhookSecretFile: String

    @OptionGroup var output: OutputOptions

    func run() throws {
        struct Notified: Encodable { var ref: String; var status: Int; var answer: String }
        var notified: [Notified] = []
        guard let secret = try? String(contentsOfFile: webhookSecretFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines) else {
            throw fail("cannot read the webhook secret from \(webhookSecretFile)")
        }
        while let line = readLine() {
            let parts = line.split(separator: " ")
            guard parts.count == 3 else { continue }
            let body = Array(try JSONSerialization.data(withJSONObject: ["before": String(parts[0]), "after": String(parts[1]), "ref": String(parts[2])]))
            guard let target = URL(string: url + "/hooks/git") else { throw fail("bad URL \(url)") }
            var request = URLRequest(url: target, timeoutInterval: 10)
            request.httpMethod = "POST"
            request.httpBody = Data(body)
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            request.setValue(Webhooks.signature(body, secret: secret), forHTTPHeaderField: "X-Hub-Signature-256")
            request.setValue(UUID().uuidString, forHTTPHeaderField: "X-StackLab-Delivery")
            let (status, answer) = try HTTPCall.send(request)
            notified.append(Notified(ref: String(parts[2]), status: status, answer: answer.trimmingCharacters(in: .whitespacesAndNewlines)))
            if output.format != .json { Terminal.standardOutput.write("stacklab: \(parts[2]): \(status) \(answer)") }
        }
        if output.format == .json { Terminal.standardOutput.write(try JSON.encode(["notified": notified])) }
    }
}
