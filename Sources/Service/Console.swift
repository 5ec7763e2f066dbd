import Billing
import Dispatch
import Foundation
import ManifestSources
import Manifests
import Planning

/// The tenant console (`/console/`): one tenant's own view, like Sina's user console beside its admin one. Every page
/// is built from what the logged-in tenant owns, selected by tenant in the query (`owned`), never filtered in the
/// markup: a name, path or id of another tenant's finds nothing (404). No operator-only field is shown: no node,
/// host address or other tenant. Read-only: changes go through git and the CI gate, and each resource names the
/// manifest line that declares it.
struct Console: Sendable {
    let configuration: ServiceConfiguration
    let state: ServiceState
    let dashboard: Dashboard

    func h(_ text: String) -> String { Dashboard.escapeHTML(text) }

    func page(_ tenant: String, _ title: String, _ body: String) -> String {
        """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><title>\(h(title)) · \(h(tenant)) · StackLab console</title>
        <style>body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}
        .stopped,.shutoff{color:#b00}.running{color:#070}nav a{margin-right:1em}.where{color:#777;font-size:.85em}</style></head>
        <body><nav><a href="/console/">Overview</a><a href="/console/bills/\(BillingMonth(containing: now))">Bill</a>
        <form method="post" action="/console/logout" style="display:inline"><button>Log out</button></form> <span id="tenant">\(h(tenant))</span></nav>
        <h1>\(h(title))</h1>
        \(body)
        </body></html>

        """
    }

    /// What every page the tenant does not own answers (the same for a name that exists elsewhere and one that does not).
    static let notFound = """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><title>Not found · StackLab console</title></head>
        <body><h1>Not found</h1><p id="missing">You have nothing here. <a href="/console/">Overview</a></p></body></html>

        """

    static func login(failed: Bool, limited: Bool) -> String {
        """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><title>Console · StackLab</title>
        <style>body{font-family:sans-serif;margin:1.5em}.failed{color:#b00}</style></head>
        <body><h1>StackLab console</h1>
        \(limited ? "<p class=\"failed\" id=\"limited\">Too many failed logins from your address: wait a minute.</p>" : failed ? "<p class=\"failed\" id=\"failed\">That tenant and token do not match.</p>" : "")
        <form method="post" action="/console/login">
        <label>Tenant <input name="tenant" autocomplete="username" autofocus></label>
        <label>Token <input type="password" name="token" autocomplete="current-password"></label>
        <button>Log in</button>
        </form>
        <p>Your cloud's operator gives you a token (<code>stacklab tenant token</code>).</p>
        </body></html>

        """
    }

    var now: Int64 { Int64(Date().timeIntervalSince1970) }

    /// The manifests the service runs.
    var loaded: LoadResult? { dashboard.model() }

    /// What `tenant` owns in the model (and nothing else).
    struct Owned {
        var instances: [Resource<InstanceSpec>] = []
        var volumes: [Resource<VolumeSpec>] = []
        var floatingIPs: [Resource<FloatingIPSpec>] = []
        var securityGroups: [Resource<SecurityGroupSpec>] = []
        var keypairs: [Resource<KeypairSpec>] = []
        var loadBalancers: [Resource<LoadBalancerSpec>] = []
        var alarms: [Resource<AlarmSpec>] = []
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
        return owned
    }

