import ArgumentParser
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Service

/// What the commands that talk to a running service share.
struct ServiceClientOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The service's URL.", valueName: "url"))
    var url: String = "http://127.0.0.1:8480"

    @Option(name: .long, help: ArgumentHelp("File holding the bearer token.", valueName: "file"))
    var tokenFile: String

    /// POSTs to `path` with the token; the response body, or a failure.
    func post(_ path: String) throws -> String {
        guard let token = try? String(contentsOfFile: tokenFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines) else {
            throw fail("cannot read the token from \(tokenFile)")
        }
        guard let target = URL(string: url + path) else { throw fail("bad URL \(url)") }
        var request = URLRequest(url: target, timeoutInterval: 10)
        request.httpMethod = "POST"
        request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        let (status, body) = try HTTPCall.send(request)
        guard status == 200 else { throw fail("the service answered \(status): \(body)") }
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

    func run() throws {
        Terminal.standardOutput.write(try client.post("/api/regions/\(region)/\(action.rawValue)"))
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
        Terminal.standardOutput.write(try client.post("/api/deploy/approve?" + (query.percentEncodedQuery ?? "")))
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
        Terminal.standardOutput.write("installed \(path)\n")
    }
}

/// `stacklab hook notify` (run by the hook): each updated ref on standard input, POSTed signed to /hooks/git.
struct HookNotify: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "notify", abstract: "Announce pushed refs (post-receive input) to the service.")

    @Option(name: .long, help: ArgumentHelp("The service's URL.", valueName: "url"))
    var url: String = "http://127.0.0.1:8480"

    @Option(name: .long, help: ArgumentHelp("File holding the webhook secret.", valueName: "file"))
    var webhookSecretFile: String

    func run() throws {
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
            Terminal.standardOutput.write("stacklab: \(parts[2]): \(status) \(answer)")
        }
    }
}
