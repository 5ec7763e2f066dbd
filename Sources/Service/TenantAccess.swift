import Crypto
import Foundation
import Hummingbird
import Manifests

/// Who is logged in to the tenant console (`/console/`), apart from the operator's login. A tenant's tokens are
/// declared in the manifests as their SHA-256 only (`Tenant.spec.console.tokens`): a login posts the tenant's name and
/// a token, whose digest is compared in constant time with each of the tenant's; a session is an HttpOnly,
/// SameSite=Strict cookie naming a random id, and lasts until it expires, the tenant logs out, or the token's line
/// leaves the manifests the service runs (checked on every request). Failed logins are counted per source address:
/// past `failuresAllowed` in `failureWindow` seconds, that address is refused until the window has passed. Tokens
/// never appear in a URL or a log.
public final class TenantAccess: @unchecked Sendable {  // mutable state behind `lock`
    /// The console's session cookie (not the operator's).
    public static let cookie = "stacklab_console"
    /// How long a console session lasts.
    public static let sessionLifetime: TimeInterval = 8 * 3600
    /// Sessions kept at most (the oldest go first).
    static let sessionLimit = 4096
    /// Failed logins one source address may make within `failureWindow` seconds.
    public static let failuresAllowed = 5
    public static let failureWindow: TimeInterval = 60

    /// Each tenant's token digests, from the manifests the service runs now.
    private let digests: @Sendable () -> [String: [String]]
    private let lock = NSLock()
    private var sessions: [String: (tenant: String, digest: String, expires: Date)] = [:]
    private var failures: [String: [Date]] = [:]

    public init(digests: @escaping @Sendable () -> [String: [String]]) {
        self.digests = digests
    }

    /// A new token: `slt_` and 32 random bytes in base64url.
    public static func mint() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return "slt_" + Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// A token's SHA-256, as the manifests hold it (64 lower-case hexadecimal digits).
    public static func digest(_ token: String) -> String {
        SHA256.hash(data: Data(token.utf8)).hexDigits
    }

    public enum Login: Sendable, Equatable {
        case session(id: String, tenant: String)
        case refused
        /// Too many failures from this address lately: try again after the window.
        case limited
    }

    /// Logs `tenant` in with `token`, from `source` (the client's address).
    public func login(tenant: String, token: String, from source: String, now: Date = Date()) -> Login {
        let recent = lock.withLock { () -> Int in
            failures[source] = (failures[source] ?? []).filter { now.timeIntervalSince($0) < Self.failureWindow }
            return failures[source]?.count ?? 0
        }
        guard recent < Self.failuresAllowed else { return .limited }
        let presented = Self.digest(token)
        var match = false
        // Every digest of the tenant is compared in full, whichever matches.
        for digest in digests()[tenant] ?? [] where Self.same(digest, presented) { match = true }
        guard match else {
            lock.withLock {
                failures[source, default: []].append(now)
                if failures.count > Self.sessionLimit { failures = failures.filter { now.timeIntervalSince($0.value.last ?? now) < Self.failureWindow } }
            }
            return .refused
        }
        var generator = SystemRandomNumberGenerator()
        let id = (0..<4).map { _ in String(generator.next() as UInt64, radix: 16) }.map { String(repeating: "0", count: 16 - $0.count) + $0 }.joined()
        lock.withLock {
            sessions = sessions.filter { $0.value.expires > now }
            if sessions.count >= Self.sessionLimit, let oldest = sessions.min(by: { $0.value.expires < $1.value.expires })?.key { sessions[oldest] = nil }
            sessions[id] = (tenant, presented, now.addingTimeInterval(Self.sessionLifetime))
        }
        return .session(id: id, tenant: tenant)
    }

    /// The tenant a request's console session is for; nil without one, when it expired, or when its token's line left
    /// the manifests.
    public func tenant(_ request: Request, now: Date = Date()) -> String? {
        guard let id = request.cookies[Self.cookie]?.value else { return nil }
        return tenant(session: id, now: now)
    }

    public func tenant(session id: String, now: Date = Date()) -> String? {
        guard let session = lock.withLock({ sessions[id] }) else { return nil }
        guard session.expires > now, (digests()[session.tenant] ?? []).contains(session.digest) else {
            lock.withLock { sessions[id] = nil }
            return nil
        }
        return session.tenant
    }

    public func logout(_ id: String) {
        lock.withLock { sessions[id] = nil }
    }

    /// Constant-time equality of two digests of equal length.
    static func same(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        guard x.count == y.count else { return false }
        var difference: UInt8 = 0
        for index in x.indices { difference |= x[index] ^ y[index] }
        return difference == 0
    }
}
