import Foundation
import Hummingbird
import HummingbirdTesting
import Prometheus
import Testing
@testable import Service

/// The service's operator surface at the router: nothing about regions or tenants without a credential; the read-only
/// token reads and never changes; the operator token does both; a browser session made by the login form reads, never
/// changes, and ends at logout or when the tokens are reloaded.
@Suite struct OperatorAccessTests {
    static let reads = ["/", "/regions/lab", "/tenants/acme", "/runs", "/api/status", "/metrics"]

    /// Runs `body` against the service's routes over an empty state, with operator token `op-token` and read-only token
    /// `r3ad`.
    static func withRoutes(_ body: @escaping @Sendable (any TestClientProtocol, ServiceConfiguration) async throws -> Void) async throws {
        let configuration = ServiceConfiguration(repository: "/nonexistent", stateDirectory: NSTemporaryDirectory() + "/stacklab-access-\(UUID())",
                                                 token: "op-token", readToken: "r3ad", webhookSecret: "s3cret")
        let server = GitOpsServer(configuration: configuration, host: "127.0.0.1", port: 0, registry: PrometheusCollectorRegistry())
        let state = ServiceState(stateDirectory: configuration.stateDirectory)
        let router = Router(context: ServiceRequestContext.self)
        server.routes(router, state: state)
        state.update("lab") { _ in }
        try await Application(router: router).test(.router) { client in try await body(client, configuration) }
    }

    static func bearer(_ token: String) -> HTTPFields { [.authorization: "Bearer \(token)"] }

