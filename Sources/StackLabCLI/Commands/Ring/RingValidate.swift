import ArgumentParser
import Foundation
import Planning

/// `stacklab ring validate REGION [RING]`.
struct RingValidate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check that a region's built rings match the manifests and are fully dispersed; exit 1 if not.")

    @OptionGroup var options: RingOptions

    func run() throws {
        let (_, entries) = try options.load()
        var problems: [String] = []
        for (ring, stored, plan) in entries {
            guard let stored else {
                problems.append("\(ring.address) has not been built; run 'stacklab apply' or 'stacklab ring build'")
                continue
            }
            if !plan.added.isEmpty || !plan.removed.isEmpty || !plan.changed.isEmpty {
                problems.append("\(ring.address) does not match the manifests: \(plan.added.count) devices to add, \(plan.removed.count) to remove, \(plan.changed.count) changed")
            }
            let dispersion = stored.builder.dispersion()
            if dispersion > 0 { problems.append("\(ring.address): \(dispersion) partitions are less dispersed than the topology allows") }
            if stored.builder.devices.contains(where: { $0 != nil && $0!.weight == 0 && $0!.parts > 0 }) {
                problems.append("\(ring.address): a device with weight 0 still holds partitions")
            }
        }
        if options.json {
            struct Checked: Encodable { var ok: Bool; var rings: Int; var problems: [String] }
            Terminal.standardOutput.write(try JSON.encode(Checked(ok: problems.isEmpty, rings: entries.count, problems: problems)))
            if !problems.isEmpty { throw ExitCode(1) }
        } else if problems.isEmpty {
            Terminal.standardOutput.write("ok: \(entries.count) \(entries.count == 1 ? "ring" : "rings") of region \(options.regionName) match the manifests and are fully dispersed\n")
        } else {
            throw fail(problems.joined(separator: "\n       "))
        }
    }
}
