import ArgumentParser
import Foundation
import MetadataService

/// `stacklab metadata serve`: the node-side metadata service.
struct MetadataCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "metadata",
        abstract: "The metadata service a compute node runs for its instances (169.254.169.254).",
        subcommands: [MetadataServe.self])
}

/// Runs on each compute node (bootstrap installs it as a service): answers each instance from the file StackLab wrote
/// for its fixed IP, at EC2's paths (`/latest/meta-data/…`, `/latest/user-data`) and OpenStack's
/// (`/openstack/latest/meta_data.json`, `user_data`).
struct MetadataServe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve instances' metadata from <root>/etc/stacklab/metadata/ (stops on SIGTERM).")

    @Option(help: ArgumentHelp("The node's file root.", valueName: "dir"))
    var root = "/"

    @Option(help: ArgumentHelp("Address and port to listen on (the node's gateway addresses; the ruleset DNATs 169.254.169.254:80 here).", valueName: "host:port"))
    var listen = "0.0.0.0:8775"

    @OptionGroup var output: OutputOptions

    func run() async throws {
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]), (1...65535).contains(port) else {
            throw ValidationError("--listen takes host:port, e.g. 0.0.0.0:8775")
        }
        let host = String(listen[..<colon])
        let json = output.format == .json
        try await MetadataServer(root: root, host: host, port: port).run {
            Terminal.standardError.write("stacklab metadata: serving \(root) on \(host):\(port)\n")
            if json {
                Terminal.standardOutput.write(try! JSON.encode(["listening": "\(host):\(port)", "root": root]))
                Answer.shared.finish(exitCode: 0)
            }
        }
    }
}
