import Billing
import Dispatch
import Foundation
import Drivers
import ManifestSources
import Manifests
import Planning
import Reconcile
import State
import StateStores

/// The HTML dashboard: regions → nodes → instances with their state (as the loop last observed it: a page never asks
/// a node, so a hung node or a flood of page views cannot hold the service's threads), each
/// region's current plan and ring balance, runs and pipeline history, and a tenant page with its resources and this
/// month's statement. Instance lists are paged (100 a page): a region of 100,000 instances is never sent at once.
struct Dashboard: Sendable {
    let configuration: ServiceConfiguration
    let state: ServiceState
    static let pageSize = 100

    func page(_ title: String, _ body: String) -> String {
        """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><title>\(escape(title)) · StackLab</title>
        <style>body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}
        .failed,.stopped{color:#b00}.converged{color:#070}nav a{margin-right:1em}</style></head>
        <body><nav><a href="/">Regions</a><a href="/runs">Runs</a><form method="post" action="/logout" style="display:inline"><button>Log out</button></form></nav><h1>\(escape(title))</h1>
        \(body)
        </body></html>

        """
    }

    /// The login form: the operator or read-only token starts a browser session.
    static func login(next: String, failed: Bool) -> String {
        let escaped = Dashboard.escapeHTML(next)
        return """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><title>Log in · StackLab</title>
            <style>body{font-family:sans-serif;margin:1.5em}.failed{color:#b00}</style></head>
            <body><h1>StackLab</h1>
            \(failed ? "<p class=\"failed\" id=\"failed\">That token is not one of this service's.</p>" : "")
            <form method="post" action="/login">
            <label>Token <input type="password" name="token" autocomplete="current-password" autofocus></label>
            <input type="hidden" name="next" value="\(escaped)">
            <button>Log in</button>
            </form>
            <p>The operator token, or the read-only token given to <code>stacklab serve --read-token-file</code>.</p>
            </body></html>

            """
    }

    func escape(_ text: String) -> String { Self.escapeHTML(text) }

    static func escapeHTML(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
            .replacingOccurrences(of: "\"", with: "&quot;")
    }

    func home() -> String {
        var rows = ""
        for region in state.snapshot {
            rows += "<tr id=\"region-\(escape(region.region))\"><td><a href=\"/regions/\(escape(region.region))\">\(escape(region.region))</a></td>"
            rows += "<td>\(String((region.desiredRevision ?? "-").prefix(12)))</td><td>\(String((region.appliedRevision ?? "-").prefix(12)))</td>"
            rows += "<td class=\"\(region.lastResult ?? "")\">\(region.paused ? "paused" : region.running ? "running" : region.lastResult ?? "not yet run")</td>"
            rows += "<td>\(region.drift)</td><td>\(region.runs)</td><td>\(escape(region.releasedBy ?? "the branch"))</td><td>\(escape(region.lastError ?? ""))</td></tr>\n"
        }
        var deploy = ""
        if let run = state.deploy {
            let steps = run.steps.map { "<tr class=\"\($0.status)\"><td>\(escape($0.name))</td><td>\($0.status)</td><td>\(escape($0.message))</td></tr>" }.joined()
            deploy = """
                <h2>Deploy of \(run.revision.prefix(12)) (\(escape(run.pipeline))): \(run.state)</h2>
                <table id="deploy"><tr><th>Step</th><th>Status</th><th>What happened</th></tr>\(steps)</table>
                """
        }
        return page("Regions", """
            <p>Following <code>\(escape(configuration.branch))</code> of <code>\(escape(configuration.repository))</code>; webhooks accepted \(state.webhookAccepted), rejected \(state.webhookRejected).</p>
            <table id="regions"><tr><th>Region</th><th>Desired</th><th>Applied</th><th>State</th><th>Changes last run</th><th>Runs</th><th>Released by</th><th>Last error</th></tr>
            \(rows)</table>
            \(deploy)
            """)
    }

    /// The model at the revision the service is converging `region` to (the branch's as the loop last read it, when nil).
    func model(region: String? = nil) -> LoadResult? {
        if region == nil, let latest = state.loadedModel { return latest.loaded }
        guard let revision = region.flatMap({ state.region($0)?.desiredRevision }) ?? state.snapshot.compactMap(\.desiredRevision).first else { return nil }
        let repository = configuration.repository
        return try? state.model(revision) { try Loader().load(GitSource(repository: repository, revision: revision)) }
    }

