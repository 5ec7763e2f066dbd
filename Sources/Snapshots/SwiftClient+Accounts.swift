import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Accounts and containers as a reseller admin sees them: another account's client, an account's usage and quota, its
/// containers with their ACLs and versioning, and the requests that set them.
extension SwiftClient {
    /// An account's usage and the quotas a reseller admin set on it.
    public struct AccountInfo: Sendable, Equatable {
        public var bytesUsed: Int64
        public var objects: Int64
        public var containers: Int64
        /// `X-Account-Quota-Bytes` and `X-Account-Quota-Count` (the account_quotas middleware): nil when unset.
        public var quotaBytes: Int64?
        public var quotaObjects: Int64?
    }

    /// A container's settings and usage.
    public struct ContainerInfo: Sendable, Equatable {
        public var name: String
        /// `X-Container-Read` / `X-Container-Write` as stored (nil when unset).
        public var read: String?
        public var write: String?
        /// `X-Versions-Enabled` (object versioning).
        public var versioned: Bool
        public var objects: Int64
        public var bytesUsed: Int64
    }

    /// The client for `account` (`AUTH_tenant_acme`) at the same proxy with the same token: what a reseller admin uses
    /// to act on any account of its reseller prefix.
    public func forAccount(_ account: String) -> SwiftClient {
        var base = storageURL
        if let slash = base.lastIndex(of: "/") { base = String(base[..<slash]) }
        return SwiftClient(storageURL: "\(base)/\(account)", token: token, timeout: timeout)
    }

    /// The account's usage and quota; nil when it does not exist yet.
    public func accountInfo() throws -> AccountInfo? {
        let (status, _, response) = try call("HEAD", "", nil, body: nil, accept: [200, 204, 404])
        guard status != 404 else { return nil }
        let header = { (name: String) in response.value(forHTTPHeaderField: name) }
        return AccountInfo(bytesUsed: header("X-Account-Bytes-Used").flatMap { Int64($0) } ?? 0, objects: header("X-Account-Object-Count").flatMap { Int64($0) } ?? 0,
                           containers: header("X-Account-Container-Count").flatMap { Int64($0) } ?? 0,
                           quotaBytes: header("X-Account-Quota-Bytes").flatMap { Int64($0) }, quotaObjects: header("X-Account-Quota-Count").flatMap { Int64($0) })
    }

    /// Creates the account (a reseller admin's `PUT` on it); one that exists is left as it is.
    public func createAccount() throws {
        _ = try call("PUT", "", nil, body: nil, accept: [201, 202, 204])
    }

    /// Sets (or, with nil, removes) the account's quotas of bytes and objects: only a reseller admin may (the account's
    /// own admins cannot, which is what makes them binding).
    public func setAccountQuota(bytes: Int64?, objects: Int64?) throws {
        var headers: [String: String] = [:]
        for (name, value) in [("Quota-Bytes", bytes), ("Quota-Count", objects)] {
            if let value { headers["X-Account-\(name)"] = "\(value)" } else { headers["X-Remove-Account-\(name)"] = "x" }
        }
        _ = try call("POST", "", nil, body: nil, accept: [204], headers: headers)
    }

    /// The account's containers, page by page (none when the account does not exist).
    public func containers() throws -> [String] {
        struct Listed: Decodable { var name: String }
        return try listing("", name: \Listed.name).map(\.name)
    }

    /// A container's settings and usage; nil when it does not exist.
    public func containerInfo(_ container: String) throws -> ContainerInfo? {
        let (status, _, response) = try call("HEAD", container, nil, body: nil, accept: [200, 204, 404])
        guard status != 404 else { return nil }
        let header = { (name: String) in response.value(forHTTPHeaderField: name) }
        return ContainerInfo(name: container, read: header("X-Container-Read"), write: header("X-Container-Write"),
                             versioned: header("X-Versions-Enabled")?.lowercased() == "true",
                             objects: header("X-Container-Object-Count").flatMap { Int64($0) } ?? 0,
                             bytesUsed: header("X-Container-Bytes-Used").flatMap { Int64($0) } ?? 0)
    }

    /// Creates the container, or sets its ACLs and versioning when it exists: `read`/`write` nil removes the ACL.
    public func putContainer(_ container: String, read: String?, write: String?, versioned: Bool) throws {
        var headers = ["X-Versions-Enabled": versioned ? "true" : "false"]
        if let read { headers["X-Container-Read"] = read } else { headers["X-Remove-Container-Read"] = "x" }
        if let write { headers["X-Container-Write"] = write } else { headers["X-Remove-Container-Write"] = "x" }
        if try containerInfo(container) == nil {
            _ = try call("PUT", container, nil, body: nil, accept: [201, 202], headers: headers)
        } else {
            _ = try call("POST", container, nil, body: nil, accept: [204], headers: headers)
        }
    }

    /// Deletes every object of a container and every old version (versioning turned off first, so deleting makes no
    /// new ones): what deleting a container that holds objects takes.
    public func emptyContainer(_ container: String) throws {
        guard let info = try containerInfo(container) else { return }
        if info.versioned { _ = try call("POST", container, nil, body: nil, accept: [204], headers: ["X-Versions-Enabled": "false"]) }
        struct Version: Decodable { var name: String; var version_id: String? }
        var previous: [String] = []
        while true {
            let (status, data, _) = try call("GET", container, nil, body: nil, accept: [200, 204, 404], query: "?versions&format=json&limit=10000")
            guard status == 200 else { break }
            let page = (try? JSONDecoder().decode([Version].self, from: data)) ?? []
            if page.isEmpty { break }
            let names = page.map { "\($0.name) \($0.version_id ?? "")" }
            guard names != previous else { throw Failure(request: "DELETE \(container) versions", status: nil, message: "the versions listed do not go away") }
            previous = names
            for entry in page {
                let query = entry.version_id.map { "?version-id=\($0.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? $0)" } ?? ""
                _ = try call("DELETE", container, entry.name, body: nil, accept: [204, 404], query: query)
            }
        }
        for object in try list(container) { try delete(container, object.name) }
    }

    /// Deletes an empty container; one already gone is not an error. Swift refuses a container that holds objects
    /// (409), and so does this.
    public func deleteContainer(_ container: String) throws {
        _ = try call("DELETE", container, nil, body: nil, accept: [204, 404])
    }
}
