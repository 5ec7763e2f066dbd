import Manifests

/// Tenants' containers in the region's object store: each declared container created or set to its ACLs and
/// versioning, each account's quotas set, and a container no longer declared deleted when it is empty. One that still
/// holds objects is a plan error naming how many: StackLab never deletes a tenant's data on its own.
extension RegionPlanner {
    mutating func planContainers() {
        // nil: StackLab has no reseller credential here (validation names a Container in such a region).
        guard let accounts else { return }
        let observedByTenant = Dictionary(accounts.map { ($0.tenant, $0) }, uniquingKeysWith: { first, _ in first })
        let declaredByTenant = Dictionary(grouping: slice.containers, by: { $0.tenant ?? "" })
        for tenant in Set(observedByTenant.keys).union(declaredByTenant.keys).sorted() {
            let account = TenantStorage.account(tenant)
            let have = observedByTenant[tenant]
            let declared = (declaredByTenant[tenant] ?? []).sorted { $0.name < $1.name }
            let target = Change.Target.region(region)
            // The account's quotas, once the tenant has an account here (or is getting one).
            var quotaChange: ChangeID?
            if have != nil || !declared.isEmpty {
                let want = catalog.storageQuotas[tenant] ?? (nil, nil)
                if have?.quotaBytes != want.bytes || have?.quotaObjects != want.objects, have != nil || want.bytes != nil || want.objects != nil {
                    let show = { (value: Int64?, size: Bool) in value.map { size ? "\(ByteSize(bytes: UInt64($0)))" : "\($0)" } ?? "none" }
                    var fields: [Change.FieldChange] = []
                    if have?.quotaBytes != want.bytes { fields.append(.init(field: "quota bytes", old: show(have?.quotaBytes, true), new: show(want.bytes, true))) }
                    if have?.quotaObjects != want.objects { fields.append(.init(field: "quota objects", old: show(have?.quotaObjects, false), new: show(want.objects, false))) }
                    let change = Change(address: Address(kind: .tenant, name: tenant), target: target, action: have == nil ? .create : .update,
                                        reason: have == nil ? .new : .differs, fields: fields,
                                        operation: .region(.setAccountQuota(account: account, bytes: want.bytes, objects: want.objects)))
                    quotaChange = change.id
                    changes.append(change)
                }
            }
            let found = Dictionary((have?.containers ?? []).map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
            for container in declared {
                let read = TenantStorage.readACL(container.spec), write = TenantStorage.writeACL(container.spec)
                let versioned = container.spec.versioning?.value ?? false
                let operation = Change.Operation.region(.putContainer(account: account, container: container.name, read: read, write: write, versioned: versioned))
                guard let current = found[container.name] else {
                    changes.append(Change(address: container.address, target: target, action: .create, reason: .new,
                                          fields: [.init(field: "read", old: "", new: read ?? "owner only"), .init(field: "write", old: "", new: write ?? "owner only"),
                                                   .init(field: "versioning", old: "", new: versioned ? "on" : "off")],
                                          dependsOn: quotaChange.map { [$0] } ?? [], operation: operation))
                    continue
                }
                var fields: [Change.FieldChange] = []
                if !TenantStorage.sameACL(current.read, read) { fields.append(.init(field: "read", old: current.read ?? "owner only", new: read ?? "owner only")) }
                if !TenantStorage.sameACL(current.write, write) { fields.append(.init(field: "write", old: current.write ?? "owner only", new: write ?? "owner only")) }
                if current.versioned != versioned { fields.append(.init(field: "versioning", old: current.versioned ? "on" : "off", new: versioned ? "on" : "off")) }
                if fields.isEmpty {
                    unchanged += 1
                } else {
                    changes.append(Change(address: container.address, target: target, action: .update, reason: .differs, fields: fields, operation: operation))
                }
            }
            let declaredNames = Set(declared.map(\.name))
            for container in (have?.containers ?? []).sorted(by: { $0.name < $1.name }) where !declaredNames.contains(container.name) {
                let address = Address(kind: .container, region: region, tenant: tenant, name: container.name)
                let held = "\(container.objects) object\(container.objects == 1 ? "" : "s") (\(ByteSize(bytes: UInt64(max(0, container.bytes)))))"
                guard container.objects == 0 || options.deleteContainerObjects else {
                    errors.append(.init(address: address, message: "left the manifests but holds \(held): StackLab deletes only an empty container; empty it, declare it again, or plan with --delete-container-objects"))
                    continue
                }
                changes.append(Change(address: address, target: target, action: .delete, reason: .removed,
                                      destroys: container.objects == 0 ? [] : ["its \(held)\(container.versioned ? " and every old version" : "")"],
                                      operation: .region(.deleteContainer(account: account, container: container.name, objects: container.objects > 0))))
            }
        }
    }
}
