import ArgumentParser
import Foundation
import Metrics
import Prometheus
import Service

/// `stacklab serve`: the long-running GitOps service.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the GitOps service: follow a branch, converge every region, heal drift; status, metrics, webhooks and a dashboard over HTTP.",
        discussion: """
            The service looks at BRANCH of the repository every --poll seconds and at once when a push is announced \
            (POST /hooks/git, signed with HMAC-SHA256 under the webhook secret; `stacklab hook install` makes a bare \
            repository announce its pushes). Each region whose revision is not applied is converged; every region is \
            resynced each --resync seconds, so a domain deleted behind StackLab's back comes back. A region whose \
            failure may pass (a node or store away, a lease held elsewhere) backs off exponentially (up to 5 minutes) \
            without stalling the others; one that cannot pass by waiting (a guard refuses the plan, the manifests \
            cannot be planned) is stopped at that revision until a new revision or a sync. SIGTERM or SIGINT: the \
            region in flight finishes, then the service stops.

            When ci/ has a pipeline triggered by a push to BRANCH (ci/deploy.yaml), each new revision is rolled out by \
            it, halting at the first failed step: a region an apply step names converges to the revision last \
            released to it (a region not reached yet, or whose step failed, keeps its old one); the others follow \
            the branch. An approve step holds the rollout until `stacklab approve`. `stacklab ci history` shows the \
            rollout; `stacklab ci deploy --rev OLD` rolls back.

            HTTP (binds 127.0.0.1 by default). Every route but GET /healthz, the login form and the signed webhook \
            (POST /hooks/git) needs a credential. Reading — GET /api/status (JSON), GET /metrics (Prometheus), \
            GET / (dashboard: /regions/NAME, /tenants/NAME, /runs) — takes Authorization: Bearer TOKEN with the \
            operator token or the read-only token (--read-token-file; give it to Prometheus as credentials_file), or a \
            browser session (POST /login with either token sets an HttpOnly, SameSite=Strict cookie for 12 hours). \
            Changes — POST /api/regions/NAME/sync|pause|resume and POST /api/deploy/approve — take the operator \
            token as a bearer token only (what `stacklab region sync|pause|resume` and `stacklab approve` send).

            Example:
              stacklab serve --repo /srv/git/cloud.git --token-file /etc/stacklab/token --webhook-secret-file /etc/stacklab/hook-secret
            """)

    @Option(name: .long, help: ArgumentHelp("The manifests repository (a bare repository that receives pushes, or a clone).", valueName: "dir"))
    var repo: String = "."

    @Option(name: .long, help: ArgumentHelp("Follow this remote repository instead (any URL libgit2 fetches: a path, file://, ssh://, https://); the service keeps a mirror under its state directory.", valueName: "url"))
    var remote: String?

    @Option(name: .long, help: ArgumentHelp("The branch to follow.", valueName: "branch"))
    var branch: String = "main"

    @Option(help: "Address to bind.")
    var host: String = "127.0.0.1"

    @Option(help: "Port (0: any free one; the one chosen is printed).")
    var port: Int = 8480

    @Option(name: .long, help: ArgumentHelp("File holding the operator's bearer token (every route).", valueName: "file"))
    var tokenFile: String

    @Option(name: .long, help: ArgumentHelp("File holding a read-only token: the dashboard, /api/status and /metrics, no changes (for Prometheus and viewers).", valueName: "file"))
    var readTokenFile: String?

    @Option(name: .long, help: ArgumentHelp("File holding the webhook secret.", valueName: "file"))
    var webhookSecretFile: String

    @Option(help: "Seconds between looks at the branch.")
    var poll: Double = 5

    @Option(help: "Seconds between resyncs of an unchanged region (drift is healed then).")
    var resync: Double = 60

    @Option(help: "Seconds between reads of the running instances' CPU, disk and network counters for /metrics (0: never); a read waits while a region is being reconciled.")
    var usageInterval: Double = 15

    @Option(help: ArgumentHelp("The Prometheus that scrapes this service (see stacklab monitoring config): instance pages draw their graphs from its query_range.", valueName: "url"))
    var prometheus: String?

    @Option(name: .long, help: ArgumentHelp("Keep in memory the node observations, ring builders and converged plans of this many regions, those planned most recently (0: every region). Another region's are read again when it is planned: a simulated node's saved observation, its rings from the state store (at 100 nodes and 1,000 instances a region holds about 3 MB of them).", valueName: "n"))
    var cacheRegions = ServiceConfiguration.defaultCacheRegions

    @Option(name: .long, help: ArgumentHelp("SSH private key for production nodes.", valueName: "file"))
    var identity: String?

    @OptionGroup var global: GlobalOptions

    @OptionGroup var output: OutputOptions

    func validate() throws {
        try ReconcileOptions.validateIdentity(identity)
        guard cacheRegions >= 0 else { throw ValidationError("--cache-regions must be 0 (every region) or more, not \(cacheRegions)") }
        if let prometheus, !(prometheus.hasPrefix("http://") || prometheus.hasPrefix("https://")) || URL(string: prometheus) == nil {
            throw ValidationError("--prometheus must be an http(s) URL, e.g. http://127.0.0.1:9090")
        }
    }

    func run() async throws {
        @Sendable func secret(_ path: String, _ what: String) throws -> String {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8), !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
                throw fail("cannot read the \(what) from \(path) (a file with one line)")
            }
            return text.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        if remote == nil {
            let isGit = ["objects", ".git"].contains { FileManager.default.fileExists(atPath: (repo as NSString).appendingPathComponent($0)) }
            guard isGit else {
                throw failure("\(repo) is not a git repository (no objects/ or .git): the service follows a branch of one",
                              hint: "pass --repo with the bare repository that receives pushes (or a clone), or --remote URL")
            }
        }
        let directory = global.stateDirectory(repo: repo)
        var configuration = ServiceConfiguration(repository: remote == nil ? repo : "\(directory)/mirror.git", stateDirectory: directory,
                                                 token: try secret(tokenFile, "token"), readToken: try readTokenFile.map { try secret($0, "read-only token") },
                                                 webhookSecret: try secret(webhookSecretFile, "webhook secret"))
        guard configuration.secrets.readToken != configuration.secrets.token else {
            throw fail("the read-only token is the operator token: give it a token of its own")
        }
        configuration.remote = remote
        configuration.branch = branch
        configuration.pollInterval = poll
        configuration.resyncInterval = resync
        configuration.usageInterval = usageInterval
        configuration.prometheus = prometheus
        configuration.cacheRegions = cacheRegions > 0 ? cacheRegions : nil
        configuration.sshIdentity = identity
        configuration.environment = ProcessEnvironment.run
        configuration.store = try global.location(repo: repo, role: "serve")
        // SIGHUP reloads the tokens and the webhook secret from their files (a file that cannot be read keeps the old);
        // browser sessions end then.
        signal(SIGHUP, SIG_IGN)
        let reload = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
        let secrets = configuration.secrets
        let (tokenFile, readTokenFile, secretFile) = (self.tokenFile, self.readTokenFile, webhookSecretFile)
        reload.setEventHandler {
            do {
                secrets.replace(token: try secret(tokenFile, "token"), readToken: try readTokenFile.map { try secret($0, "read-only token") },
                                webhookSecret: try secret(secretFile, "webhook secret"))
                Terminal.standardError.write("reloaded the tokens and the webhook secret\n")
            } catch {
                Terminal.standardError.write("SIGHUP: kept the old secrets: \(error)\n")
            }
        }
        reload.resume()
        defer { reload.cancel() }
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        let host = self.host
        let json = output.format == .json
        let store = "\(configuration.store)"
        try await GitOpsServer(configuration: configuration, host: host, port: port, registry: registry).run { port in
            if json {
                // A service's one document is its start: where it listens and keeps its state; it logs on standard error.
                Terminal.standardOutput.write(try! JSON.encode(["listening": "http://\(host):\(port)", "stateDirectory": directory, "store": store]))
                Answer.shared.finish(exitCode: 0)
            } else {
                Terminal.standardOutput.write("listening on http://\(host):\(port)\nstate in \(directory) (\(store))\n")
            }
        }
    }
}
