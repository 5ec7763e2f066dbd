import Billing
import Foundation
import ManifestSources
import Manifests
import Planning

/// The tenant console (`/console/`): one tenant's own view, like Sina's user console beside its admin one. Every page
/// is built from what the logged-in tenant owns, selected by tenant before anything is rendered (`owned`): a name,
/// path or id of another tenant's finds nothing (nil, answered 404). No operator-only field reaches a view: no node,
/// host address or other tenant. The views are rendered by `ConsoleTemplates` (Mustache, HTML-escaped). Read-only:
/// changes go through git and the CI gate, and each resource names the manifest line that declares it.
struct Console: Sendable {
    let configuration: ServiceConfiguration
    let state: ServiceState
    let dashboard: Dashboard

    // MARK: Views (what a template sees: strings, flags and lists only)

    struct Page: Encodable {
        var tenant: String
        var title: String
        var month: String
    }

    struct RegionLink: Encodable { var name: String; var current: Bool }

    /// The last run that changed a resource (its page shows the tenant's own changes in that run).
    struct ChangedBy: Encodable { var run: Int64; var action: String; var at: String }

    struct InstanceRow: Encodable {
        var region: String
        var name: String
        var declaredAt: String
        var changedBy: ChangedBy?
        var fixedIP: String
        var floatingIP: String
        var flavor: String
        var publicDomain: String
        var status: String
        var powerState: String
    }

    struct Row: Encodable {
        var name: String
        var declaredAt: String
        var changedBy: ChangedBy?
        var size = "", instance = "", address = "", host = "", members = "", rules = ""
        /// A volume's declared snapshots (one-offs and schedules) and those its region's object store holds.
        var declaredSnapshots = ""
        var snapshots: [SnapshotRow] = []
    }

    struct SnapshotRow: Encodable { var name, taken, size: String }

    struct RunView: Encodable {
        var tenant, title, month: String
        var run: Int64
        var status, revision, started: String
        var changes: [ChangeRow]

        struct ChangeRow: Encodable { var resource, action, status: String }
    }

    struct Account: Encodable { var charges, deposit, couponCredit, balance, currency: String }

    struct Overview: Encodable {
        var tenant, title, month: String
        var regions: [RegionLink]
        var instances: [InstanceRow]
        var volumes, floatingIPs, loadBalancers, securityGroups, keypairs: [Row]
        var containers: [ContainerRow]
        var storage: Storage?
        var account: Account?
    }

    /// A container of the tenant's account in the region's object store: as declared, and as the loop last saw it.
    struct ContainerRow: Encodable {
        var name: String
        var declaredAt: String
        var changedBy: ChangedBy?
        var access, shared, versioning, objects, bytes: String
    }

    /// The tenant's account in the region's object store: what it holds, and its quota.
    struct Storage: Encodable { var account, stored, quota: String }

    struct InstanceView: Encodable {
        var tenant, title, month: String
        var declaredAt, flavor, image, fixedIP, status: String
        var changedBy: ChangedBy?
        var hasGraphs = false
        var graphs = ""
        var graphsError = false
        var hasAlarms = false
        var alarms: [AlarmRow] = []
        var counters: Counters?

        struct AlarmRow: Encodable { var alarm, state: String }
        struct Counters: Encodable { var cpu, diskRead, diskWritten, networkIn, networkOut: String }
    }

    struct BillView: Encodable {
        var tenant, title, month, shownMonth: String
        var months: [RegionLink]
        var totals: [Total]
        var charges, currency, paidByCoupons, paidByDeposits, owed, balance: String
        var lines: [Line]

        struct Total: Encodable { var category, total: String }
        struct Line: Encodable { var category, resource, item, unitPrice, start, end, quantity, total: String }
    }

    static func login(failed: Bool, limited: Bool) -> String {
        ConsoleTemplates.render("login", ["failed": failed, "limited": limited])
    }

    /// What every page the tenant does not own answers (the same for a name that exists elsewhere and one that does not).
    static var notFound: String { ConsoleTemplates.render("notfound", [String: String]()) }

    var now: Int64 { Int64(Date().timeIntervalSince1970) }
    var thisMonth: String { "\(BillingMonth(containing: now))" }

