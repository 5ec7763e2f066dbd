import Crypto
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A small OpenStack Swift client: tempauth, containers, and objects by whole body, each request with a deadline.
public struct SwiftClient: Sendable {
    /// The account's storage URL and the token tempauth gave.
    public let storageURL: String
    public let token: String
    /// Seconds each request may take.
    public var timeout: Double = 30

    /// A failed request: what, and the status or error.
    public struct Failure: Error, CustomStringConvertible {
        public var request: String
        public var status: Int?
        public var message: String
        public var description: String { "swift: \(request): \(status.map { "HTTP \($0)" } ?? message)" }
    }

    /// Signs in through tempauth (`GET /auth/v1.0` with `X-Auth-User` and `X-Auth-Key`).
    public static func authenticate(proxy: String, user: String, key: String, timeout: Double = 30) async throws -> SwiftClient {
        var request = URLRequest(url: URL(string: "\(proxy)/auth/v1.0")!, timeoutInterval: timeout)
        request.setValue(user, forHTTPHeaderField: "X-Auth-User")
        request.setValue(key, forHTTPHeaderField: "X-Auth-Key")
        let (_, response) = try await send(request, what: "authenticate as \(user)")
        guard let url = response.value(forHTTPHeaderField: "X-Storage-Url"), let token = response.value(forHTTPHeaderField: "X-Auth-Token") else {
            throw Failure(request: "authenticate as \(user)", status: response.statusCode, message: "no storage URL or token")
        }
        return SwiftClient(storageURL: url, token: token, timeout: timeout)
    }

    public init(storageURL: String, token: String, timeout: Double = 30) {
        self.storageURL = storageURL
        self.token = token
        self.timeout = timeout
    }

    /// Creates the container if it is not there.
    public func ensureContainer(_ container: String) async throws {
        _ = try await call("PUT", container, nil, body: nil, accept: [201, 202])
    }

    /// Whether an object exists.
    public func exists(_ container: String, _ object: String) async throws -> Bool {
        try await call("HEAD", container, object, body: nil, accept: [200, 204, 404]).status != 404
    }

    /// Stores an object; Swift checks the body against `ETag` (its MD5), so a damaged upload is refused.
    public func put(_ container: String, _ object: String, _ body: Data) async throws {
        _ = try await call("PUT", container, object, body: body, accept: [201])
    }

    /// An object's body.
    public func get(_ container: String, _ object: String) async throws -> Data {
        try await call("GET", container, object, body: nil, accept: [200]).data
    }

    private func call(_ method: String, _ container: String, _ object: String?, body: Data?, accept: Set<Int>) async throws -> (status: Int, data: Data) {
        let path = [container, object].compactMap { $0?.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) }.joined(separator: "/")
        var request = URLRequest(url: URL(string: "\(storageURL)/\(path)")!, timeoutInterval: timeout)
        request.httpMethod = method
        request.setValue(token, forHTTPHeaderField: "X-Auth-Token")
        if let body {
            request.httpBody = body
            request.setValue(Insecure.md5(body), forHTTPHeaderField: "ETag")
        }
        let what = "\(method) \(container)\(object.map { "/\($0)" } ?? "")"
        let (data, response) = try await Self.send(request, what: what, accept: accept)
        return (response.statusCode, data)
    }

    private static func send(_ request: URLRequest, what: String, accept: Set<Int> = [200, 204]) async throws -> (Data, HTTPURLResponse) {
        let data: Data, response: URLResponse
        do {
            (data, response) = try await URLSession.shared.data(for: request)
        } catch {
            throw Failure(request: what, status: nil, message: "\(error)")
        }
        guard let http = response as? HTTPURLResponse else { throw Failure(request: what, status: nil, message: "not an HTTP response") }
        guard accept.contains(http.statusCode) else { throw Failure(request: what, status: http.statusCode, message: String(decoding: data.prefix(200), as: UTF8.self)) }
        return (data, http)
    }
}

extension Insecure {
    /// Hex MD5 of `data`: Swift's ETag.
    static func md5(_ data: Data) -> String {
        SnapshotStore.hex(Insecure.MD5.hash(data: data))
    }
}
