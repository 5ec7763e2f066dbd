import Foundation
import Hummingbird
import Logging
import Manifests
import Metrics
import NIOCore
import Pipelines
import Planning
import Prometheus
import Reconcile
import ServiceLifecycle

/// `stacklab serve`: the HTTP face (status, metrics, webhooks, sync/pause/resume, dashboard) and the reconcile loop,
/// run together under one service group (SIGTERM and SIGINT shut down gracefully: the region in flight finishes).
public struct GitOpsServer: Sendable {
    public var configuration: ServiceConfiguration
    public var host: String
    public var port: Int
    public var registry: PrometheusCollectorRegistry

    public init(configuration: ServiceConfiguration, host: String, port: Int, registry: PrometheusCollectorRegistry) {
        self.configuration = configuration
        self.host = host
        self.port = port
        self.registry = registry
    }

    public func run(ready: @escaping @Sendable (Int) -> Void = { _ in }) async throws {
        var logger = Logger(label: "stacklab-serve")
        logger.logLevel = .info
        let state = ServiceState(stateDirectory: configuration.stateDirectory, cacheRegions: configuration.cacheRegions, environment: configuration.environment)
        let router = Router(context: ServiceRequestContext.self)
        routes(router, state: state)
        let app = Application(router: router, configuration: .init(address: .hostname(host, port: port), serverName: "stacklab"),
                              onServerRunning: { channel in ready(channel.localAddress?.port ?? 0) }, logger: logger)
        let loop = ReconcileLoop(configuration: configuration, state: state, logger: logger)
        let usage = UsageMonitor(configuration: configuration, state: state, logger: logger)
        let group = ServiceGroup(configuration: .init(services: [app, loop, usage], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }

    /// Every route the service answers (`GET /console/bills/{month}`), read from the router's own table: what the
    /// console's isolation test walks, so a route added later cannot be missed.
    public static func routeTable(_ configuration: ServiceConfiguration) -> [(method: String, path: String)] {
        let server = GitOpsServer(configuration: configuration, host: "127.0.0.1", port: 0, registry: PrometheusCollectorRegistry())
        let router = Router(context: ServiceRequestContext.self)
        server.routes(router, state: ServiceState(stateDirectory: configuration.stateDirectory, cacheRegions: 1, environment: configuration.environment))
        return router.routes.map { ("\($0.method)", "\($0.path)") }
    }

    /// Pages of one client rendered at once (statements, instance lists).
    static let pagesPerClient = 8

    func routes(_ router: Router<ServiceRequestContext>, state: ServiceState) {
        let configuration = self.configuration
        let registry = self.registry
        let access = OperatorAccess(secrets: configuration.secrets)
        // Open: liveness (nothing about regions or tenants), the login form, and webhooks (which carry their own HMAC).
        router.get("/healthz") { _, _ in Self.text(.ok, "ok\n") }
        router.get("/login") { request, _ in
            Self.html(Dashboard.login(next: Self.localPath(request.uri.queryParameters.get("next")), failed: false))
        }
        router.post("/login") { request, _ in
            let form = String(buffer: try await request.body.collect(upTo: 16 << 10))
            let fields = Self.formFields(form)
            let next = Self.localPath(fields["next"])
            guard let session = access.login(token: fields["token"] ?? "") else {
                var response = Self.html(Dashboard.login(next: next, failed: true))
                response.status = .unauthorized
                return response
            }
            return Self.seeOther(next, cookie: .init(name: OperatorAccess.cookie, value: session.id, maxAge: Int(OperatorAccess.sessionLifetime), path: "/",
                                                     secure: false, httpOnly: true, sameSite: .lax))
        }
        router.post("/logout") { request, _ in
            if let id = request.cookies[OperatorAccess.cookie]?.value { access.logout(id) }
            return Self.seeOther("/login", cookie: .init(name: OperatorAccess.cookie, value: "", maxAge: 0, path: "/", secure: false, httpOnly: true, sameSite: .lax))
        }
        router.post("/hooks/git") { request, _ in
            let body = Array(buffer: try await request.body.collect(upTo: 1 << 20))
            let signature = Self.header(request, "x-hub-signature-256")
            let delivery = Self.header(request, "x-github-delivery") ?? Self.header(request, "x-gitea-delivery") ?? Self.header(request, "x-stacklab-delivery")
            guard Webhooks.verify(body, header: signature, secret: configuration.secrets.webhookSecret) else {
                state.countWebhook(accepted: false)
                ServiceMetrics.webhookDeliveries(result: signature == nil ? "unsigned" : "bad-signature").increment()
                return Self.text(.unauthorized, "the delivery is unsigned or wrongly signed\n")
            }
            guard let delivery, state.firstDelivery(delivery) else {
                state.countWebhook(accepted: false)
                ServiceMetrics.webhookDeliveries(result: "replayed").increment()
                return Self.text(.conflict, "the delivery has no id, or was delivered before (a replay)\n")
            }
            state.countWebhook(accepted: true)
            ServiceMetrics.webhookDeliveries(result: "accepted").increment()
            let branch = Webhooks.branch(of: body)
            if branch == nil || branch == configuration.branch { state.notify() }
            return Self.text(.accepted, branch == nil || branch == configuration.branch ? "accepted: looking at \(configuration.branch) now\n" : "accepted: not \(configuration.branch), ignored\n")
        }

        // Changes: the operator token, as a bearer token only (a browser's cookie never makes a change).
        let operate = router.group().add(middleware: RequireGrant(access: access, needed: .operate))
        operate.post("/api/regions/:region/:action") { _, context in
            let region = try context.parameters.require("region")
            guard state.region(region) != nil else { return Self.text(.notFound, "no region '\(region)'\n") }
            let action = try context.parameters.require("action")
            let requestedAt = Date().timeIntervalSince1970
            switch action {
            case "sync": state.update(region) { $0.nextAttemptAt = nil }; state.notify(sync: region)
            case "pause": state.update(region) { $0.paused = true }
            case "resume": state.update(region) { $0.paused = false; $0.nextAttemptAt = nil }; state.notify(sync: region)
            default: return Self.text(.notFound, "actions are sync, pause, resume\n")
            }
            // What was asked and when, beside the region as it stands now: a sync or resume has only been asked for (the
            // run that follows starts after requestedAt; `stacklab region sync --wait` waits for it).
            return Self.json(try Self.encode(ServiceState.RegionRequest(region: region, action: action, requestedAt: requestedAt, state: state.region(region))) + "\n")
        }
        operate.post("/api/deploy/approve") { request, _ in
            // ?revision=PREFIX (default: the deploy waiting) &by=NAME (who approves, kept in the step's message).
            let revision = request.uri.queryParameters.get("revision").map { String($0) }
            let person = request.uri.queryParameters.get("by").map { String($0) } ?? "an operator"
            do {
                let record = try DeployRollout.approve(revision: revision, by: person, store: try configuration.store.open())
                state.notify()
                return Self.text(.ok, "approved the deploy of \(record.commit.prefix(12)); it goes on\n")
            } catch let refused as DeployRollout.NothingToApprove {
                return Self.text(.conflict, "\(refused)\n")
            }
        }

        // Reading: the operator or read-only token, or a browser session.
        let read = router.group().add(middleware: RequireGrant(access: access, needed: .read))
        read.get("/api/status") { request, _ in
            // ?region=NAME (repeatable): only those regions, for clients that watch a few of many.
            let only = request.uri.queryParameters.getAll("region")
            return Self.json(try Self.encode(Status(configuration: configuration, state: state, only: only.isEmpty ? nil : Set(only))))
        }
        read.get("/metrics") { _, _ in
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            var buffer = ByteBuffer(bytes: registry.emitToBuffer())
            buffer.writeString(state.usage.exposition())
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: buffer))
        }
        let dashboard = Dashboard(configuration: configuration, state: state)
        let pages = read.group().add(middleware: ClientLimit<ServiceRequestContext>(limit: Self.pagesPerClient))
        pages.get("/") { _, _ in Self.html(dashboard.home()) }
        pages.get("/regions/:region") { request, context in
            let page = request.uri.queryParameters.get("page", as: Int.self) ?? 1
            let region = try context.parameters.require("region")
            guard state.region(region) != nil else { return Self.html(dashboard.missing("region", region), status: .notFound) }
            return Self.html(await dashboard.region(region, page: max(1, page)))
        }
        pages.get("/regions/:region/instances/:tenant/:instance") { request, context in
            let address = Address(kind: .instance, region: try context.parameters.require("region"), tenant: try context.parameters.require("tenant"),
                                  name: try context.parameters.require("instance"))
            let range = request.uri.queryParameters.get("range").flatMap(InstanceGraphs.Range.init(rawValue:)) ?? .hour
            return Self.html(await dashboard.instance(address, range: range))
        }
        pages.get("/tenants/:tenant") { _, context in
            let tenant = try context.parameters.require("tenant")
            guard !dashboard.lacksTenant(tenant) else { return Self.html(dashboard.missing("tenant", tenant), status: .notFound) }
            return Self.html(await dashboard.tenant(tenant))
        }
        pages.get("/runs") { _, _ in Self.html(dashboard.runs()) }
        consoleRoutes(router, state: state, dashboard: dashboard)
    }