    /// The manifests the service runs.
    var loaded: LoadResult? { dashboard.model() }

    // MARK: What the tenant owns

    struct Owned {
        var instances: [Resource<InstanceSpec>] = []
        var volumes: [Resource<VolumeSpec>] = []
        var floatingIPs: [Resource<FloatingIPSpec>] = []
        var securityGroups: [Resource<SecurityGroupSpec>] = []
        var keypairs: [Resource<KeypairSpec>] = []
        var loadBalancers: [Resource<LoadBalancerSpec>] = []
        var alarms: [Resource<AlarmSpec>] = []
        var containers: [Resource<ContainerSpec>] = []
    }

    func owned(_ tenant: String, in model: DesiredModel) -> Owned {
        var owned = Owned()
        owned.instances = model.instances.filter { $0.tenant == tenant }.sorted { $0.address < $1.address }
        owned.volumes = model.volumes.filter { $0.tenant == tenant }.sorted { $0.address < $1.address }
        owned.floatingIPs = model.floatingIPs.filter { $0.tenant == tenant }.sorted { $0.address < $1.address }
        owned.securityGroups = model.securityGroups.filter { $0.tenant == tenant }.sorted { $0.address < $1.address }
        owned.keypairs = model.keypairs.filter { $0.tenant == tenant }.sorted { $0.address < $1.address }
        owned.loadBalancers = model.loadBalancers.filter { $0.tenant == tenant }.sorted { $0.address < $1.address }
        owned.alarms = model.alarms.filter { $0.tenant == tenant }.sorted { $0.address < $1.address }
        owned.containers = model.containers.filter { $0.tenant == tenant }.sorted { $0.address < $1.address }
        return owned
    }

    /// The tenant's instances (of `region`, or all) as the overview and `/console/api/instances` list them.
    func instanceRows(_ tenant: String, region: String?, loaded: LoadResult) -> [InstanceRow] {
        let owned = self.owned(tenant, in: loaded.model)
        let shown = owned.instances.filter { region == nil || $0.region == region }
        let changes = lastChanges(shown.map(\.address))
        return shown.map { instance -> InstanceRow in
            let here = instance.region ?? ""
            let observation = state.observation(here)
            let found = observation?.instances[instance.address]
            let floating = owned.floatingIPs.first { $0.region == here && $0.spec.instance?.value == instance.name }
            let domains = loaded.model.regions.first { $0.name == here }?.spec.publicDomains?.value
            let domain = observation?.publicPorts[instance.address].flatMap { port in domains.map { "\(PublicDomain.name(for: instance.address, domains: $0)):\(port)" } }
            return InstanceRow(region: here, name: instance.name, declaredAt: loaded.files.describe(instance.meta.location), changedBy: changes[instance.address], fixedIP: found?.ip.map { "\($0)" } ?? "",
                               floatingIP: floating.flatMap { observation?.floatingIPs[$0.address] }.map { "\($0)" } ?? "", flavor: instance.spec.flavor.value,
                               publicDomain: domain ?? "", status: found?.state.rawValue ?? (observation == nil ? "not observed yet" : "not running"),
                               powerState: (instance.spec.state?.value ?? .running).rawValue)
        }
    }

    // MARK: Pages

