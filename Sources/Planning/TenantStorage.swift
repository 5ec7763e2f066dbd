import Foundation
import Manifests

/// Tenants' object storage in a region's Swift cluster: one account per tenant, named so that it can never be the
/// operator's (tempauth's `user_<account>_<user>` lines cannot name an account with '_', and tenant names are DNS
/// labels: `tenant_acme` is only ever tenant acme's), and the container ACLs rendered from a Container's spec.
public enum TenantStorage {
    /// The reseller prefix of the accounts (tempauth's default).
    public static let resellerPrefix = "AUTH_"

    /// Tenant `tenant`'s account name (`tenant_acme`): the tempauth account its users belong to and its ACL group.
    public static func account(_ tenant: String) -> String { "tenant_" + tenant }

    /// The account's id in URLs (`AUTH_tenant_acme`).
    public static func accountID(_ tenant: String) -> String { resellerPrefix + account(tenant) }

    /// `X-Container-Read`: anyone (or only pages of the allowed referrers) when public, listings when `list`, and the
    /// reader and writer tenants' accounts; nil when nobody but the owner reads.
    public static func readACL(_ spec: ContainerSpec) -> String? {
        var parts: [String] = []
        if spec.effectivePublic != .none {
            let referrers = spec.allowReferrers?.value.map(\.value) ?? []
            parts += referrers.isEmpty ? [".r:*"] : referrers.map { ".r:" + $0 }
            if spec.effectivePublic == .list { parts.append(".rlistings") }
        }
        // A writer reads too (Swift's write ACL alone lets it put objects it cannot read back).
        var tenants: [String] = []
        for name in (spec.readers?.value ?? []) + (spec.writers?.value ?? []) where !tenants.contains(name.value) { tenants.append(name.value) }
        parts += tenants.sorted().map(account)
        return parts.isEmpty ? nil : parts.joined(separator: ",")
    }

    /// `X-Container-Write`: the writer tenants' accounts; nil when only the owner writes.
    public static func writeACL(_ spec: ContainerSpec) -> String? {
        let writers = Set((spec.writers?.value ?? []).map(\.value)).sorted().map(account)
        return writers.isEmpty ? nil : writers.joined(separator: ",")
    }

    /// Two ACLs mean the same: the same elements, whatever their order and spacing (Swift keeps an ACL as it was sent,
    /// but an operator's hand may have reordered one).
    public static func sameACL(_ a: String?, _ b: String?) -> Bool {
        func elements(_ acl: String?) -> Set<String> {
            Set((acl ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })
        }
        return elements(a) == elements(b)
    }
}

/// A tenant's account in a region's object store, as the reseller admin sees it.
public struct ObservedAccount: Sendable, Codable, Hashable {
    public var tenant: String
    public var quotaBytes: Int64?
    public var quotaObjects: Int64?
    public var bytesUsed: Int64
    public var objects: Int64
    public var containers: [ObservedContainer]

    public init(tenant: String, quotaBytes: Int64?, quotaObjects: Int64?, bytesUsed: Int64, objects: Int64, containers: [ObservedContainer]) {
        self.tenant = tenant
        self.quotaBytes = quotaBytes
        self.quotaObjects = quotaObjects
        self.bytesUsed = bytesUsed
        self.objects = objects
        self.containers = containers
    }
}

/// One container of a tenant's account: its ACLs, versioning and usage.
public struct ObservedContainer: Sendable, Codable, Hashable {
    public var name: String
    public var read: String?
    public var write: String?
    public var versioned: Bool
    public var objects: Int64
    public var bytes: Int64

    public init(name: String, read: String?, write: String?, versioned: Bool, objects: Int64, bytes: Int64) {
        self.name = name
        self.read = read
        self.write = write
        self.versioned = versioned
        self.objects = objects
        self.bytes = bytes
    }
}
