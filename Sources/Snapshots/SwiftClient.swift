import Crypto
import Dispatch
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A small OpenStack Swift client: tempauth, containers, and objects by whole body, each request with a deadline.
/// Calls block their thread (URLSession's completion handlers, no Swift concurrency): callers run them on their own
/// threads (the applier's), never on the cooperative pool.
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

    /// One object of a container listing.
    public struct Listed: Sendable, Decodable, Hashable {
        public var name: String
        public var bytes: UInt64
        public var last_modified: String
    }

    /// Signs in through tempauth (`GET /auth/v1.0` with `X-Auth-User` and `X-Auth-Key`).
    public static func authenticate(proxy: String, user: String, key: String, timeout: Double = 30) throws -> SwiftClient {
        guard let url = URL(string: "\(proxy)/auth/v1.0") else { throw Failure(request: "authenticate", status: nil, message: "bad proxy URL \(proxy)") }
        var request = URLRequest(url: url, timeoutInterval: timeout)
        request.setValue(user, forHTTPHeaderField: "X-Auth-User")
        request.setValue(key, forHTTPHeaderField: "X-Auth-Key")
        let (_, response) = try send(request, what: "authenticate as \(user)")
        guard let storage = response.value(forHTTPHeaderField: "X-Storage-Url"), let token = response.value(forHTTPHeaderField: "X-Auth-Token") else {
            throw Failure(request: "authenticate as \(user)", status: response.statusCode, message: "no storage URL or token")
        }
        return SwiftClient(storageURL: storage, token: token, timeout: timeout)
    }

    public init(storageURL: String, token: String, timeout: Double = 30) {
        self.storageURL = storageURL
        self.token = token
        self.timeout = timeout
    }

    /// Creates the container if it is not there.
    public func ensureContainer(_ container: String) throws {
        _ = try call("PUT", container, nil, body: nil, accept: [201, 202])
    }

    /// An object's user metadata (`X-Object-Meta-*`, names lower-cased without the prefix), nil when it does not exist.
    public func head(_ container: String, _ object: String) throws -> [String: String]? {
        let (status, _, response) = try call("HEAD", container, object, body: nil, accept: [200, 204, 404])
        guard status != 404 else { return nil }
        var metadata: [String: String] = [:]
        for (key, value) in response.allHeaderFields {
            guard let key = key as? String, let value = value as? String, key.lowercased().hasPrefix("x-object-meta-") else { continue }
            metadata[String(key.lowercased().dropFirst("x-object-meta-".count))] = value
        }
        return metadata
    }

    /// Whether an object exists.
    public func exists(_ container: String, _ object: String) throws -> Bool {
        try head(container, object) != nil
    }

    /// Stores an object (with user metadata); Swift checks the body against `ETag` (its MD5), so a damaged upload is
    /// refused.
    public func put(_ container: String, _ object: String, _ body: Data, metadata: [String: String] = [:]) throws {
        _ = try call("PUT", container, object, body: body, accept: [201], headers: Dictionary(uniqueKeysWithValues: metadata.map { ("X-Object-Meta-\($0.key)", $0.value) }))
    }

    /// Stores an object unless one of that name is there already (`If-None-Match: *`, which Swift answers before the body
    /// is sent, with `Expect: 100-continue`): one request where asking first and then storing took two. Whether it stored it.
    public func putIfAbsent(_ container: String, _ object: String, _ body: Data) throws -> Bool {
        try call("PUT", container, object, body: body, accept: [201, 412], headers: ["If-None-Match": "*", "Expect": "100-continue"]).status == 201
    }

    /// An object's body.
    public func get(_ container: String, _ object: String) throws -> Data {
        try call("GET", container, object, body: nil, accept: [200]).data
    }

    /// Deletes an object; one already gone is not an error.
    public func delete(_ container: String, _ object: String) throws {
        _ = try call("DELETE", container, object, body: nil, accept: [204, 404])
    }

    /// Every object of a container whose name starts with `prefix` (page by page); none when the container is missing.
    public func list(_ container: String, prefix: String = "") throws -> [Listed] {
        try listing(container, prefix: prefix, name: \Listed.name)
    }

    /// Every entry of a listing (`container` empty: the account's containers), page by page; none when it is missing.
    func listing<Entry: Decodable>(_ container: String, prefix: String = "", name: (Entry) -> String) throws -> [Entry] {
        var listed: [Entry] = []
        var marker = ""
        while true {
            var query = "?format=json&limit=10000"
            for (key, value) in [("prefix", prefix), ("marker", marker)] where !value.isEmpty {
                query += "&\(key)=\(value.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? value)"
            }
            let (status, data, _) = try call("GET", container, nil, body: nil, accept: [200, 204, 404], query: query)
            guard status == 200 else { return listed }
            let page: [Entry]
            do {
                page = try JSONDecoder().decode([Entry].self, from: data)
            } catch {
                throw Failure(request: "GET \(container.isEmpty ? "account" : container)", status: status, message: "unreadable listing: \(error)")
            }
            listed += page
            guard let last = page.last, page.count == 10000 else { return listed }
            marker = name(last)
        }
    }

    /// One request to the account (`container` empty), a container or an object.
    func call(_ method: String, _ container: String, _ object: String?, body: Data?, accept: Set<Int>, query: String = "",
              headers: [String: String] = [:]) throws -> (status: Int, data: Data, response: HTTPURLResponse) {
        let path = [container, object].compactMap { $0?.addingPercentEncoding(withAllowedCharacters: Self.segmentAllowed) }.joined(separator: "/")
        let what = container.isEmpty ? "\(method) account" : "\(method) \(container)\(object.map { "/\($0)" } ?? "")"
        guard let url = URL(string: "\(storageURL)\(path.isEmpty ? "" : "/" + path)\(query)") else { throw Failure(request: what, status: nil, message: "bad URL") }
        var request = URLRequest(url: url, timeoutInterval: timeout)
        request.httpMethod = method
        request.setValue(token, forHTTPHeaderField: "X-Auth-Token")
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        if let body {
            request.httpBody = body
            request.setValue(Insecure.md5(body), forHTTPHeaderField: "ETag")
        }
        let (data, response) = try Self.send(request, what: what, accept: accept)
        return (response.statusCode, data, response)
    }

    /// The session every request goes through: up to 16 connections to the proxy, kept alive (the shared session's
    /// limit, 6, held a snapshot's 8 chunk uploads back).
    private static let session: URLSession = {
        let configuration = URLSessionConfiguration.default
        configuration.httpMaximumConnectionsPerHost = 16
        configuration.requestCachePolicy = .reloadIgnoringLocalCacheData
        configuration.urlCache = nil
        return URLSession(configuration: configuration)
    }()

    /// What a path segment keeps unencoded (an object name's `/` stays: Swift names may hold it).
    static let segmentAllowed = CharacterSet.urlPathAllowed

    private static func send(_ request: URLRequest, what: String, accept: Set<Int> = [200, 204]) throws -> (Data, HTTPURLResponse) {
        let done = DispatchSemaphore(value: 0)
        let box = ResponseBox()
        session.dataTask(with: request) { data, response, error in
            box.set(data: data, response: response, error: error)
            done.signal()
        }.resume()
        done.wait()
        let (data, response, error) = box.get()
        if let error { throw Failure(request: what, status: nil, message: "\(error)") }
        guard let http = response as? HTTPURLResponse else { throw Failure(request: what, status: nil, message: "not an HTTP response") }
        guard accept.contains(http.statusCode) else { throw Failure(request: what, status: http.statusCode, message: String(decoding: (data ?? Data()).prefix(200), as: UTF8.self)) }
        return (data ?? Data(), http)
    }
}

/// What a completion handler handed back, passed to the waiting thread.
private final class ResponseBox: @unchecked Sendable {
    private let lock = NSLock()
    private var data: Data?
    private var response: URLResponse?
    private var error: (any Error)?

    func set(data: Data?, response: URLResponse?, error: (any Error)?) {
        lock.withLock { (self.data, self.response, self.error) = (data, response, error) }
    }

    func get() -> (Data?, URLResponse?, (any Error)?) {
        lock.withLock { (data, response, error) }
    }
}

extension Insecure {
    /// Hex MD5 of `data`: Swift's ETag.
    static func md5(_ data: Data) -> String {
        SnapshotStore.hex(Insecure.MD5.hash(data: data))
    }
}
