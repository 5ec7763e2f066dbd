import ArgumentParser
import Foundation
import Planning
import Rings

/// `stacklab ring show REGION [RING]`.
struct RingShow: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Balance, dispersion and partitions per device of a region's rings (as last built, else as they would be).")

    @OptionGroup var options: RingOptions

    /// One ring as `--format json` gives it.
    struct Shown: Encodable {
        struct Device: Encodable { var device: String; var zone: Int; var weight: Double; var parts: Int; var wanted: Double; var balance: Double }
        var ring: String
        var type: String
        var built: Bool
        var partPower: Int
        var partitions: Int
        var replicas: Double
        var minPartHours: Int
        var balance: Double
        var dispersion: Int
        var version: Int
        var devices: [Device] = []
        var pending: String?
        var warnings: [String]
    }

    func run() throws {
        let (_, entries) = try options.load()
        var out = ""
        var shown: [Shown] = []
        for (ring, stored, plan) in entries {
            let builder = stored?.builder ?? plan.state.builder
            let keys = Dictionary(uniqueKeysWithValues: (stored ?? plan.state).deviceIDs.map { ($0.value, $0.key) })
            var entry = Shown(ring: ring.address.description, type: "\(plan.type)", built: stored != nil, partPower: Int(builder.partPower),
                              partitions: Int(builder.partitionCount), replicas: Double(builder.replicas), minPartHours: Int(builder.minPartHours),
                              balance: builder.balance(), dispersion: Int(builder.dispersion()), version: Int(builder.version), warnings: plan.warnings)
            out += "\(ring.address)  (\(plan.type) ring\(stored == nil ? ", not built yet: showing what apply would build" : ""))\n"
            out += "  part power \(builder.partPower) (\(builder.partitionCount) partitions), \(builder.replicas) replicas, min_part_hours \(builder.minPartHours)\n"
            out += String(format: "  balance %.2f%%, dispersion %d, %d devices, version %d\n",
                          builder.balance(), builder.dispersion(), builder.devices.compactMap { $0 }.count, builder.version)
            let slots = Double(builder.partitionCount) * builder.replicas
            let totalWeight = builder.devices.compactMap { $0?.weight }.reduce(0, +)
            out += "  device             zone  weight    parts   wanted   balance\n"
            for case let device? in builder.devices {
                let wanted = totalWeight > 0 ? slots * device.weight / totalWeight : 0
                let balance = wanted > 0 ? 100 * Double(device.parts) / wanted - 100 : 0
                out += "  " + (keys[device.id] ?? "#\(device.id)").padding(toLength: 18, withPad: " ", startingAt: 0)
                out += String(format: "%4d %8.0f %8d %8.1f %8.2f%%\n", device.zone, device.weight, device.parts, wanted, balance)
                entry.devices.append(.init(device: keys[device.id] ?? "#\(device.id)", zone: Int(device.zone), weight: device.weight, parts: Int(device.parts),
                                           wanted: wanted, balance: balance))
            }
            if stored != nil && plan.rebuilt {
                let pending = "the manifests changed; apply would add \(plan.added.count), remove \(plan.removed.count), change \(plan.changed.count) devices and move \(plan.replicasMoved) replicas"
                out += "  pending: \(pending)\n"
                entry.pending = pending
            }
            for warning in plan.warnings { out += "  warning: \(warning)\n" }
            if plan.heldBack > 0 {
                out += "  warning: a rebalance now is held back by min_part_hours: \(plan.heldBack) partitions moved less than \(builder.minPartHours)h ago\n"
            }
            out += "\n"
            if plan.heldBack > 0 { entry.warnings.append("a rebalance now is held back by min_part_hours: \(plan.heldBack) partitions moved less than \(builder.minPartHours)h ago") }
            shown.append(entry)
        }
        Terminal.standardOutput.write(options.json ? try JSON.encode(["rings": shown]) : out)
    }
}