    func region(_ name: String, page number: Int) async -> String {
        let configuration = self.configuration
        return await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(returning: regionPage(name, page: number, configuration: configuration))
            }
        }
    }

    /// A region's page: its nodes, one page of its instances (from the manifests, sorted, with their state as
    /// observed), what its last run planned, and its rings.
    private func regionPage(_ name: String, page number: Int, configuration: ServiceConfiguration) -> String {
        guard let loaded = model(region: name), loaded.model.regions.contains(where: { $0.name == name }) else { return page("Region \(name)", "<p>No such region.</p>") }
        let instances = loaded.model.instances.filter { $0.region == name }.sorted { $0.address < $1.address }
        let pages = max(1, (instances.count + Self.pageSize - 1) / Self.pageSize)
        let current = min(number, pages)
        let shown = Array(instances.dropFirst((current - 1) * Self.pageSize).prefix(Self.pageSize))
        // What the loop last observed of the region (never a node asked for this page).
        let observation = state.observation(name)
        let domains = loaded.model.regions.first { $0.name == name }?.spec.publicDomains?.value
        var nodes = ""
        for node in loaded.model.nodes.filter({ $0.region == name }).sorted(by: { $0.name < $1.name }).prefix(200) {
            nodes += "<tr><td>\(escape(node.name))</td><td>\(node.spec.roles.value.map(\.value.rawValue).joined(separator: ", "))</td><td>\(node.spec.cpus.value)</td><td>\(node.spec.memory.value)</td></tr>\n"
        }
        var rows = ""
        for instance in shown {
            let found = observation?.instances[instance.address]
            rows += "<tr class=\"instance\"><td><a href=\"/regions/\(escape(name))/instances/\(escape(instance.tenant ?? ""))/\(escape(instance.name))\">\(escape(instance.address.description))</a>"
            rows += " (<a href=\"/tenants/\(escape(instance.tenant ?? ""))\">\(escape(instance.tenant ?? ""))</a>)</td>"
            rows += "<td>\(escape(found?.node ?? "-"))</td>"
            rows += "<td class=\"state\">\(found?.state.rawValue ?? (observation == nil ? "not observed yet" : "not running"))</td><td>\(found?.ip.map { "\($0)" } ?? "")</td><td>\(escape(instance.spec.flavor.value))</td>"
            let publicPort = observation?.publicPorts[instance.address]
            rows += "<td class=\"domain\">\(publicPort.flatMap { port in domains.map { escape("\(PublicDomain.name(for: instance.address, domains: $0)):\(port)") } } ?? "")</td>"
            let cpu = state.usage.usage(of: instance.address).map { $0.simulated ? "simulated" : String(format: "%.1f s", $0.cpuSeconds) }
            rows += "<td class=\"cpu\">\(cpu ?? "")</td></tr>\n"
        }
        let status = state.region(name)
        let lastPlan = status?.lastPlan ?? []
        let plan = lastPlan.isEmpty ? "<p id=\"plan\">No run has changed anything yet.</p>" :
            "<p>At \(escape(status?.lastPlanRevision.map { String($0.prefix(12)) } ?? "")), \(status?.lastPlanAt.map { Date(timeIntervalSince1970: $0).formatted(.iso8601) } ?? ""); each change with the manifest line behind it:</p>"
            + "<ul id=\"plan\">" + lastPlan.map { "<li>\(escape($0))</li>" }.joined() + "</ul>"
        let rings = (state.region(name)?.rings ?? []).map { "<li>\(escape($0))</li>" }.joined()
        let window = max(1, current - 5)...min(pages, current + 5)
        let pager = ([1] + Array(window) + [pages]).reduce(into: [Int]()) { if !$0.contains($1) { $0.append($1) } }
            .map { $0 == current ? "<b>\($0)</b>" : "<a href=\"?page=\($0)\">\($0)</a>" }.joined(separator: " ")
        return page("Region \(name)", """
            <h2>Nodes</h2><table id="nodes"><tr><th>Node</th><th>Roles</th><th>CPUs</th><th>Memory</th></tr>\(nodes)</table>
            <h2>Instances (\(instances.count), page \(current) of \(pages))</h2>
            <p id="observed">\(observation.map { "As the service last observed \($0.nodes) nodes, at \(Date(timeIntervalSince1970: $0.at).formatted(.iso8601))." } ?? "The service has not observed this region yet.")</p>
            <table id="instances"><tr><th>Instance</th><th>Node</th><th>State</th><th>IP</th><th>Flavor</th><th>Public domain</th><th>CPU time</th></tr>\(rows)</table>
            <p class="pager">\(pager)</p>
            <h2>The last changes</h2>\(plan)
            <h2>Rings</h2><ul id="rings">\(rings)</ul>
            """)
    }

    /// An instance's page: its graphs over `range` from the configured Prometheus, or its counters as last read.
    func instance(_ address: Address, range: InstanceGraphs.Range) async -> String {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(returning: instancePage(address, range: range)) }
        }
    }

    private func instancePage(_ address: Address, range: InstanceGraphs.Range) -> String {
        guard let loaded = model(region: address.region ?? ""), loaded.model.instances.contains(where: { $0.address == address }) else {
            return page("No instance \(address)", "<p id=\"missing\">The manifests have no \(escape(address.description)).</p>")
        }
        let links = InstanceGraphs.Range.allCases.map { $0 == range ? "<b>\($0.rawValue)</b>" : "<a href=\"?range=\($0.rawValue)\">\($0.rawValue)</a>" }.joined(separator: " ")
        var body = "<p class=\"ranges\">\(links)</p>\n"
        if let prometheus = configuration.prometheus {
            do {
                let graphs = try InstanceGraphs.graphs(of: address, range: range, end: Int(Date().timeIntervalSince1970), prometheus: prometheus)
                body += "<div id=\"graphs\">\n" + graphs.map(InstanceGraphs.svg).joined() + "</div>"
                let watching = loaded.model.alarms.filter { $0.region == address.region && $0.tenant == address.tenant && $0.spec.instances.value.contains { $0.value == address.name } }
                if !watching.isEmpty {
                    let states = try AlarmState.read(watching, prometheus: prometheus)
                    body += "<h2>Alarms</h2><ul id=\"alarms\">" + states.map { "<li>\(escape($0.alarm)): \(escape($0.instances[address.name] ?? "ok"))</li>" }.joined() + "</ul>"
                }
            } catch {
                body += "<p id=\"graphs-error\">No graphs: \(escape("\(error)"))</p>"
            }
        } else {
            body += "<p id=\"no-prometheus\">No Prometheus is configured (<code>stacklab serve --prometheus URL</code>, see <code>stacklab monitoring config</code>): the counters as last read.</p>"
            if let usage = state.usage.usage(of: address) {
                body += "<table id=\"counters\"><tr><th>CPU time</th><th>Disk read</th><th>Disk written</th><th>Network in</th><th>Network out</th></tr>"
                body += "<tr><td>\(usage.simulated ? "simulated" : String(format: "%.1f s", usage.cpuSeconds))</td><td>\(usage.diskReadBytes)</td><td>\(usage.diskWriteBytes)</td>"
                body += "<td>\(usage.networkReceivedBytes)</td><td>\(usage.networkSentBytes)</td></tr></table>"
            } else {
                body += "<p id=\"counters\">Not read yet (the instance is not running, or the usage monitor has not come round).</p>"
            }
        }
        return page("Instance \(address)", body)
    }

    func tenant(_ name: String) async -> String {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(returning: tenantPage(name)) }
        }
    }

    /// Whether the manifests the service runs are read and do not declare `tenant` (before the first read, nobody
    /// can say: the page says what it can).
    func lacksTenant(_ name: String) -> Bool {
        model().map { !$0.model.tenants.contains { $0.name == name } } ?? false
    }

    /// The page for a region or tenant the manifests do not have (sent with 404).
    func missing(_ kind: String, _ name: String) -> String {
        page("No \(kind) \(name)", "<p id=\"missing\">The manifests have no \(kind) named \(escape(name)).</p>")
    }

    private func tenantPage(_ name: String) -> String {
        guard let loaded = model(), loaded.model.tenants.contains(where: { $0.name == name }) else { return page("Tenant \(name)", "<p>No such tenant.</p>") }
        let model = loaded.model
        var resources = ""
        for instance in model.instances where instance.tenant == name { resources += "<li>\(escape(instance.address.description)) \(escape(instance.spec.flavor.value))</li>" }
        for volume in model.volumes where volume.tenant == name { resources += "<li>\(escape(volume.address.description)) \(volume.spec.size.value)</li>" }
        for floating in model.floatingIPs where floating.tenant == name { resources += "<li>\(escape(floating.address.description))</li>" }
        for balancer in model.loadBalancers where balancer.tenant == name {
            let domains = model.regions.first { $0.name == balancer.region }?.spec.publicDomains?.value
            let host = domains.map { PublicDomain.name(forBalancer: balancer.address, domains: $0) } ?? ""
            resources += "<li>\(escape(balancer.address.description)) \(escape(host)) → \(escape(balancer.spec.members.value.map(\.value).joined(separator: ", ")))</li>"
        }
        var statement = ""
        if let store = try? configuration.store.existing() {
            let month = BillingMonth(containing: store.now)
            let bill = Self.statement(name, month: month, book: priceBook(loaded), store: store)
            statement = "<h2>Statement \(month) (\(escape(bill.currency)))</h2><table id=\"statement\">"
                + bill.totals.map { "<tr><td>\(escape($0.category))</td><td>\($0.total.roundedToCents)</td></tr>" }.joined()
                + "<tr><th>total</th><th>\(bill.charges.roundedToCents)</th></tr><tr><td>balance</td><td>\(bill.balance.roundedToCents)</td></tr></table>"
        }
        return page("Tenant \(name)", "<h2>Resources</h2><ul id=\"resources\">\(resources)</ul>\(statement)")
    }

    /// Every price list's history along the branch up to `loaded`'s revision, as `stacklab bill` rates with it: a change
    /// of prices applies from its commit on, never to what came before. Read once per revision; when the history cannot
    /// be read, the lists of `loaded` in force since forever.
    func priceBook(_ loaded: LoadResult) -> PriceBook {
        let (repository, branch) = (configuration.repository, configuration.branch)
        return state.priceBook(loaded.revision) {
            var book = PriceBook()
            do {
                for version in try PriceListHistory.read(repository: repository, revision: loaded.revision ?? branch) {
                    for list in version.priceLists { book.add(list.name, from: version.time, Prices(list.spec)) }
                }
            } catch {
                for list in loaded.model.priceLists { book.add(list.name, from: .min, Prices(list.spec)) }
            }
            return book
        }
    }

    /// `tenant`'s statement for `month`, from the ledger's rows of that tenant only, rated with `book` (the dashboard and
    /// the tenant console alike).
    static func statement(_ tenant: String, month: BillingMonth, book: PriceBook, store: any StateBackend) -> Statement {
        let biller = Biller(intervals: (try? store.meterIntervals(tenant: tenant)) ?? [], traffic: (try? store.trafficUsage(tenant: tenant)) ?? [],
                            storage: (try? store.storageUsage(tenant: tenant)) ?? [],
                            accounts: (try? store.accountEntries(tenant: tenant)) ?? [], book: book, now: store.now)
        return biller.statement(tenant, month: month)
    }

    func runs() -> String {
        guard let store = try? configuration.store.existing() else { return page("Runs", "<p>Nothing has run yet.</p>") }
        let runs = ((try? store.runs()) ?? []).suffix(100).reversed().map { "<tr><td>\($0.id)</td><td>\(escape($0.regions.joined(separator: ", ")))</td><td>\($0.status.rawValue)</td></tr>" }.joined()
        let pipelines = ((try? store.pipelineRuns(limit: 50)) ?? []).map {
            "<tr><td>\($0.id ?? 0)</td><td>\($0.kind.rawValue)</td><td>\(escape($0.subject))</td><td>\($0.commit.prefix(12))</td><td>\($0.verdict.label)</td><td>\(String(format: "%.1f", $0.seconds)) s</td></tr>"
        }.joined()
        return page("Runs", """
            <h2>Apply runs</h2><table id="runs"><tr><th>Run</th><th>Regions</th><th>Status</th></tr>\(runs)</table>
            <h2>Pipelines</h2><table id="pipelines"><tr><th>Run</th><th>Kind</th><th>Subject</th><th>Commit</th><th>Verdict</th><th>Time</th></tr>\(pipelines)</table>
            """)
    }
}
