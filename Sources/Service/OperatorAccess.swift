import Crypto
import Foundation
import Hummingbird

/// Who may read the service's operator surface (the dashboard, `/api/status`, `/metrics`) and who may change it (sync,
/// pause, resume, approve). Everything but `/healthz`, `/login` and the signed webhook needs a credential:
/// - `Authorization: Bearer TOKEN`, with the operator token (read and change) or the read-only token (read), for
///   scripts, `stacklab` itself and Prometheus (`authorization: {credentials_file: …}`);
/// - a browser session: `POST /login` with either token sets an HttpOnly, SameSite=Strict cookie that grants reading.
///   Changes are never made on a cookie alone (no cross-site request can make one).
/// Tokens are compared in constant time; reloading them (SIGHUP) ends every session.
public final class OperatorAccess: @unchecked Sendable {  // mutable state behind `lock`
    /// What a credential lets its holder do.
    public enum Grant: Sendable, Comparable {
        case read, operate
    }

    /// The session cookie's name.
    public static let cookie = "stacklab_session"
    /// How long a browser session lasts.
    public static let sessionLifetime: TimeInterval = 12 * 3600
    /// Sessions kept at most (the oldest go first): a flood of logins cannot grow memory without bound.
    static let sessionLimit = 1024

    private let secrets: ServiceSecrets
    private let lock = NSLock()
    private var sessions: [String: (grant: Grant, expires: Date, generation: Int)] = [:]

    public init(secrets: ServiceSecrets) {
        self.secrets = secrets
    }

    /// What a presented token grants: the operator token operates, the read-only token reads, anything else nothing.
    public func grant(token: String) -> Grant? {
        let (operatorToken, readToken) = (secrets.token, secrets.readToken)
        if Self.same(token, operatorToken) { return .operate }
        if let readToken, Self.same(token, readToken) { return .read }
        return nil
    }

    /// What a request's bearer token grants (nil without one, or with a wrong one).
    public func grant(bearer request: Request) -> Grant? {
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer ") else { return nil }
        return grant(token: String(header.dropFirst("Bearer ".count)).trimmingCharacters(in: .whitespaces))
    }

    /// What a request may do: its bearer token's grant, else its session's (reading only).
    public func grant(_ request: Request) -> Grant? {
        if let bearer = grant(bearer: request) { return bearer }
        guard let id = request.cookies[Self.cookie]?.value else { return nil }
        return session(id).map { _ in .read }
    }

    /// Starts a browser session for a holder of `token`; nil when the token grants nothing.
    public func login(token: String) -> (id: String, grant: Grant)? {
        guard let grant = grant(token: token) else { return nil }
        var bytes = SystemRandomNumberGenerator()
        let id = (0..<4).map { _ in String(bytes.next() as UInt64, radix: 16) }.map { String(repeating: "0", count: 16 - $0.count) + $0 }.joined()
        let generation = secrets.generation
        lock.withLock {
            let now = Date()
            sessions = sessions.filter { $0.value.expires > now && $0.value.generation == generation }
            while sessions.count >= Self.sessionLimit, let oldest = sessions.min(by: { $0.value.expires < $1.value.expires })?.key {
                sessions[oldest] = nil
            }
            sessions[id] = (grant, now.addingTimeInterval(Self.sessionLifetime), generation)
        }
        return (id, grant)
    }

    /// Ends a session.
    public func logout(_ id: String) {
        _ = lock.withLock { sessions.removeValue(forKey: id) }
    }

    /// The grant of a live session made under the current tokens.
    func session(_ id: String) -> Grant? {
        let generation = secrets.generation
        return lock.withLock {
            guard let session = sessions[id] else { return nil }
            guard session.expires > Date(), session.generation == generation else {
                sessions[id] = nil
                return nil
            }
            return session.grant
        }
    }

    /// Whether two secrets are equal, in time that depends only on their lengths (compared as SHA-256 digests, so
    /// not even the length of the expected one leaks).
    static func same(_ given: String, _ expected: String) -> Bool {
        let a = SHA256.hash(data: Data(given.utf8)), b = SHA256.hash(data: Data(expected.utf8))
        var difference: UInt8 = 0
        for (x, y) in zip(a, b) { difference |= x ^ y }
        return difference == 0 && !expected.isEmpty
    }
}

/// Lets a request through to the operator routes only with a grant of at least `needed`; otherwise a browser asking
/// for a page is sent to the login form and anything else gets 401 with a `WWW-Authenticate` challenge.
struct RequireGrant<Context: RequestContext>: RouterMiddleware {
    let access: OperatorAccess
    let needed: OperatorAccess.Grant

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if let grant = access.grant(request), grant >= needed { return try await next(request, context) }
        if needed == .read, request.method == .get, request.headers[.accept]?.contains("text/html") == true {
            var headers = HTTPFields()
            headers[.location] = "/login?next=" + (request.uri.path.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(.init(charactersIn: "/-_."))) ?? "/")
            return Response(status: .seeOther, headers: headers)
        }
        var headers = HTTPFields()
        headers[.contentType] = "text/plain; charset=utf-8"
        // Say which of the three it is: no token, a token this service does not accept, or one that may read only.
        let sent = request.headers[.authorization] != nil
        if sent, access.grant(bearer: request) == .read {
            return Response(status: .forbidden, headers: headers,
                            body: .init(byteBuffer: ByteBuffer(string: "the read-only token cannot make changes: send the operator token (Authorization: Bearer TOKEN)\n")))
        }
        headers[.wwwAuthenticate] = sent ? "Bearer realm=\"stacklab\", error=\"invalid_token\"" : "Bearer realm=\"stacklab\""
        let wanted = needed == .operate ? "the operator token" : "the operator or read-only token (or log in at /login)"
        let message = sent ? "the token sent is not one this service accepts (wrong, or replaced since): send \(wanted) as Authorization: Bearer TOKEN\n"
                           : "no token was sent: send \(wanted) as Authorization: Bearer TOKEN\n"
        return Response(status: .unauthorized, headers: headers, body: .init(byteBuffer: ByteBuffer(string: message)))
    }
}