    /// The overview of `region` (the tenant's first region with an instance, when nil); nil for a region the cloud
    /// does not have.
    func overview(_ tenant: String, region: String?) -> String? {
        guard let loaded else { return ConsoleTemplates.render("notyet", Page(tenant: tenant, title: "Overview", month: thisMonth)) }
        let model = loaded.model
        let owned = self.owned(tenant, in: model)
        let regions = model.regions.map(\.name).sorted()
        guard let current = region ?? owned.instances.first?.region ?? regions.first, regions.contains(current) else { return nil }
        let observation = state.observation(current)
        let domains = model.regions.first { $0.name == current }?.spec.publicDomains?.value
        let at = { (meta: ObjectMeta) in loaded.files.describe(meta.location) }
        let volumes = owned.volumes.filter { $0.region == current }
        let floatingIPs = owned.floatingIPs.filter { $0.region == current }
        let loadBalancers = owned.loadBalancers.filter { $0.region == current }
        let containers = owned.containers.filter { $0.region == current }
        let changes = lastChanges(volumes.map(\.address) + floatingIPs.map(\.address) + loadBalancers.map(\.address)
                                  + owned.securityGroups.map(\.address) + owned.keypairs.map(\.address) + containers.map(\.address))
        let account = observation?.accounts[tenant]
        let view = Overview(
            tenant: tenant, title: "Overview", month: thisMonth,
            regions: regions.map { RegionLink(name: $0, current: $0 == current) },
            instances: instanceRows(tenant, region: current, loaded: loaded),
            volumes: volumes.map { volume -> Row in
                var row = Row(name: volume.name, declaredAt: at(volume.meta), changedBy: changes[volume.address], size: "\(volume.spec.size.value)",
                              instance: volume.spec.instance?.value ?? "-")
                row.declaredSnapshots = (volume.spec.snapshots?.value ?? []).map { snapshot in
                    snapshot.every.map { "\(snapshot.name.value) every \($0.value)h, newest \(snapshot.keep?.value ?? VolumeSpec.Snapshot.defaultKeep) kept" } ?? snapshot.name.value
                }.joined(separator: "; ")
                row.snapshots = (observation?.snapshots[TenantKey(tenant: tenant, name: volume.name)] ?? []).map {
                    SnapshotRow(name: $0.name, taken: Calendar.UTC.format($0.created), size: "\(ByteSize(bytes: $0.capacity))")
                }
                return row
            },
            floatingIPs: floatingIPs.map {
                Row(name: $0.name, declaredAt: at($0.meta), changedBy: changes[$0.address], instance: $0.spec.instance?.value ?? "-",
                    address: observation?.floatingIPs[$0.address].map { "\($0)" } ?? "")
            },
            loadBalancers: loadBalancers.map { balancer -> Row in
                Row(name: balancer.name, declaredAt: at(balancer.meta), changedBy: changes[balancer.address], host: domains.map { PublicDomain.name(forBalancer: balancer.address, domains: $0) } ?? "",
                    members: balancer.spec.members.value.map(\.value).joined(separator: ", "))
            },
            securityGroups: owned.securityGroups.map { group -> Row in
                let rules = (group.spec.rules?.value ?? []).map { rule -> String in
                    [rule.proto?.value.rawValue ?? "tcp", rule.ports.map { "\($0.value)" } ?? "", rule.cidr.map { "from \($0.value)" } ?? rule.group.map { "from group \($0.value)" } ?? ""]
                        .filter { !$0.isEmpty }.joined(separator: " ")
                }
                return Row(name: group.name, declaredAt: at(group.meta), changedBy: changes[group.address], rules: rules.joined(separator: "; "))
            },
            keypairs: owned.keypairs.map { Row(name: $0.name, declaredAt: at($0.meta), changedBy: changes[$0.address]) },
            containers: Self.containerRows(containers, account: account, at: at, changes: changes),
            storage: account.map { account in
                let quota = [account.quotaBytes.map { "\(ByteSize(bytes: UInt64(max(0, $0))))" }, account.quotaObjects.map { "\($0) objects" }].compactMap { $0 }
                return Storage(account: TenantStorage.accountID(tenant), stored: "\(ByteSize(bytes: UInt64(max(0, account.bytesUsed)))) in \(account.objects) objects",
                               quota: quota.isEmpty ? "none" : quota.joined(separator: ", "))
            },
            account: statement(tenant, month: BillingMonth(containing: now)).map {
                Account(charges: "\($0.charges.roundedToCents)", deposit: "\($0.depositBalance.roundedToCents)", couponCredit: "\($0.couponCredit.roundedToCents)",
                        balance: "\($0.balance.roundedToCents)", currency: $0.currency)
            })
        return ConsoleTemplates.render("overview", view)
    }

