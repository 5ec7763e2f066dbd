import ArgumentParser
import Foundation
import Planning
import Processes

/// `stacklab monitoring …`: the configuration of the Prometheus and Alertmanager that keep StackLab's time series.
struct MonitoringCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "monitoring",
        abstract: "Write the configuration of Prometheus and Alertmanager for the cloud's instance metrics and tenants' alarms.",
        subcommands: [MonitoringConfigCommand.self])
}

/// `stacklab monitoring config --out DIR`.
struct MonitoringConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Write prometheus.yml, rules.yml and alertmanager.yml, each checked by promtool or amtool first.",
        discussion: """
            prometheus.yml scrapes every --target (each stacklab serve) at /metrics with the bearer token in \
            --token-file (the service's --read-token-file will do), loads rules.yml and sends alerts to \
            --alertmanager. rules.yml records each instance's CPU utilization (percent of one CPU: the CPU counter's \
            rate × 100) and the byte rates of its disks and interfaces, then has one StackLabAlarm rule per Alarm \
            (labels tenant, region, alarm; annotated with the alarm's file:line). alertmanager.yml routes each tenant's \
            alerts to the webhook of the alarm that raised them. The files are written to a scratch directory, \
            checked (promtool check config, promtool check rules, amtool check-config), and only then put in --out: \
            a file either tool refuses is never written. Reload the engines after a change: POST /-/reload to each \
            (both started with --web.enable-lifecycle), or send them SIGHUP.

            Examples:
              stacklab monitoring config --out /etc/stacklab/monitoring --target 10.0.0.5:8480
              stacklab monitoring config --out monitoring --token-file /etc/stacklab/read-token
            """)

    @OptionGroup var repository: RepositoryOptions

    @Option(help: ArgumentHelp("Where to write the three files.", valueName: "dir"))
    var out: String

    @Option(help: ArgumentHelp("A stacklab serve to scrape, host:port (repeatable).", valueName: "host:port"))
    var target: [String] = ["127.0.0.1:8480"]

    @Option(help: ArgumentHelp("The file holding the bearer token Prometheus sends.", valueName: "path"))
    var tokenFile = "/etc/stacklab/read-token"

    @Option(help: ArgumentHelp("Where Alertmanager listens.", valueName: "host:port"))
    var alertmanager = "127.0.0.1:9093"

    @Option(help: ArgumentHelp("Seconds between scrapes and rule evaluations.", valueName: "seconds"))
    var interval = 15

    @OptionGroup var output: OutputOptions

    func validate() throws {
        guard (1...3600).contains(interval) else { throw ValidationError("--interval must be between 1 and 3600 seconds") }
        for address in target + [alertmanager] where !Self.isHostPort(address) {
            throw ValidationError("'\(address)' is not host:port (write e.g. 127.0.0.1:8480)")
        }
    }

    static func isHostPort(_ text: String) -> Bool {
        guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]), port > 0 else { return false }
        let host = text[..<colon]
        return !host.isEmpty && host.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "-") }
    }

    func run() throws {
        let loaded = try repository.loadValid()
        let config = MonitoringConfig(targets: target, tokenFile: tokenFile, alertmanager: alertmanager, interval: interval)
        let alarms = loaded.model.alarms
        let files = [
            ("prometheus.yml", config.prometheus),
            ("rules.yml", config.rules(alarms, describe: { loaded.files.describe($0) })),
            ("alertmanager.yml", config.alertmanagerConfig(alarms)),
        ]
        let scratch = NSTemporaryDirectory() + "/stacklab-monitoring-\(getpid())-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        do {
            try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
            for (name, text) in files { try text.write(toFile: scratch + "/" + name, atomically: true, encoding: .utf8) }
            // promtool check config reads the credentials file: a stand-in beside the scratch copy.
            let checks: [(String, [String])] = [
                ("promtool check rules", ["promtool", "check", "rules", scratch + "/rules.yml"]),
                ("promtool check config", ["promtool", "check", "config", "--syntax-only", scratch + "/prometheus.yml"]),
                ("amtool check-config", ["amtool", "check-config", scratch + "/alertmanager.yml"]),
            ]
            for (name, arguments) in checks {
                let result: Command.Result
                do {
                    result = try Command.run(arguments)
                } catch {
                    throw failure("cannot run \(arguments[0]): \(error)", hint: "install it: apt-get install prometheus prometheus-alertmanager (bash .ci/setup does)")
                }
                guard result.status == 0 else { throw failure("\(name) refused the rendered file; nothing was written:\n\(result.output)") }
            }
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            for (name, _) in files {
                let destination = out + "/" + name
                if FileManager.default.fileExists(atPath: destination) { try FileManager.default.removeItem(atPath: destination) }
                try FileManager.default.copyItem(atPath: scratch + "/" + name, toPath: destination)
            }
        } catch let exit as ExitCode {
            throw exit
        } catch {
            throw failing(error)
        }
        struct Written: Encodable { var ok: Bool; var directory: String; var files: [String]; var alarms: Int; var targets: [String] }
        let written = Written(ok: true, directory: out, files: files.map(\.0), alarms: alarms.count, targets: target)
        Terminal.standardOutput.write(output.format == .json ? try JSON.encode(written)
            : "wrote \(files.map(\.0).joined(separator: ", ")) to \(out) (\(alarms.count) \(alarms.count == 1 ? "alarm" : "alarms"), scraping \(target.joined(separator: ", "))): checked by promtool and amtool\n")
    }
}