    /// The tenant console under `/console/`: its own login (a tenant's name and token), then only that tenant's pages.
    func consoleRoutes(_ router: Router<ServiceRequestContext>, state: ServiceState, dashboard: Dashboard) {
        let tenants = TenantAccess(digests: {
            var digests: [String: [String]] = [:]
            for tenant in state.loadedModel?.loaded.model.tenants ?? [] { digests[tenant.name] = tenant.spec.console?.tokens.map(\.sha256.value) ?? [] }
            return digests
        })
        let console = Console(configuration: configuration, state: state, dashboard: dashboard)
        let logger = Logger(label: "stacklab-console")
        router.get("/console/login") { _, _ in Self.html(Console.login(failed: false, limited: false)) }
        router.post("/console/login") { request, context in
            let fields = Self.formFields(String(buffer: try await request.body.collect(upTo: 16 << 10)))
            let source = context.remoteAddress?.ipAddress ?? "unknown"
            let tenant = fields["tenant"] ?? ""
            switch tenants.login(tenant: tenant, token: fields["token"] ?? "", from: source) {
            case .session(let id, _):
                return Self.seeOther("/console/", cookie: .init(name: TenantAccess.cookie, value: id, maxAge: Int(TenantAccess.sessionLifetime), path: "/console",
                                                                secure: false, httpOnly: true, sameSite: .strict))
            case .refused:
                logger.warning("console login refused", metadata: ["tenant": "\(tenant.prefix(64))", "from": "\(source)"])
                return Self.html(Console.login(failed: true, limited: false), status: .unauthorized)
            case .limited:
                logger.warning("console login refused: too many failures", metadata: ["from": "\(source)"])
                return Self.html(Console.login(failed: false, limited: true), status: .tooManyRequests)
            }
        }
        router.post("/console/logout") { request, _ in
            if let id = request.cookies[TenantAccess.cookie]?.value { tenants.logout(id) }
            return Self.seeOther("/console/login", cookie: .init(name: TenantAccess.cookie, value: "", maxAge: 0, path: "/console", secure: false, httpOnly: true,
                                                                 sameSite: .strict))
        }
        /// Answers for the logged-in tenant (the login page without a session; 404 for what the tenant does not own).
        @Sendable func tenantPage(_ request: Request, _ body: @escaping @Sendable (String) -> Response?) async -> Response {
            guard let tenant = tenants.tenant(request) else { return Self.seeOther("/console/login") }
            return await withCheckedContinuation { continuation in
                DispatchQueue.global().async {
                    continuation.resume(returning: body(tenant) ?? Self.html(Console.notFound, status: .notFound))
                }
            }
        }
        let pages = router.group("/console").add(middleware: ClientLimit<ServiceRequestContext>(limit: Self.pagesPerClient))
        pages.get("/") { request, _ in
            let region: String? = request.uri.queryParameters.get("region").map { String($0) }
            return await tenantPage(request) { tenant in console.overview(tenant, region: region).map { Self.html($0) } }
        }
        pages.get("/api/instances") { request, _ in
            // The tenant's instances (of ?region=, or all) as JSON: what the overview lists.
            let region: String? = request.uri.queryParameters.get("region").map { String($0) }
            return await tenantPage(request) { tenant in
                guard let loaded = console.loaded else { return Self.json("[]\n") }
                if let region, !loaded.model.regions.contains(where: { $0.name == region }) { return nil }
                return (try? Self.encode(console.instanceRows(tenant, region: region, loaded: loaded))).map { Self.json($0 + "\n") }
            }
        }
        pages.get("/instances/:region/:name") { request, context in
            let region = try context.parameters.require("region"), name = try context.parameters.require("name")
            return await tenantPage(request) { tenant in console.instance(tenant, region: region, name: name).map { Self.html($0) } }
        }
        pages.get("/runs/:run") { request, context in
            let run = try context.parameters.require("run")
            return await tenantPage(request) { tenant in console.run(tenant, run: run).map { Self.html($0) } }
        }
        pages.get("/bills/:month") { request, context in
            let month = try context.parameters.require("month")
            return await tenantPage(request) { tenant in
                if month.hasSuffix(".csv") {
                    return console.billCSV(tenant, month: String(month.dropLast(4))).map { csv in
                        var headers = HTTPFields()
                        headers[.contentType] = "text/csv; charset=utf-8"
                        headers[.contentDisposition] = "attachment; filename=\"statement-\(month)\""
                        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: csv)))
                    }
                }
                return console.bill(tenant, month: month).map { Self.html($0) }
            }
        }
    }

    /// A path on this service to return to after logging in: only a local absolute path (never `//host` or a URL), else `/`.
    static func localPath(_ text: Substring?) -> String {
        guard let text, text.hasPrefix("/"), !text.hasPrefix("//"), !text.contains("\\"), !text.contains(where: { $0.isNewline || $0 == "\r" }) else { return "/" }
        return String(text)
    }

    static func localPath(_ text: String?) -> String { localPath(text.map { Substring($0) }) }

    /// The fields of an `application/x-www-form-urlencoded` body.
    static func formFields(_ body: String) -> [String: String] {
        var fields: [String: String] = [:]
        for pair in body.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1).map { $0.replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? "" }
            if let name = parts.first { fields[name] = parts.count > 1 ? parts[1] : "" }
        }
        return fields
    }

    /// The status as JSON.
    struct Status: Encodable {
        var repository: String
        var branch: String
        var uptimeSeconds: Double
        var webhook: [String: Int]
        /// When the last accepted push notification arrived.
        var lastDeliveryAt: Double?
        var regions: [ServiceState.Region]
        var running: [String]
        /// The deploy pipeline's latest run (when `ci/` has a push-triggered pipeline for the branch).
        var deploy: ServiceState.Deploy?
        /// Each load-balancer node's backend servers as its HAProxy last reported them (`show stat`), by region and node.
        var loadBalancers: [String: [String: [ProxyServerHealth]]]

        init(configuration: ServiceConfiguration, state: ServiceState, only: Set<String>? = nil) {
            repository = configuration.repository
            branch = configuration.branch
            uptimeSeconds = Date().timeIntervalSince1970 - state.startedAt
            webhook = ["accepted": state.webhookAccepted, "rejected": state.webhookRejected]
            lastDeliveryAt = state.lastDeliveryAt
            regions = state.snapshot(only: only)
            running = regions.filter(\.running).map(\.region)
            deploy = state.deploy
            loadBalancers = state.usage.balancerHealth(only: only)
        }
    }

    /// A request header by its lower-case name.
    static func header(_ request: Request, _ name: String) -> String? {
        request.headers.first { $0.name.canonicalName == name }?.value
    }

    static func encode<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        return String(decoding: try encoder.encode(value), as: UTF8.self) + "\n"
    }

    static func json(_ text: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    static func text(_ status: HTTPResponse.Status, _ text: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "text/plain; charset=utf-8"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    /// A 303 to `location`, setting `cookie` when given.
    static func seeOther(_ location: String, cookie: Cookie? = nil) -> Response {
        var headers = HTTPFields()
        headers[.location] = location
        var response = Response(status: .seeOther, headers: headers)
        if let cookie { response.setCookie(cookie) }
        return response
    }

    static func html(_ text: String, status: HTTPResponse.Status = .ok) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "text/html; charset=utf-8"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }

}