    /// The overview of `region` (the tenant's first region with anything, when nil): instances, volumes, floating IPs,
    /// security groups, keypairs, load balancers, and the account. Nil for a region the cloud does not have.
    func overview(_ tenant: String, region: String?) -> String? {
        guard let loaded else { return page(tenant, "Overview", "<p id=\"not-yet\">The service has not read the manifests yet.</p>") }
        let model = loaded.model
        let owned = self.owned(tenant, in: model)
        let regions = model.regions.map(\.name).sorted()
        guard let current = region ?? owned.instances.first?.region ?? regions.first, regions.contains(current) else { return nil }
        let switcher = regions.map { $0 == current ? "<b>\(h($0))</b>" : "<a href=\"/console/?region=\(h($0))\">\(h($0))</a>" }.joined(separator: " ")
        let observation = state.observation(current)
        let domains = model.regions.first { $0.name == current }?.spec.publicDomains?.value
        let where_ = { (meta: ObjectMeta) in "<span class=\"where\">\(self.h(loaded.files.describe(meta.location)))</span>" }
        var rows = ""
        for instance in owned.instances where instance.region == current {
            let found = observation?.instances[instance.address]
            let floating = owned.floatingIPs.first { $0.region == current && $0.spec.instance?.value == instance.name }
            let publicPort = observation?.publicPorts[instance.address]
            let domain = publicPort.flatMap { port in domains.map { "\(PublicDomain.name(for: instance.address, domains: $0)):\(port)" } } ?? ""
            let status = found?.state.rawValue ?? (observation == nil ? "not observed yet" : "not running")
            rows += "<tr class=\"instance\"><td><a href=\"/console/instances/\(h(current))/\(h(instance.name))\">\(h(instance.name))</a> \(where_(instance.meta))</td>"
            rows += "<td>\(found?.ip.map { "\($0)" } ?? "")</td><td>\(floating.flatMap { observation?.floatingIPs[$0.address] }.map { "\($0)" } ?? "")</td>"
            rows += "<td>\(h(instance.spec.flavor.value))</td><td class=\"domain\">\(h(domain))</td><td class=\"\(h(status))\">\(h(status))</td>"
            rows += "<td>\((instance.spec.state?.value ?? .running).rawValue)</td></tr>\n"
        }
        let volumes = owned.volumes.filter { $0.region == current }.map {
            "<tr><td>\(h($0.name)) \(where_($0.meta))</td><td>\($0.spec.size.value)</td><td>\(h($0.spec.instance?.value ?? "-"))</td></tr>"
        }.joined()
        let floatings = owned.floatingIPs.filter { $0.region == current }.map {
            "<tr><td>\(h($0.name)) \(where_($0.meta))</td><td>\(observation?.floatingIPs[$0.address].map { "\($0)" } ?? "")</td><td>\(h($0.spec.instance?.value ?? "-"))</td></tr>"
        }.joined()
        let groups = owned.securityGroups.map { group -> String in
            let rules = (group.spec.rules?.value ?? []).map { rule -> String in
                [rule.proto?.value.rawValue ?? "tcp", rule.ports.map { "\($0.value)" } ?? "", rule.cidr.map { "from \($0.value)" } ?? rule.group.map { "from group \($0.value)" } ?? ""]
                    .filter { !$0.isEmpty }.joined(separator: " ")
            }
            return "<tr><td>\(h(group.name)) \(where_(group.meta))</td><td>\(h(rules.joined(separator: "; ")))</td></tr>"
        }.joined()
        let keypairs = owned.keypairs.map { "<tr><td>\(h($0.name)) \(where_($0.meta))</td></tr>" }.joined()
        let balancers = owned.loadBalancers.filter { $0.region == current }.map { balancer -> String in
            let host = domains.map { PublicDomain.name(forBalancer: balancer.address, domains: $0) } ?? ""
            return "<tr><td>\(h(balancer.name)) \(where_(balancer.meta))</td><td>\(h(host))</td><td>\(h(balancer.spec.members.value.map(\.value).joined(separator: ", ")))</td></tr>"
        }.joined()
        return page(tenant, "Overview", """
            <p id="regions">Region: \(switcher)</p>
            <h2>Instances</h2>
            <table id="instances"><tr><th>Name</th><th>Fixed IP</th><th>Floating IP</th><th>Flavor</th><th>Public domain</th><th>Status</th><th>Power state</th></tr>\(rows)</table>
            <h2>Volumes</h2><table id="volumes"><tr><th>Name</th><th>Size</th><th>Attached to</th></tr>\(volumes)</table>
            <h2>Floating IPs</h2><table id="floating-ips"><tr><th>Name</th><th>Address</th><th>Instance</th></tr>\(floatings)</table>
            <h2>Load balancers</h2><table id="load-balancers"><tr><th>Name</th><th>Host</th><th>Members</th></tr>\(balancers)</table>
            <h2>Security groups</h2><table id="security-groups"><tr><th>Name</th><th>Rules (ingress)</th></tr>\(groups)</table>
            <h2>Keypairs</h2><table id="keypairs"><tr><th>Name</th></tr>\(keypairs)</table>
            \(account(tenant, model: model))
            """)
    }

    /// The tenant's `name` instance in `region`: its addresses, flavor, public domain, state and counters (graphs when
    /// the service has a Prometheus); nil when the tenant has no such instance.
    func instance(_ tenant: String, region: String, name: String) -> String? {
        guard let loaded, let instance = owned(tenant, in: loaded.model).instances.first(where: { $0.region == region && $0.name == name }) else { return nil }
        let observation = state.observation(region)
        let found = observation?.instances[instance.address]
        var body = "<table id=\"instance\"><tr><th>Declared in</th><td>\(h(loaded.files.describe(instance.meta.location)))</td></tr>"
        body += "<tr><th>Flavor</th><td>\(h(instance.spec.flavor.value))</td></tr><tr><th>Image</th><td>\(h(instance.spec.image.value))</td></tr>"
        body += "<tr><th>Fixed IP</th><td>\(found?.ip.map { "\($0)" } ?? "")</td></tr><tr><th>Status</th><td>\(h(found?.state.rawValue ?? "not running"))</td></tr></table>"
        if let prometheus = configuration.prometheus {
            do {
                let graphs = try InstanceGraphs.graphs(of: instance.address, range: .hour, end: Int(Date().timeIntervalSince1970), prometheus: prometheus)
                body += "<h2>Monitoring</h2><div id=\"graphs\">\n" + graphs.map(InstanceGraphs.svg).joined() + "</div>"
            } catch {
                body += "<p id=\"graphs-error\">No graphs now.</p>"
            }
        } else if let usage = state.usage.usage(of: instance.address) {
            body += "<h2>Counters</h2><table id=\"counters\"><tr><th>CPU time</th><th>Disk read</th><th>Disk written</th><th>Network in</th><th>Network out</th></tr>"
            body += "<tr><td>\(usage.simulated ? "simulated" : String(format: "%.1f s", usage.cpuSeconds))</td><td>\(usage.diskReadBytes)</td><td>\(usage.diskWriteBytes)</td>"
            body += "<td>\(usage.networkReceivedBytes)</td><td>\(usage.networkSentBytes)</td></tr></table>"
        }
        return page(tenant, "Instance \(name) (\(region))", body)
    }