    /// The tenant's containers in a region: each declared one with what Swift holds of it, then those that left the
    /// manifests but still hold objects (they are billed until emptied).
    static func containerRows(_ declared: [Resource<ContainerSpec>], account: ObservedAccount?, at: (ObjectMeta) -> String,
                              changes: [Address: ChangedBy]) -> [ContainerRow] {
        let found = Dictionary((account?.containers ?? []).map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        var rows = declared.map { container -> ContainerRow in
            let spec = container.spec
            let referrers = spec.allowReferrers?.value.map(\.value) ?? []
            var access = ["false": "private", "read": "anyone reads", "list": "anyone reads and lists"][spec.effectivePublic.rawValue] ?? ""
            if spec.effectivePublic != .none, !referrers.isEmpty { access += " from pages of \(referrers.joined(separator: ", "))" }
            let shared = [("reads", spec.readers), ("writes", spec.writers)].compactMap { verb, names -> String? in
                guard let names = names?.value, !names.isEmpty else { return nil }
                return names.map(\.value).joined(separator: ", ") + " " + verb
            }.joined(separator: "; ")
            let have = found[container.name]
            return ContainerRow(name: container.name, declaredAt: at(container.meta), changedBy: changes[container.address], access: access, shared: shared,
                                versioning: spec.versioning?.value == true ? "on" : "off", objects: have.map { "\($0.objects)" } ?? "not created yet",
                                bytes: have.map { "\(ByteSize(bytes: UInt64(max(0, $0.bytes))))" } ?? "")
        }
        let names = Set(declared.map(\.name))
        for container in (account?.containers ?? []).sorted(by: { $0.name < $1.name }) where !names.contains(container.name) {
            rows.append(ContainerRow(name: container.name, declaredAt: "left the manifests: billed until emptied", changedBy: nil, access: "", shared: "",
                                     versioning: container.versioned ? "on" : "off", objects: "\(container.objects)", bytes: "\(ByteSize(bytes: UInt64(max(0, container.bytes))))"))
        }
        return rows
    }

    /// The tenant's `name` instance in `region`: where it is declared, its flavor, image, address and state, its graphs
    /// and alarms (with a Prometheus) or its counters; nil when the tenant has no such instance.
    func instance(_ tenant: String, region: String, name: String) -> String? {
        guard let loaded, let instance = owned(tenant, in: loaded.model).instances.first(where: { $0.region == region && $0.name == name }) else { return nil }
        let found = state.observation(region)?.instances[instance.address]
        var view = InstanceView(tenant: tenant, title: "Instance \(name) (\(region))", month: thisMonth, declaredAt: loaded.files.describe(instance.meta.location),
                                flavor: instance.spec.flavor.value, image: instance.spec.image.value, fixedIP: found?.ip.map { "\($0)" } ?? "",
                                status: found?.state.rawValue ?? "not running")
        view.changedBy = lastChanges([instance.address])[instance.address]
        if let prometheus = configuration.prometheus {
            do {
                let graphs = try InstanceGraphs.graphs(of: instance.address, range: .hour, end: Int(Date().timeIntervalSince1970), prometheus: prometheus)
                view.graphs = graphs.map(InstanceGraphs.svg).joined()
                view.hasGraphs = true
                let watching = owned(tenant, in: loaded.model).alarms.filter { $0.region == region && $0.spec.instances.value.contains { $0.value == name } }
                view.alarms = try AlarmState.read(watching, prometheus: prometheus).map { .init(alarm: $0.alarm, state: $0.instances[name] ?? "ok") }
                view.hasAlarms = !view.alarms.isEmpty
            } catch {
                view.graphsError = true
            }
        } else if let usage = state.usage.usage(of: instance.address) {
            view.counters = .init(cpu: usage.simulated ? "simulated" : String(format: "%.1f s", usage.cpuSeconds), diskRead: "\(usage.diskReadBytes)",
                                  diskWritten: "\(usage.diskWriteBytes)", networkIn: "\(usage.networkReceivedBytes)", networkOut: "\(usage.networkSentBytes)")
        }
        return ConsoleTemplates.render("instance", view)
    }

    /// What run `run` changed of the tenant's: nil when it changed nothing of theirs (whatever else it did). Only the
    /// resource, the action and its status are shown: never the node it ran on or an error text, which may name one.
    func run(_ tenant: String, run text: String) -> String? {
        guard let id = Int64(text), id > 0, let loaded, let store = try? configuration.store.existing(),
              let record = try? store.runs().first(where: { $0.id == id }) else { return nil }
        let owned = ownedAddresses(tenant, in: loaded.model)
        let entries = ((try? store.journalEntries(run: id)) ?? []).filter { owned.contains($0.address) }
        guard !entries.isEmpty else { return nil }
        var seen = Set<String>()
        let changes = entries.map { RunView.ChangeRow(resource: "\($0.address.kind.addressName) \([$0.address.region, $0.address.name].compactMap { $0 }.joined(separator: "/"))", action: $0.action.rawValue, status: $0.status.rawValue) }
            .filter { seen.insert("\($0.resource) \($0.action) \($0.status)").inserted }  // one line per resource and action, not per node
        let view = RunView(tenant: tenant, title: "Run \(id)", month: thisMonth, run: id, status: record.status.rawValue,
                           revision: String((record.revision ?? "-").prefix(12)), started: Calendar.UTC.format(Int64(record.startedAt)), changes: changes)
        return ConsoleTemplates.render("run", view)
    }

    /// The addresses of everything `tenant` owns (what its run pages may show).
    func ownedAddresses(_ tenant: String, in model: DesiredModel) -> Set<Address> {
        let owned = self.owned(tenant, in: model)
        return Set(owned.instances.map(\.address) + owned.volumes.map(\.address) + owned.floatingIPs.map(\.address) + owned.securityGroups.map(\.address)
                   + owned.keypairs.map(\.address) + owned.loadBalancers.map(\.address) + owned.containers.map(\.address)
                   + [Address(kind: .tenant, name: tenant)])  // its account's quotas
    }

    /// The last run that changed each of `addresses` (the tenant's own, always).
    func lastChanges(_ addresses: [Address]) -> [Address: ChangedBy] {
        guard !addresses.isEmpty, let store = try? configuration.store.existing(), let changes = try? store.lastChanges(addresses) else { return [:] }
        return changes.mapValues { ChangedBy(run: $0.run, action: $0.action.rawValue, at: Calendar.UTC.format(Int64($0.at))) }
    }

    /// The tenant's statement for `month`; nil for a month that is not `YYYY-MM`.
    func bill(_ tenant: String, month text: String) -> String? {
        guard let month = BillingMonth(parsing: text), let statement = statement(tenant, month: month) else { return nil }
        let months = (0..<6).reduce(into: [BillingMonth(containing: now)]) { list, _ in list.append(list.last!.previous) }
        let view = BillView(
            tenant: tenant, title: "Bill \(month)", month: thisMonth, shownMonth: "\(month)", months: months.map { RegionLink(name: "\($0)", current: $0 == month) },
            totals: statement.totals.map { .init(category: $0.category, total: "\($0.total.roundedToCents)") }, charges: "\(statement.charges.roundedToCents)",
            currency: statement.currency, paidByCoupons: "\(statement.paidByCoupons.roundedToCents)", paidByDeposits: "\(statement.paidByDeposits.roundedToCents)",
            owed: "\(statement.owed.roundedToCents)", balance: "\(statement.balance.roundedToCents)",
            lines: statement.lines.map { line -> BillView.Line in
                .init(category: line.category, resource: line.address, item: line.item, unitPrice: "\(line.unitPrice)/\(line.unit)", start: Calendar.UTC.format(line.start),
                      end: Calendar.UTC.format(line.end), quantity: Statement.quantity(line.quantityMicros), total: "\(line.total.roundedToCents)")
            })
        return ConsoleTemplates.render("bill", view)
    }

    /// The statement's line items as CSV (formula cells neutralised); nil for a month that is not `YYYY-MM`.
    func billCSV(_ tenant: String, month text: String) -> String? {
        guard let month = BillingMonth(parsing: text), let statement = statement(tenant, month: month) else { return nil }
        return Statement.csvHeader + statement.csvRows
    }

    /// `tenant`'s statement for `month`, from the ledger's rows of that tenant only.
    func statement(_ tenant: String, month: BillingMonth) -> Statement? {
        guard let loaded, let store = try? configuration.store.existing() else { return nil }
        return Dashboard.statement(tenant, month: month, book: dashboard.priceBook(loaded), store: store)
    }
}
