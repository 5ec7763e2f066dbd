import Foundation
import Manifests
import Planning
import Reconcile

/// `stacklab show container --live`: each tenant account of the region's object store that holds or should hold a
/// container, with its usage and quotas, and each container as declared and as Swift holds it (objects, bytes, the
/// read and write ACLs, versioning); a container that left the manifests is shown with what it still holds.
struct ContainerStatus: Encodable {
    var account: String
    var bytesUsed: Int64?
    var quotaBytes: Int64?
    var quotaObjects: Int64?
    var containers: [Entry]

    struct Entry: Encodable {
        var address: String
        var declared: Bool
        /// nil: not created yet.
        var objects: Int64?
        var bytes: Int64?
        var read: String?
        var write: String?
        var versioning: Bool?
    }

    /// Observes the tenants' accounts of the regions of `containers` (or `only`), as the reseller admin.
    static func observe(_ containers: [Resource<ContainerSpec>], name: String?, reconciler: Reconciler, regions only: [String]) throws -> [ContainerStatus] {
        var regions = Set(reconciler.model.regions.filter { reconciler.objectStores.hasReseller($0.name) }.map(\.name))
        if !only.isEmpty { regions.formIntersection(only) }
        let observed = try reconciler.observeAccounts(regions.sorted())
        var statuses: [ContainerStatus] = []
        for region in regions.sorted() {
            let accounts = Dictionary((observed[region] ?? []).map { ($0.tenant, $0) }, uniquingKeysWith: { first, _ in first })
            let declared = Dictionary(grouping: containers.filter { $0.region == region }, by: { $0.tenant ?? "" })
            for tenant in Set(accounts.keys).union(declared.keys).sorted() {
                let account = accounts[tenant]
                let found = Dictionary((account?.containers ?? []).map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
                var entries: [Entry] = []
                for container in (declared[tenant] ?? []).sorted(by: { $0.name < $1.name }) {
                    let have = found[container.name]
                    entries.append(Entry(address: container.address.description, declared: true, objects: have?.objects, bytes: have?.bytes, read: have?.read,
                                         write: have?.write, versioning: have?.versioned))
                }
                let names = Set((declared[tenant] ?? []).map(\.name))
                for container in (account?.containers ?? []).sorted(by: { $0.name < $1.name }) where !names.contains(container.name) {
                    entries.append(Entry(address: Address(kind: .container, region: region, tenant: tenant, name: container.name).description, declared: false,
                                         objects: container.objects, bytes: container.bytes, read: container.read, write: container.write, versioning: container.versioned))
                }
                entries = entries.filter { name == nil || $0.address.hasSuffix("/\(name!)") }
                guard !entries.isEmpty else { continue }
                statuses.append(ContainerStatus(account: "\(region)/\(TenantStorage.accountID(tenant))", bytesUsed: account?.bytesUsed, quotaBytes: account?.quotaBytes,
                                                quotaObjects: account?.quotaObjects, containers: entries))
            }
        }
        return statuses
    }

    /// Text: one line per account, then its containers indented.
    var text: String {
        let quota = [quotaBytes.map { "\(ByteSize(bytes: UInt64(max(0, $0))))" }, quotaObjects.map { "\($0) objects" }].compactMap { $0 }
        var out = account + (bytesUsed.map { "  \(ByteSize(bytes: UInt64(max(0, $0)))) stored" } ?? "  (no account yet: apply creates it)")
        out += quota.isEmpty ? ", no quota\n" : ", quota \(quota.joined(separator: ", "))\n"
        for entry in containers {
            out += "  \(entry.address)"
            guard let objects = entry.objects else {
                out += ": not created yet (apply creates it)\n"
                continue
            }
            out += ": \(objects) object\(objects == 1 ? "" : "s"), \(ByteSize(bytes: UInt64(max(0, entry.bytes ?? 0))))"
            out += ", read \(entry.read ?? "owner only"), write \(entry.write ?? "owner only"), versioning \(entry.versioning == true ? "on" : "off")"
            out += entry.declared ? "\n" : " (left the manifests: deleted once empty)\n"
        }
        return out
    }
}