    /// The tenant's statement for `month`; nil for a month that is not `YYYY-MM`.
    func bill(_ tenant: String, month text: String) -> String? {
        guard let month = BillingMonth(parsing: text), let statement = statement(tenant, month: month) else { return nil }
        let totals = statement.totals.map { "<th>\(h($0.category))</th>" }.joined()
        let amounts = statement.totals.map { "<td>\($0.total.roundedToCents)</td>" }.joined()
        let lines = statement.lines.map { line -> String in
            "<tr><td>\(h(line.category))</td><td>\(h(line.address))</td><td>\(h(line.item))</td><td>\(line.unitPrice)/\(h(line.unit))</td>"
                + "<td>\(Calendar.UTC.format(line.start))</td><td>\(Calendar.UTC.format(line.end))</td><td>\(Statement.quantity(line.quantityMicros))</td><td>\(line.total.roundedToCents)</td></tr>"
        }.joined()
        let months = (0..<6).reduce(into: [BillingMonth(containing: now)]) { list, _ in list.append(list.last!.previous) }
            .map { $0 == month ? "<b>\($0)</b>" : "<a href=\"/console/bills/\($0)\">\($0)</a>" }.joined(separator: " ")
        return page(tenant, "Bill \(month)", """
            <p id="months">\(months)</p>
            <table id="totals"><tr>\(totals)<th>total</th></tr><tr>\(amounts)<td>\(statement.charges.roundedToCents)</td></tr></table>
            <p>Currency \(h(statement.currency)). Paid by coupons \(statement.paidByCoupons.roundedToCents), by deposits \(statement.paidByDeposits.roundedToCents);
            owed \(statement.owed.roundedToCents); balance at the month's end \(statement.balance.roundedToCents).</p>
            <p><a id="csv" href="/console/bills/\(month).csv">Download CSV</a></p>
            <table id="lines"><tr><th>Category</th><th>Resource</th><th>Item</th><th>Unit price</th><th>Start</th><th>End</th><th>Quantity</th><th>Total</th></tr>\(lines)</table>
            """)
    }

    /// The statement's line items as CSV (formula cells neutralised); nil for a month that is not `YYYY-MM`.
    func billCSV(_ tenant: String, month text: String) -> String? {
        guard let month = BillingMonth(parsing: text), let statement = statement(tenant, month: month) else { return nil }
        return Statement.csvHeader + statement.csvRows
    }

    /// The account: this month's charges so far, deposits and coupon credit.
    func account(_ tenant: String, model: DesiredModel) -> String {
        guard let statement = statement(tenant, month: BillingMonth(containing: now)) else { return "" }
        return """
            <h2>Account</h2><table id="account"><tr><th>This month so far</th><td>\(statement.charges.roundedToCents)</td></tr>
            <tr><th>Deposit</th><td>\(statement.depositBalance.roundedToCents)</td></tr><tr><th>Coupon credit</th><td>\(statement.couponCredit.roundedToCents)</td></tr>
            <tr><th>Balance</th><td>\(statement.balance.roundedToCents) \(h(statement.currency))</td></tr></table>
            """
    }

    /// `tenant`'s statement for `month`, from the ledger's rows of that tenant only.
    func statement(_ tenant: String, month: BillingMonth) -> Statement? {
        guard let model = loaded?.model, let store = try? configuration.store.existing() else { return nil }
        var book = PriceBook()
        for list in model.priceLists { book.add(list.name, from: .min, Prices(list.spec)) }
        let biller = Biller(intervals: (try? store.meterIntervals(tenant: tenant)) ?? [], traffic: (try? store.trafficUsage(tenant: tenant)) ?? [],
                            accounts: (try? store.accountEntries(tenant: tenant)) ?? [], book: book, now: store.now)
        return biller.statement(tenant, month: month)
    }
}
