import Foundation
import Processes
import Service
import State
import StateSQLite
import TestSupport
import Testing

/// The tenant console of a real `stacklab serve`: tenants log in with tokens whose digests the manifests hold, and each
/// sees its own resources and nothing of anyone else's. The isolation walk takes the console's routes from the router's
/// own table and asks every one, as tenant acme, for tenant beta's names (plain, encoded, and as paths), expecting 404
/// and never a trace of beta, of a node or of a host address.
@Suite(.serialized) struct ConsoleTests {
    final class World {
        let service: ServiceTests.World
        var tokens: [String: String] = [:]

        init() throws {
            service = try ServiceTests.World(start: false)
            // Tenant beta, with an instance, a floating IP, a keypair and a group whose names say whose they are.
            try """
                kind: Tenant
                name: beta
                spec: {displayName: "Beta <Corp> & Sons"}
                ---
                kind: Keypair
                name: beta-key
                tenant: beta
                spec: {publicKey: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBetaKeyFixture0123456789abcdefgh beta@beta}
                ---
                kind: SecurityGroup
                name: beta-group
                tenant: beta
                spec: {rules: [{protocol: tcp, ports: 5432, cidr: 10.0.0.0/8}]}
                ---
                kind: Instance
                name: beta-secret-db
                region: lab
                tenant: beta
                spec: {flavor: m1.small, image: ubuntu, network: private, keypair: beta-key, securityGroups: [beta-group]}

                """.write(toFile: service.work + "/manifests/tenants/beta.yaml", atomically: true, encoding: .utf8)
            for (tenant, file) in [("acme", "acme.yaml"), ("beta", "beta.yaml")] {
                let minted = try StackLabBinary.run(["tenant", "token", tenant, "laptop", "--format", "json", "--repo", service.work])
                try #require(minted.status == 0, "\(minted.output)")
                struct Document: Decodable { struct Token: Decodable { var token: String?; var line: String }; var tokens: [Token] }
                let token = try #require(try JSONDecoder().decode(Document.self, from: Data(minted.output.utf8)).tokens.first)
                tokens[tenant] = token.token
                // The tenant's first document gets the line under spec.console.tokens.
                let path = service.work + "/manifests/tenants/" + file
                let text = try String(contentsOfFile: path, encoding: .utf8)
                let spec = try #require(text.range(of: "spec: {"))
                try text.replacingCharacters(in: spec, with: "spec: {console: {tokens: [\(token.line.dropFirst(2))]}, ")
                    .write(toFile: path, atomically: true, encoding: .utf8)
            }
            try GitCLI.commitAll(in: service.work)
            try GitCLI.run(["push", "-q", "origin", "HEAD:main"], in: service.work)
            try MonitoringGraphTests.serve(service, prometheus: nil)
            // Converged once: the pages show what the loop observed.
            for _ in 0..<300 {
                if (try? service.http("GET", "/api/status"))?.1.contains("\"appliedRevision\"") == true, (try? service.http("GET", "/api/status"))?.1.contains("\"lastResult\":\"converged\"") == true { break }
                usleep(200_000)
            }
        }

