import Billing
import Dispatch
import Foundation
import Manifests
import Planning
import Reconcile
import StateSQLite

/// The HTML dashboard: regions → nodes → instances with their state (observed when the page is asked for), each
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
        .failed{color:#b00}.converged{color:#070}nav a{margin-right:1em}</style></head>
        <body><nav><a href="/">Regions</a><a href="/runs">Runs</a></nav><h1>\(escape(title))</h1>
        \(body)
        </body></html>

        """
    }

    func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
            .replacingOccurrences(of: "\"", with: "&quot;")
    }

    func home() -> String {
        var rows = ""
        for region in state.snapshot {
            rows += "<tr id=\"region-\(escape(region.region))\"><td><a href=\"/regions/\(escape(region.region))\">\(escape(region.region))</a></td>"
            rows += "<td>\(String((region.desiredRevision ?? "-").prefix(12)))</td><td>\(String((region.appliedRevision ?? "-").prefix(12)))</td>"
            rows += "<td class=\"\(region.lastResult ?? "")\">\(region.paused ? "paused" : region.running ? "running" : region.lastResult ?? "not yet run")</td>"
            rows += "<td>\(region.drift)</td><td>\(region.runs)</td><td>\(escape(region.lastError ?? ""))</td></tr>\n"
        }
        return page("Regions", """
            <p>Following <code>\(escape(configuration.branch))</code> of <code>\(escape(configuration.repository))</code>; webhooks accepted \(state.webhookAccepted), rejected \(state.webhookRejected).</p>
            <table id="regions"><tr><th>Region</th><th>Desired</th><th>Applied</th><th>State</th><th>Changes last run</th><th>Runs</th><th>Last error</th></tr>
            \(rows)</table>
            """)
    }

    /// The model at the revision the service is converging to.
    func model() -> LoadResult? {
        guard let revision = state.snapshot.compactMap(\.desiredRevision).first else { return nil }
        return try? Loader().load(GitSource(repository: configuration.repository, revision: revision))
    }

    func region(_ name: String, page number: Int) async -> String {
        let configuration = self.configuration
        return await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(returning: regionPage(name, page: number, configuration: configuration))
            }
        }
    }

    private func regionPage(_ name: String, page number: Int, configuration: ServiceConfiguration) -> String {
        guard let loaded = model(), loaded.model.regions.contains(where: { $0.name == name }) else { return page("Region \(name)", "<p>No such region.</p>") }
        do {
            var reconciler = Reconciler(model: loaded.model, revision: loaded.revision, stateDirectory: configuration.stateDirectory,
                                        state: try SQLiteState.existing(directory: configuration.stateDirectory))
            reconciler.sshIdentity = configuration.sshIdentity
            let drivers = try reconciler.drivers(for: [name])
            let observed = try reconciler.observe(drivers)
            let plan = try reconciler.plan(regions: [name], observed: observed, drivers: drivers)
            var nodes = ""
            for node in observed.sorted(by: { $0.address < $1.address }) {
                nodes += "<tr><td>\(escape(node.address.name))</td><td>\(node.domains.count)</td><td>\(node.cpus)</td><td>\(node.memoryKiB >> 20) GiB</td><td>\(node.firewall?.rules.count ?? 0)</td></tr>\n"
            }
            let domains = observed.flatMap { node in node.domains.map { (node.address.name, $0) } }.sorted { $0.1.name < $1.1.name }
            let pages = max(1, (domains.count + Self.pageSize - 1) / Self.pageSize)
            let shown = domains.dropFirst((min(number, pages) - 1) * Self.pageSize).prefix(Self.pageSize)
            var instances = ""
            for (node, domain) in shown {
                instances += "<tr class=\"instance\"><td>\(escape(domain.address?.description ?? domain.name))</td><td>\(escape(node))</td><td>\(domain.state.rawValue)</td>"
                instances += "<td>\(domain.ip.map { "\($0)" } ?? "")</td><td>\(escape(domain.flavor ?? ""))</td></tr>\n"
            }
            let changes = plan.changes.isEmpty ? "<p id=\"plan\">No changes: the region is converged.</p>"
                : "<ul id=\"plan\">" + plan.changes.map { "<li>\($0.action.rawValue) \(escape($0.address.description)) on \(escape($0.target.description)) (\(escape($0.reason.rawValue)))</li>" }.joined() + "</ul>"
            let rings = (try? reconciler.ringPlans(region: name))?.map { "<li>\(escape($0.ring.name)): balance \(String(format: "%.2f", $0.plan.balanceAfter)) %, \($0.plan.state.settled ? "settled" : "settling")</li>" }.joined() ?? ""
            let pager = (1...pages).map { $0 == number ? "<b>\($0)</b>" : "<a href=\"?page=\($0)\">\($0)</a>" }.prefix(50).joined(separator: " ")
            return page("Region \(name)", """
                <h2>Nodes</h2><table id="nodes"><tr><th>Node</th><th>Domains</th><th>CPUs</th><th>Memory</th><th>Firewall rules</th></tr>\(nodes)</table>
                <h2>Instances (\(domains.count), page \(min(number, pages)) of \(pages))</h2>
                <table id="instances"><tr><th>Instance</th><th>Node</th><th>State</th><th>IP</th><th>Flavor</th></tr>\(instances)</table>
                <p class="pager">\(pager)</p>
                <h2>Current plan</h2>\(changes)
                <h2>Rings</h2><ul id="rings">\(rings)</ul>
                """)
        } catch {
            return page("Region \(name)", "<p class=\"failed\">Cannot observe the region: \(escape("\(error)"))</p>")
        }
    }

    func tenant(_ name: String) async -> String {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(returning: tenantPage(name)) }
        }
    }

    private func tenantPage(_ name: String) -> String {
        guard let loaded = model(), loaded.model.tenants.contains(where: { $0.name == name }) else { return page("Tenant \(name)", "<p>No such tenant.</p>") }
        let model = loaded.model
        var resources = ""
        for instance in model.instances where instance.tenant == name { resources += "<li>\(escape(instance.address.description)) \(escape(instance.spec.flavor.value))</li>" }
        for volume in model.volumes where volume.tenant == name { resources += "<li>\(escape(volume.address.description)) \(volume.spec.size.value)</li>" }
        for floating in model.floatingIPs where floating.tenant == name { resources += "<li>\(escape(floating.address.description))</li>" }
        var statement = ""
        if let store = try? SQLiteState.existing(directory: configuration.stateDirectory) {
            var book = PriceBook()
            for list in model.priceLists { book.add(list.name, from: .min, Prices(list.spec)) }
            let biller = Biller(intervals: (try? store.meterIntervals(tenant: name)) ?? [], accounts: (try? store.accountEntries(tenant: name)) ?? [], book: book, now: store.now)
            let month = BillingMonth(containing: store.now)
            let bill = biller.statement(name, month: month)
            statement = "<h2>Statement \(month) (\(escape(bill.currency)))</h2><table id=\"statement\">"
                + bill.totals.sorted { $0.key < $1.key }.map { "<tr><td>\(escape($0.key))</td><td>\($0.value.roundedToCents)</td></tr>" }.joined()
                + "<tr><th>total</th><th>\(bill.charges.roundedToCents)</th></tr><tr><td>balance</td><td>\(bill.balance.roundedToCents)</td></tr></table>"
        }
        return page("Tenant \(name)", "<h2>Resources</h2><ul id=\"resources\">\(resources)</ul>\(statement)")
    }

    func runs() -> String {
        guard let store = try? SQLiteState.existing(directory: configuration.stateDirectory) else { return page("Runs", "<p>Nothing has run yet.</p>") }
        let runs = ((try? store.runs()) ?? []).suffix(100).reversed().map { "<tr><td>\($0.id)</td><td>\(escape($0.regions))</td><td>\(escape($0.status))</td></tr>" }.joined()
        let pipelines = ((try? store.pipelineRuns(limit: 50)) ?? []).map {
            "<tr><td>\($0.id ?? 0)</td><td>\(escape($0.kind))</td><td>\(escape($0.subject))</td><td>\($0.verdict > 0 ? "+1" : "-1")</td><td>\(String(format: "%.1f", $0.seconds)) s</td></tr>"
        }.joined()
        return page("Runs", """
            <h2>Apply runs</h2><table id="runs"><tr><th>Run</th><th>Regions</th><th>Status</th></tr>\(runs)</table>
            <h2>Pipelines</h2><table id="pipelines"><tr><th>Run</th><th>Kind</th><th>Subject</th><th>Verdict</th><th>Time</th></tr>\(pipelines)</table>
            """)
    }
}
