import ArgumentParser

/// `stacklab firewall …`: the rulesets StackLab renders for compute nodes.
struct FirewallCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "firewall",
        abstract: "Show the nftables ruleset StackLab renders for a compute node.",
        subcommands: [FirewallShow.self])
}