        /// Headless Chromium with `who`'s own profile (its cookies are its session).
        func browser(_ who: String) throws -> [String] {
            let browser = try #require(ServiceTests.chromium, "Debian's chromium is needed: bash .ci/setup installs it")
            return [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--user-data-dir=\(service.root.file("chromium-\(who)"))"]
        }

        /// Logs `tenant` in as a person would: the console's login form, filled and submitted by a page that does so at once.
        func browserLogIn(_ tenant: String) throws {
            let page = service.root.file("console-login-\(tenant).html")
            try """
                <!doctype html><html><body onload="document.forms[0].submit()">
                <form method="post" action="\(service.url)/console/login"><input name="tenant" value="\(tenant)"><input name="token" value="\(tokens[tenant] ?? "")"></form>
                </body></html>
                """.write(toFile: page, atomically: true, encoding: .utf8)
            _ = try Command.run(try browser(tenant) + ["--virtual-time-budget=5000", "--dump-dom", "file://\(page)"])
        }

        /// `path` in `who`'s browser: a screenshot among the test's artifacts, and the DOM.
        func browse(_ who: String, _ path: String, screenshot: String) throws -> String {
            let file = service.shots + "/console-\(who)-\(screenshot).png"
            let shot = try Command.run(try browser(who) + ["--window-size=1280,900", "--screenshot=\(file)", service.url + path])
            #expect(shot.status == 0 && ((try? FileManager.default.attributesOfItem(atPath: file)[.size] as? Int) ?? 0) > 5_000, "screenshot of \(path): \(shot.output.suffix(500))")
            return try Command.run(try browser(who) + ["--dump-dom", service.url + path]).output
        }

        /// `curl` with `tenant`'s cookie jar: status and body.
        func get(_ path: String, as tenant: String) throws -> (Int, String) {
            let jar = service.root.file("jar-\(tenant)")
            let result = try Command.run(["curl", "-s", "-g", "--path-as-is", "-b", jar, "-c", jar, "-o", "-", "-w", "\n%{http_code}", service.url + path])
            let lines = result.output.split(separator: "\n", omittingEmptySubsequences: false)
            return (Int(lines.last ?? "") ?? 0, lines.dropLast().joined(separator: "\n"))
        }

        /// Logs `tenant` in with `token` (its own unless given), keeping the session in its cookie jar: the status.
        @discardableResult
        func logIn(_ tenant: String, token: String? = nil, from address: String = "127.0.0.1") throws -> Int {
            let jar = service.root.file("jar-\(tenant)")
            let result = try Command.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-b", jar, "-c", jar, "--data-urlencode", "tenant=\(tenant)",
                                          "--data-urlencode", "token=\(token ?? tokens[tenant] ?? "")", service.url + "/console/login"])
            return Int(result.output) ?? 0
        }
    }

    @Test func eachTenantSeesItsOwnAndNothingOfAnotherOnEveryConsoleRoute() throws {
        let world = try World()
        // Without a session every page sends the browser to the login form.
        #expect(try world.get("/console/", as: "nobody").0 == 303)
        #expect(try world.logIn("acme", token: "slt_wrong") == 401)
        #expect(try world.logIn("acme", token: world.tokens["beta"] ?? "none") == 401, "beta's token is not acme's")
        #expect(try world.logIn("acme") == 303)
        #expect(try world.logIn("beta") == 303)

        let (status, overview) = try world.get("/console/", as: "acme")
        #expect(status == 200 && overview.contains(">web-1</a>") && overview.contains("<table id=\"instances\">"), "\(overview.prefix(3000))")
        let listed = try world.get("/console/api/instances?region=lab", as: "acme")
        #expect(listed.0 == 200 && listed.1.contains("\"web-1\"") && !listed.1.contains("beta"), "\(listed.1.prefix(2000))")
        let own = try world.get("/console/instances/lab/web-1", as: "acme")
        #expect(own.0 == 200 && own.1.contains("m1.small"), "\(own.1.prefix(2000))")
        let theirs = try world.get("/console/", as: "beta")
        #expect(theirs.0 == 200 && theirs.1.contains(">beta-secret-db</a>") && theirs.1.contains("Beta &lt;Corp&gt;") == false, "names are escaped; display names not shown")

        // In a browser: two tenants and the operator, each with a screenshot of what they see.
        for (tenant, own, theirs, rule) in [("acme", "web-1", "beta-secret-db", "tcp 443 from 0.0.0.0/0"), ("beta", "beta-secret-db", "web-1", "tcp 5432 from 10.0.0.0/8")] {
            try world.browserLogIn(tenant)
            let list = try world.browse(tenant, "/console/", screenshot: "instances")
            #expect(list.contains(">\(own)</a>") && !list.contains(theirs), "\(tenant): \(list.prefix(2000))")
            #expect(!list.contains("SQL(") && list.contains("<td>\(rule)</td>"), "the tenant's security group and its rule: \(list.prefix(4000))")
            let instance = try world.browse(tenant, "/console/instances/lab/\(own)", screenshot: "instance")
            #expect(instance.contains("<table id=\"instance\">") && instance.contains("m1.small"), "\(tenant): \(instance.prefix(2000))")
            let bill = try world.browse(tenant, "/console/bills/\(Self.month)", screenshot: "bill")
            #expect(bill.contains("<table id=\"totals\">") && bill.contains("bandwidth") && bill.contains("id=\"csv\""), "\(tenant): \(bill.prefix(2000))")
        }
        _ = try ServiceTests.logIn(world.service)
        let operatorView = try ServiceTests.browse(world.service, "/regions/lab", screenshot: world.service.shots + "/console-operator-region.png")
        #expect(operatorView.contains("beta-secret-db") && operatorView.contains("web-1"), "the operator's dashboard sees every tenant: \(operatorView.prefix(2000))")

        // Each resource links to the last run that changed it; that run's page shows acme's own changes in it alone.
        let link = try #require(overview.firstMatch(of: /href="\/console\/runs\/(\d+)"/), "\(overview.prefix(3000))")
        let created = try world.get("/console/runs/\(link.1)", as: "acme")
        #expect(created.0 == 200 && created.1.contains("<td>instance lab/web-1</td><td>create</td>") && !created.1.contains("beta"), "\(created.1.prefix(3000))")
        // A run that changes beta's alone (its instance stopped) is beta's to see, and not acme's.
        let betaFile = world.service.work + "/manifests/tenants/beta.yaml"
        try String(contentsOfFile: betaFile, encoding: .utf8).replacingOccurrences(of: "securityGroups: [beta-group]}", with: "securityGroups: [beta-group], state: stopped}")
            .write(toFile: betaFile, atomically: true, encoding: .utf8)
        try GitCLI.commitAll(in: world.service.work)
        try GitCLI.run(["push", "-q", "origin", "HEAD:main"], in: world.service.work)
        _ = try world.service.http("POST", "/api/regions/lab/sync", token: "t0ken")
        var betaRun: Int64?
        for _ in 0..<150 where betaRun == nil {
            let runs = try SQLiteState(directory: world.service.state).runs()
            betaRun = try runs.last { run in try SQLiteState(directory: world.service.state).journalEntries(run: run.id).contains { $0.address.tenant == "beta" && $0.status == .done } && run.id > Int64(link.1)! }?.id
            if betaRun == nil { usleep(200_000) }
        }
        let stopped = try #require(betaRun, "the service stops beta's instance")
        let betaView = try world.get("/console/runs/\(stopped)", as: "beta")
        #expect(betaView.0 == 200 && betaView.1.contains("<td>instance lab/beta-secret-db</td><td>") && !betaView.1.contains("acme") && !betaView.1.contains("lab-"), "\(betaView.1.prefix(3000))")
        #expect(try world.get("/console/runs/\(stopped)", as: "acme").0 == 404, "a run that changed only beta's is not acme's to see")
        let betaOverview = try world.get("/console/", as: "beta").1
        #expect(betaOverview.contains("href=\"/console/runs/\(stopped)\""), "beta's instance links to the run that stopped it: \(betaOverview.prefix(3000))")

        // The walk: every console route from the router's table, with beta's names in every parameter.
        let configuration = ServiceConfiguration(repository: world.service.bare, stateDirectory: world.service.state, token: "t0ken", webhookSecret: "s3cret")
        let routes = GitOpsServer.routeTable(configuration).filter { $0.path.hasPrefix("/console") && $0.method == "GET" }
        #expect(routes.count >= 5 && routes.contains { $0.path.contains("api/instances") }, "\(routes)")
        let foreign = ["beta-secret-db", "beta", "beta-key", "beta-group", "beta%2Dsecret%2Ddb", "..%2Fbeta-secret-db", "BETA-SECRET-DB", "beta-secret-db%00", "%2e%2e"]
        var cases = 0
        var leaks: [String] = []
        for route in routes {
            let parameters = route.path.split(separator: "/").filter { $0.hasPrefix(":") || $0.hasPrefix("{") }
            var paths: [String] = []
            if parameters.isEmpty {
                paths = [route.path, route.path + "?region=lab", route.path + "?region=beta-secret-db"]
            } else {
                for value in foreign {
                    var path = route.path
                    for parameter in parameters { path = path.replacingOccurrences(of: String(parameter), with: parameter.contains("region") ? "lab" : value) }
                    paths.append(path)
                    var everywhere = route.path
                    for parameter in parameters { everywhere = everywhere.replacingOccurrences(of: String(parameter), with: value) }
                    paths.append(everywhere)
                }
                if route.path.contains("month") { paths += ["/console/bills/\(Self.month)", "/console/bills/\(Self.month).csv"] }
                if route.path.contains(":run") { paths += (1...stopped + 2).map { "/console/runs/\($0)" } + ["/console/runs/-1", "/console/runs/0x1"] }
            }
            for path in Set(paths).sorted() {
                cases += 1
                let (code, body) = try world.get(path, as: "acme")
                let expected = parameters.isEmpty || path.hasPrefix("/console/bills/\(Self.month)") || path.firstMatch(of: /^\/console\/runs\/\d+$/) != nil ? [200, 404] : [404]
                if !expected.contains(code) { leaks.append("\(path): HTTP \(code)") }
                for marker in ["beta-secret", "beta-key", "beta-group", "Beta &lt;Corp", "lab-1", "lab-2", "172.16.", "other/", "db-1"] where body.contains(marker) {
                    leaks.append("\(path): \(marker) in the page")
                }
            }
        }
        #expect(leaks.isEmpty, "\(cases) cases over \(routes.count) routes:\n\(leaks.joined(separator: "\n"))")
        #expect(cases >= 30, "\(cases)")
        print("console isolation walk: \(cases) cases over \(routes.count) routes, no leak")

        // The bill and its CSV: acme's own lines only; cells a spreadsheet would run are neutralised.
        let csv = try world.get("/console/bills/\(Self.month).csv", as: "acme")
        #expect(csv.0 == 200 && csv.1.hasPrefix("tenant,month,category,") && !csv.1.contains("beta"), "\(csv.1.prefix(1000))")
        #expect(csv.1.split(separator: "\n").dropFirst().allSatisfy { $0.hasPrefix("acme,") }, "\(csv.1.prefix(1000))")

        // The bill is rated with the price lists' history, as `stacklab bill` rates it: a price pushed now applies from its
        // commit on, and the hour web-1 began before it keeps the old price (rated with the lists as they are now, it
        // would not).
        let catalog = world.service.work + "/manifests/catalog.yaml"
        try String(contentsOfFile: catalog, encoding: .utf8).replacingOccurrences(of: "m1.small: {hourly: 0.67", with: "m1.small: {hourly: 0.99")
            .write(toFile: catalog, atomically: true, encoding: .utf8)
        let repriced = try GitCLI.commitAll(in: world.service.work)
        try GitCLI.run(["push", "-q", "origin", "HEAD:main"], in: world.service.work)
        _ = try world.service.http("POST", "/api/regions/lab/sync", token: "t0ken")
        var loaded = false
        for _ in 0..<150 where !loaded {
            loaded = (try? world.service.http("GET", "/api/status"))?.1.contains(repriced) == true
            if !loaded { usleep(200_000) }
        }
        #expect(loaded, "the service reads the new price list")
        let rated = try world.get("/console/bills/\(Self.month)", as: "acme").1
        #expect(rated.contains("<td>m1.small</td><td>0.67/hour</td>") && !rated.contains("0.99/"), "\(rated.prefix(4000))")

        // A session ends when its token's line leaves the manifests.
        let beta = world.service.work + "/manifests/tenants/beta.yaml"
        let text = try String(contentsOfFile: beta, encoding: .utf8)
        try text.replacingOccurrences(of: #"console: \{tokens: \[[^\]]*\]\}, "#, with: "", options: .regularExpression).write(toFile: beta, atomically: true, encoding: .utf8)
        try GitCLI.commitAll(in: world.service.work)
        try GitCLI.run(["push", "-q", "origin", "HEAD:main"], in: world.service.work)
        _ = try world.service.http("POST", "/api/regions/lab/sync", token: "t0ken")  // look at the branch now
        var ended = false
        for _ in 0..<150 where !ended {
            ended = try world.get("/console/", as: "beta").0 == 303
            if !ended { usleep(200_000) }
        }
        #expect(ended, "beta's session ends with its token's line")
        #expect(try world.get("/console/", as: "acme").0 == 200, "acme's goes on")

        // Failed logins are limited per address (the two above may still count): then even the right token waits.
        var codes: [Int] = []
        while codes.last != 429 && codes.count <= TenantAccess.failuresAllowed { codes.append(try world.logIn("mallory", token: "slt_guess")) }
        #expect(codes.last == 429 && codes.dropLast().allSatisfy { $0 == 401 }, "\(codes)")
        #expect(try world.logIn("acme") == 429, "limited by address, whatever is presented")
    }

    static var month: String {
        let components = Calendar(identifier: .gregorian).dateComponents(in: TimeZone(identifier: "UTC")!, from: Date())
        return String(format: "%04d-%02d", components.year!, components.month!)
    }
}
