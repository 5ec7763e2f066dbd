import ArgumentParser
import Foundation
import Manifests
import Planning
import Reconcile

/// `stacklab firewall show NODE`: the ruleset a compute node should run, each rule with the manifest document and line
/// it comes from.
struct FirewallShow: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Print a compute node's rendered ruleset (SWS egress filter, security groups, floating-IP NAT).",
        discussion: """
            NODE is <region>/<name>. The ruleset is planned from the manifests and the region's nodes as observed now \
            (placement decides which instances, and so which rules, a node has). Formats: text (each rule with the \
            document and file:line it comes from), nft (the file 'nft -f' loads), json.
            """)

    enum Format: String, ExpressibleByArgument, CaseIterable { case text, nft, json }

    @Argument(help: ArgumentHelp("The node, as <region>/<name>.", valueName: "node"))
    var node: String

    @Option(help: "text, nft or json.")
    var format: Format = .text

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var reconcile: ReconcileOptions

    func run() throws {
        let parts = node.split(separator: "/").map(String.init)
        guard parts.count == 2 else { throw ValidationError("name the node as <region>/<name>, e.g. sina/sina-2") }
        let loaded = try repository.loadValid()
        guard let region = loaded.model.regions.first(where: { $0.name == parts[0] }) else { throw fail("no region '\(parts[0])' in the manifests") }
        guard loaded.model.nodes.contains(where: { $0.region == parts[0] && $0.name == parts[1] }) else {
            throw fail("no node '\(parts[1])' in region \(parts[0])")
        }
        let reconciler = try reconcile.reconciler(for: loaded, repo: repository.repo)
        let rulesets: [Ruleset]
        do {
            let (_, endpoints) = try reconciler.selection([region.name])
            let observed = try reconciler.observe(try reconciler.drivers(for: endpoints))
            rulesets = Planner.rulesets(region, model: loaded.model, observed: observed)
        } catch {
            throw failing(error)
        }
        guard let ruleset = rulesets.first(where: { $0.node.name == parts[1] }) else {
            throw fail("node \(node) is not a compute node: it runs no instances, and no ruleset")
        }
        switch format {
        case .nft:
            Terminal.standardOutput.write(ruleset.nft)
        case .json:
            struct Entry: Encodable { var chain: String; var rule: String; var source: String; var file: String?; var line: Int32? }
            let entries = ruleset.rules.map { rule in
                Entry(chain: rule.chain.rawValue, rule: rule.text, source: rule.source,
                      file: rule.file.map { loaded.files[FileID($0)].path }, line: rule.line)
            }
            struct Document: Encodable { var node: String; var table: String; var rules: [Entry] }
            Terminal.standardOutput.write(try JSON.encode(Document(node: node, table: Ruleset.table, rules: entries)))
        case .text:
            var out = "firewall of \(ruleset.node) (table ip \(Ruleset.table), \(ruleset.rules.count.counted("rule")))\n"
            for chain in Ruleset.Chain.allCases {
                let rules = ruleset.rules.filter { $0.chain == chain }
                guard !rules.isEmpty else { continue }
                out += "\(chain.rawValue):\n"
                for rule in rules {
                    let place = rule.file.map { "\(loaded.files[FileID($0)].path):\(rule.line ?? 0)" }
                    out += "  \(rule.text.terminalSafe)\n      ← \(rule.source.terminalSafe)\(place.map { " (\($0.terminalSafe))" } ?? "")\n"
                }
            }
            Terminal.standardOutput.write(out)
        }
    }
}
