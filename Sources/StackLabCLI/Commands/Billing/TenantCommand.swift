import ArgumentParser
import Foundation
import Manifests
import Planning
import Service

/// `stacklab tenant token`: console logins for tenants.
struct TenantCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tenant",
        abstract: "Tenants' console logins and object-storage keys.",
        subcommands: [TenantTokenCommand.self, TenantStorageKeyCommand.self])
}

/// `stacklab tenant token TENANT NAME`: a new console token, shown once, and the line that lets it in.
struct TenantTokenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Make a console login token for a tenant: print it once, and the line to commit.",
        discussion: """
            A tenant logs in to the console of stacklab serve (/console/) with its name and a token. The manifests hold \
            only the token's SHA-256, under the tenant's spec.console.tokens: this prints a new token (keep it: it is \
            never shown again) and the line to add there. The token works once the service runs a revision with the \
            line; removing the line ends every session it opened. With --all, one token for every tenant, written to \
            --out FILE (mode 0600, one 'tenant name token' line each: a file to hand out, never to commit) while the \
            lines to commit are printed. Exit status: 0 made; 1 no such tenant, or the file cannot be written.

            Examples:
              stacklab tenant token devops laptop
              stacklab tenant token --all --name demo --out console-tokens.txt
            """)

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var output: OutputOptions

    @Argument(help: "The tenant.")
    var tenant: String?

    @Argument(help: ArgumentHelp("What to call the token (a name: laptop, ci).", valueName: "name"))
    var tokenName: String?

    @Flag(help: "A token for every tenant in the manifests (with --out).")
    var all = false

    @Option(help: ArgumentHelp("With --all: the token's name for every tenant.", valueName: "name"))
    var name = "console"

    @Option(help: ArgumentHelp("With --all: the file the tokens are written to (mode 0600).", valueName: "file"))
    var out: String?

    func validate() throws {
        if all {
            guard tenant == nil, out != nil else { throw ValidationError("--all takes no tenant, and needs --out FILE for the tokens") }
        } else if tenant == nil || tokenName == nil {
            throw ValidationError("name a tenant and the token (stacklab tenant token TENANT NAME), or give --all --out FILE")
        }
        let label = all ? name : tokenName ?? ""
        guard !label.isEmpty, label.utf8.count <= 63, label.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == ".") }) else {
            throw ValidationError("a token's name is letters, digits, '-', '_' and '.', at most 63: not '\(label)'")
        }
    }

    struct Minted: Encodable {
        var tenant: String
        var name: String
        /// Absent when the tokens went to --out.
        var token: String?
        var sha256: String
        /// The line to add under the tenant's spec.console.tokens.
        var line: String
        /// Where the tenant is declared (file:line).
        var declaredAt: String
    }

    func run() throws {
        let loaded = try repository.loadValid()
        let tenants = loaded.model.tenants.sorted { $0.name < $1.name }
        let chosen = all ? tenants : tenants.filter { $0.name == tenant }
        guard !chosen.isEmpty else {
            throw failure("no tenant '\(tenant ?? "")' in the manifests", hint: "tenants are: \(tenants.map(\.name).joined(separator: ", "))")
        }
        let label = all ? name : tokenName!
        var minted: [Minted] = []
        var file = ""
        for entry in chosen {
            let token = TenantAccess.mint()
            let digest = TenantAccess.digest(token)
            minted.append(Minted(tenant: entry.name, name: label, token: all ? nil : token, sha256: digest, line: "- {name: \(label), sha256: \(digest)}",
                                 declaredAt: loaded.files.describe(entry.meta.location)))
            file += "\(entry.name) \(label) \(token)\n"
        }
        if let out {
            guard FileManager.default.createFile(atPath: out, contents: Data(file.utf8), attributes: [.posixPermissions: 0o600]) else {
                throw fail("cannot write \(out)")
            }
        }
        if output.format == .json {
            struct Document: Encodable { var tokens: [Minted]; var file: String? }
            Terminal.standardOutput.write(try JSON.encode(Document(tokens: minted, file: out)))
            return
        }
        var text = ""
        for entry in minted {
            if let token = entry.token { text += "token for \(entry.tenant) (\(entry.name)), shown once: \(token)\n" }
            text += "add under spec.console.tokens of tenant \(entry.tenant) (\(entry.declaredAt)):\n  \(entry.line)\n"
        }
        if let out { text += "the \(minted.count) tokens are in \(out) (mode 0600): hand each to its tenant; never commit the file\n" }
        Terminal.standardOutput.write(text)
    }
}

/// `stacklab tenant storage-key TENANT`: a key for the tenant's own Swift user, shown once, and the tempauth line that
/// creates the user on the region's proxy.
struct TenantStorageKeyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "storage-key",
        abstract: "Make a key for a tenant's object-storage user: print it once, and the proxy's tempauth line.",
        discussion: """
            Each tenant has its own Swift account in every region's object store (AUTH_tenant_<tenant>, never the \
            operator's), whose containers StackLab converges from the tenant's Container documents. The tenant reaches \
            its objects as its own user, an admin of that account alone. Under tempauth, users are lines of the proxy's \
            configuration: this prints a new key (hand it to the tenant: it is never shown again) and the line to add to \
            the [filter:tempauth] section of each region's proxy-server.conf (then restart the proxy). The tenant signs \
            in as tenant_<tenant>:<tenant> with the key. Exit status: 0 made; 1 no such tenant.

            Examples:
              stacklab tenant storage-key devops
            """)

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var output: OutputOptions

    @Argument(help: "The tenant.")
    var tenant: String

    struct Minted: Encodable {
        var tenant: String
        /// The account id in storage URLs, and the user to sign in as.
        var account: String
        var user: String
        var key: String
        /// The line for the proxy's [filter:tempauth].
        var tempauth: String
    }

    func run() throws {
        let loaded = try repository.loadValid()
        let names = loaded.model.tenants.map(\.name).sorted()
        guard names.contains(tenant) else { throw failure("no tenant '\(tenant)' in the manifests", hint: "tenants are: \(names.joined(separator: ", "))") }
        let key = TenantAccess.mint().replacingOccurrences(of: "slt_", with: "")
        let account = TenantStorage.account(tenant)
        let encode = { (text: String) in Data(text.utf8).base64EncodedString().replacingOccurrences(of: "=", with: "") }
        let minted = Minted(tenant: tenant, account: TenantStorage.accountID(tenant), user: "\(account):\(tenant)", key: key,
                            tempauth: "user64_\(encode(account))_\(encode(tenant)) = \(key) .admin")
        if output.format == .json {
            Terminal.standardOutput.write(try JSON.encode(minted))
            return
        }
        Terminal.standardOutput.write("""
            key for \(minted.user), shown once: \(key)
            add to [filter:tempauth] of each region's proxy-server.conf, then restart the proxy:
              \(minted.tempauth)
            the tenant signs in as \(minted.user) (X-Auth-User) with the key (X-Auth-Key); its account is \(minted.account)

            """)
    }
}