    @Test func everyOperatorRouteNeedsACredentialAndHealthzSaysNothingAboutTenants() async throws {
        try await Self.withRoutes { client, _ in
            for path in Self.reads {
                let api = try await client.execute(uri: path, method: .get)
                #expect(api.status == .unauthorized, "\(path) without a token")
                #expect(api.headers[.wwwAuthenticate] == "Bearer realm=\"stacklab\"", "\(path)")
                let browser = try await client.execute(uri: path, method: .get, headers: [.accept: "text/html,application/xhtml+xml"])
                #expect(browser.status == .seeOther && browser.headers[.location]?.hasPrefix("/login?next=/") == true, "\(path): a browser is sent to log in")
                #expect(try await client.execute(uri: path, method: .get, headers: Self.bearer("wrong")).status == .unauthorized, "\(path) with a wrong token")
                #expect(try await client.execute(uri: path, method: .get, headers: Self.bearer("r3ad")).status == .ok, "\(path) with the read-only token")
                #expect(try await client.execute(uri: path, method: .get, headers: Self.bearer("op-token")).status == .ok, "\(path) with the operator token")
            }
            let health = try await client.execute(uri: "/healthz", method: .get)
            #expect(health.status == .ok && String(buffer: health.body) == "ok\n", "open, and it names no region, tenant or instance")
            // Changes: the operator token only.
            for path in ["/api/regions/lab/pause", "/api/regions/lab/resume", "/api/deploy/approve"] {
                #expect(try await client.execute(uri: path, method: .post).status == .unauthorized, "\(path)")
                let reading = try await client.execute(uri: path, method: .post, headers: Self.bearer("r3ad"))
                #expect(reading.status == .forbidden && String(buffer: reading.body).contains("read-only token cannot make changes"), "\(path): reading is not changing")
                let wrong = try await client.execute(uri: path, method: .post, headers: Self.bearer("wrong"))
                #expect(wrong.status == .unauthorized && String(buffer: wrong.body).contains("not one this service accepts")
                        && wrong.headers[.wwwAuthenticate]?.contains("invalid_token") == true, "\(path): a wrong token is told apart from none")
                let none = try await client.execute(uri: path, method: .post)
                #expect(String(buffer: none.body).contains("no token was sent"), "\(path)")
            }
            #expect(try await client.execute(uri: "/api/regions/lab/pause", method: .post, headers: Self.bearer("op-token")).status == .ok)
        }
    }

    @Test func aBrowserSessionReadsButNeverChangesAndEndsAtLogoutOrAReload() async throws {
        try await Self.withRoutes { client, configuration in
            let form: HTTPFields = [.contentType: "application/x-www-form-urlencoded"]
            let wrong = try await client.execute(uri: "/login", method: .post, headers: form, body: ByteBuffer(string: "token=nope&next=%2Fruns"))
            #expect(wrong.status == .unauthorized && String(buffer: wrong.body).contains("id=\"failed\""))
            #expect(wrong.headers[.setCookie] == nil)

            let login = try await client.execute(uri: "/login", method: .post, headers: form, body: ByteBuffer(string: "token=r3ad&next=%2Fruns"))
            #expect(login.status == .seeOther && login.headers[.location] == "/runs")
            let cookie = try #require(login.headers[.setCookie])
            #expect(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && cookie.contains("Path=/"), "\(cookie)")
            let session: HTTPFields = [.cookie: String(cookie.prefix { $0 != ";" })]
            for path in Self.reads {
                #expect(try await client.execute(uri: path, method: .get, headers: session).status == .ok, "\(path) in a session")
            }
            // A cookie never makes a change, even one from the operator token (no cross-site request can make one).
            let operatorLogin = try await client.execute(uri: "/login", method: .post, headers: form, body: ByteBuffer(string: "token=op-token"))
            let operatorCookie: HTTPFields = [.cookie: String(try #require(operatorLogin.headers[.setCookie]).prefix { $0 != ";" })]
            #expect(try await client.execute(uri: "/api/regions/lab/pause", method: .post, headers: operatorCookie).status == .unauthorized)

            // Only local paths to return to: never another host.
            for next in ["https%3A%2F%2Fevil.example%2F", "%2F%2Fevil.example%2F", "%2F%5Cevil.example"] {
                let away = try await client.execute(uri: "/login", method: .post, headers: form, body: ByteBuffer(string: "token=r3ad&next=\(next)"))
                #expect(away.headers[.location] == "/", "next=\(next)")
            }

            let logout = try await client.execute(uri: "/logout", method: .post, headers: session)
            #expect(logout.status == .seeOther)
            #expect(try await client.execute(uri: "/api/status", method: .get, headers: session).status == .unauthorized, "logged out")

            // Reloading the tokens (SIGHUP) ends every session made under the old ones.
            #expect(try await client.execute(uri: "/api/status", method: .get, headers: operatorCookie).status == .ok)
            configuration.secrets.replace(token: "op-token-2", readToken: "r3ad", webhookSecret: "s3cret")
            #expect(try await client.execute(uri: "/api/status", method: .get, headers: operatorCookie).status == .unauthorized)
            #expect(try await client.execute(uri: "/api/status", method: .get, headers: Self.bearer("op-token")).status == .unauthorized)
            #expect(try await client.execute(uri: "/api/status", method: .get, headers: Self.bearer("op-token-2")).status == .ok)
        }
    }

    @Test func aClientGetsAtMostItsShareOfPagesAtOnce() async throws {
        let router = Router(context: ServiceRequestContext.self)
        final class Gate: @unchecked Sendable { let lock = NSLock(); var waiting = 0; var released = false }
        let gate = Gate()
        router.group().add(middleware: ClientLimit<ServiceRequestContext>(limit: 2)).get("/slow") { _, _ in
            gate.lock.withLock { gate.waiting += 1 }
            while !gate.lock.withLock({ gate.released }) { try await Task.sleep(for: .milliseconds(5)) }
            return "done"
        }
        try await Application(router: router).test(.router) { client in
            try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                for _ in 0..<2 { group.addTask { try await client.execute(uri: "/slow", method: .get).status } }
                while gate.lock.withLock({ gate.waiting }) < 2 { try await Task.sleep(for: .milliseconds(10)) }
                // Two in flight: a third from the same client is refused at once.
                let third = try await client.execute(uri: "/slow", method: .get)
                #expect(third.status == .tooManyRequests && third.headers[.retryAfter] == "1")
                gate.lock.withLock { gate.released = true }
                var statuses: [HTTPResponse.Status] = []
                for try await status in group { statuses.append(status) }
                #expect(statuses == [.ok, .ok])
            }
            // Once they are done, the client may ask again.
            #expect(try await client.execute(uri: "/slow", method: .get).status == .ok)
        }
    }

    @Test func tokensAreComparedWholeAndNeverEmpty() {
        #expect(OperatorAccess.same("abc", "abc"))
        #expect(!OperatorAccess.same("abc", "abd"))
        #expect(!OperatorAccess.same("ab", "abc"))
        #expect(!OperatorAccess.same("", ""), "an empty expected token matches nothing")
    }
}
