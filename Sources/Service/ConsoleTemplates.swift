import Mustache

/// The console's pages as Mustache templates (swift-mustache: `{{value}}` is HTML-escaped, always; the one
/// `{{{graphs}}}` is SVG StackLab drew with its own escaping). Kept in the binary: no build step, nothing to install.
enum ConsoleTemplates {
    static let library: MustacheLibrary = {
        var templates: [String: MustacheTemplate] = [:]
        for (name, text) in sources {
            // The templates are constants of this file: one that does not parse is a programming error caught by every test.
            templates[name] = try! MustacheTemplate(string: text)
        }
        return MustacheLibrary(templates: templates)
    }()

    static func render(_ name: String, _ view: Any) -> String {
        library.render(view, withTemplate: name) ?? ""
    }

    static let sources: [String: String] = [
        "header": """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><title>{{title}} · {{tenant}} · StackLab console</title>
            <style>body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}
            .stopped,.shutoff{color:#b00}.running{color:#070}nav a{margin-right:1em}.where{color:#777;font-size:.85em}</style></head>
            <body><nav><a href="/console/">Overview</a><a href="/console/bills/{{month}}">Bill</a>
            <form method="post" action="/console/logout" style="display:inline"><button>Log out</button></form> <span id="tenant">{{tenant}}</span></nav>
            <h1>{{title}}</h1>

            """,
        "footer": "</body></html>\n",
        // Where a resource is declared, and the last run that changed it.
        "where": """
            <span class="where">{{declaredAt}}{{#changedBy}} · <a class="changed" href="/console/runs/{{run}}">{{action}} by run {{run}} at {{at}}</a>{{/changedBy}}</span>
            """,
        "login": """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><title>Console · StackLab</title>
            <style>body{font-family:sans-serif;margin:1.5em}.failed{color:#b00}</style></head>
            <body><h1>StackLab console</h1>
            {{#limited}}<p class="failed" id="limited">Too many failed logins from your address: wait a minute.</p>{{/limited}}
            {{#failed}}<p class="failed" id="failed">That tenant and token do not match.</p>{{/failed}}
            <form method="post" action="/console/login">
            <label>Tenant <input name="tenant" autocomplete="username" autofocus></label>
            <label>Token <input type="password" name="token" autocomplete="current-password"></label>
            <button>Log in</button>
            </form>
            <p>Your cloud's operator gives you a token (<code>stacklab tenant token</code>).</p>
            </body></html>

            """,
        "notfound": """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><title>Not found · StackLab console</title></head>
            <body><h1>Not found</h1><p id="missing">You have nothing here. <a href="/console/">Overview</a></p></body></html>

            """,
        "notyet": "{{> header}}<p id=\"not-yet\">The service has not read the manifests yet.</p>{{> footer}}",
        "overview": """
            {{> header}}
            <p id="regions">Region: {{#regions}}{{#current}}<b>{{name}}</b>{{/current}}{{^current}}<a href="/console/?region={{name}}">{{name}}</a>{{/current}} {{/regions}}</p>
            <h2>Instances</h2>
            <table id="instances"><tr><th>Name</th><th>Fixed IP</th><th>Floating IP</th><th>Flavor</th><th>Public domain</th><th>Status</th><th>Power state</th></tr>
            {{#instances}}<tr class="instance"><td><a href="/console/instances/{{region}}/{{name}}">{{name}}</a> {{> where}}</td>
            <td>{{fixedIP}}</td><td>{{floatingIP}}</td><td>{{flavor}}</td><td class="domain">{{publicDomain}}</td><td class="{{status}}">{{status}}</td><td>{{powerState}}</td></tr>
            {{/instances}}</table>
            <h2>Volumes</h2><table id="volumes"><tr><th>Name</th><th>Size</th><th>Attached to</th><th>Snapshots declared</th><th>Snapshots stored</th></tr>
            {{#volumes}}<tr><td>{{name}} {{> where}}</td><td>{{size}}</td><td>{{instance}}</td><td>{{declaredSnapshots}}</td>
            <td><ul class="snapshots">{{#snapshots}}<li>{{name}} ({{taken}}, {{size}})</li>{{/snapshots}}</ul></td></tr>{{/volumes}}</table>
            <h2>Floating IPs</h2><table id="floating-ips"><tr><th>Name</th><th>Address</th><th>Instance</th></tr>
            {{#floatingIPs}}<tr><td>{{name}} {{> where}}</td><td>{{address}}</td><td>{{instance}}</td></tr>{{/floatingIPs}}</table>
            <h2>Load balancers</h2><table id="load-balancers"><tr><th>Name</th><th>Host</th><th>Members</th></tr>
            {{#loadBalancers}}<tr><td>{{name}} {{> where}}</td><td>{{host}}</td><td>{{members}}</td></tr>{{/loadBalancers}}</table>
            <h2>Object storage</h2>
            {{#storage}}<p id="storage">Account {{account}}: {{stored}}; quota {{quota}}.</p>{{/storage}}
            <table id="containers"><tr><th>Container</th><th>Access</th><th>Shared with</th><th>Versioning</th><th>Objects</th><th>Size</th></tr>
            {{#containers}}<tr><td>{{name}} {{> where}}</td><td>{{access}}</td><td>{{shared}}</td><td>{{versioning}}</td><td>{{objects}}</td><td>{{bytes}}</td></tr>{{/containers}}</table>
            <h2>Security groups</h2><table id="security-groups"><tr><th>Name</th><th>Rules (ingress)</th></tr>
            {{#securityGroups}}<tr><td>{{name}} {{> where}}</td><td>{{rules}}</td></tr>{{/securityGroups}}</table>
            <h2>Keypairs</h2><table id="keypairs"><tr><th>Name</th></tr>
            {{#keypairs}}<tr><td>{{name}} {{> where}}</td></tr>{{/keypairs}}</table>
            {{#account}}<h2>Account</h2><table id="account"><tr><th>This month so far</th><td>{{charges}}</td></tr>
            <tr><th>Deposit</th><td>{{deposit}}</td></tr><tr><th>Coupon credit</th><td>{{couponCredit}}</td></tr>
            <tr><th>Balance</th><td>{{balance}} {{currency}}</td></tr></table>{{/account}}
            {{> footer}}
            """,
        "instance": """
            {{> header}}
            <table id="instance"><tr><th>Declared in</th><td>{{declaredAt}}</td></tr><tr><th>Flavor</th><td>{{flavor}}</td></tr>
            <tr><th>Image</th><td>{{image}}</td></tr>{{#changedBy}}<tr><th>Last changed</th><td><a class="changed" href="/console/runs/{{run}}">{{action}} by run {{run}} at {{at}}</a></td></tr>{{/changedBy}}<tr><th>Fixed IP</th><td>{{fixedIP}}</td></tr><tr><th>Status</th><td>{{status}}</td></tr></table>
            {{#hasGraphs}}<h2>Monitoring</h2><div id="graphs">{{{graphs}}}</div>{{/hasGraphs}}
            {{#graphsError}}<p id="graphs-error">No graphs now.</p>{{/graphsError}}
            {{#hasAlarms}}<h2>Alarms</h2><ul id="alarms">{{#alarms}}<li>{{alarm}}: {{state}}</li>{{/alarms}}</ul>{{/hasAlarms}}
            {{#counters}}<h2>Counters</h2><table id="counters"><tr><th>CPU time</th><th>Disk read</th><th>Disk written</th><th>Network in</th><th>Network out</th></tr>
            <tr><td>{{cpu}}</td><td>{{diskRead}}</td><td>{{diskWritten}}</td><td>{{networkIn}}</td><td>{{networkOut}}</td></tr></table>{{/counters}}
            {{> footer}}
            """,
        "run": """
            {{> header}}
            <table id="run"><tr><th>Status</th><td>{{status}}</td></tr><tr><th>Revision</th><td>{{revision}}</td></tr><tr><th>Started</th><td>{{started}}</td></tr></table>
            <h2>Your resources it changed</h2>
            <table id="changes"><tr><th>Resource</th><th>Action</th><th>Status</th></tr>
            {{#changes}}<tr><td>{{resource}}</td><td>{{action}}</td><td class="{{status}}">{{status}}</td></tr>{{/changes}}</table>
            {{> footer}}
            """,
        "bill": """
            {{> header}}
            <p id="months">{{#months}}{{#current}}<b>{{name}}</b>{{/current}}{{^current}}<a href="/console/bills/{{name}}">{{name}}</a>{{/current}} {{/months}}</p>
            <table id="totals"><tr>{{#totals}}<th>{{category}}</th>{{/totals}}<th>total</th></tr><tr>{{#totals}}<td>{{total}}</td>{{/totals}}<td>{{charges}}</td></tr></table>
            <p>Currency {{currency}}. Paid by coupons {{paidByCoupons}}, by deposits {{paidByDeposits}}; owed {{owed}}; balance at the month's end {{balance}}.</p>
            <p><a id="csv" href="/console/bills/{{shownMonth}}.csv">Download CSV</a></p>
            <table id="lines"><tr><th>Category</th><th>Resource</th><th>Item</th><th>Unit price</th><th>Start</th><th>End</th><th>Quantity</th><th>Total</th></tr>
            {{#lines}}<tr><td>{{category}}</td><td>{{resource}}</td><td>{{item}}</td><td>{{unitPrice}}</td><td>{{start}}</td><td>{{end}}</td><td>{{quantity}}</td><td>{{total}}</td></tr>{{/lines}}
            </table>
            {{> footer}}
            """,
    ]
}
