import ArgumentParser
import Foundation
import Rings

/// `stacklab bench rings`: the ring issue's workloads, timed in process.
struct BenchRings: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rings",
        abstract: "Build and rebalance the ring workloads W1–W4; report time, balance, dispersion and moves.",
        discussion: """
            Replicas 3, 12 disks per server, zones numbered globally with servers round-robin over them:
              W1  part power 10, 3 servers, each its own zone, every disk weight 2000
              W2  part power 16, 2 regions, 8 zones, 80 servers, server weights cycling 2000/4000/8000
              W3  part power 18, 4 regions, 16 zones, 200 servers, disk weights cycling 2000/4000/6000/8000 by server+disk
              W4  W2 plus 10 servers of the same pattern, min_part_hours elapsed, rebalanced
            W4's minimum is the partitions the new servers' weight entitles them to.
            """)

    @Option(help: "Runs (the median time is reported).")
    var runs = 5

    @Option(help: "text or json.")
    var format: OutputFormat = .text

    @Option(help: "Only these workloads (repeatable: W1, W2, W3, W4).")
    var workload: [String] = []

    struct Row: Encodable {
        var workload: String
        var medianSeconds: Double
        var balance: Double
        var dispersion: Int
        var moved: Int?
        var minimum: Int?
        var secondRebalanceMoved: Int
    }

    static func builder(partPower: Int, regions: Int, zones: Int, servers: Int, weight: (Int, Int) -> Double) throws -> RingBuilder {
        var builder = try RingBuilder(partPower: partPower, replicas: 3, minPartHours: 1)
        try addServers(to: &builder, range: 0..<servers, regions: regions, zones: zones, weight: weight)
        return builder
    }

    static func addServers(to builder: inout RingBuilder, range: Range<Int>, regions: Int, zones: Int, weight: (Int, Int) -> Double) throws {
        for server in range {
            let zone = server % zones
            let region = zone * regions / zones
            for disk in 0..<12 {
                try builder.add(BuilderDevice(region: region + 1, zone: zone + 1, ip: "10.\(server / 250).\(server % 250).1", port: 6200,
                                              device: "d\(disk)", weight: weight(server, disk)))
            }
        }
    }

    func run() throws {
        let cycle2 = [2000.0, 4000, 8000]
        let cycle3 = [2000.0, 4000, 6000, 8000]
        let workloads: [(String, () throws -> RingBuilder)] = [
            ("W1", { try Self.builder(partPower: 10, regions: 1, zones: 3, servers: 3) { _, _ in 2000 } }),
            ("W2", { try Self.builder(partPower: 16, regions: 2, zones: 8, servers: 80) { server, _ in cycle2[server % 3] } }),
            ("W3", { try Self.builder(partPower: 18, regions: 4, zones: 16, servers: 200) { server, disk in cycle3[(server + disk) % 4] } }),
        ]
        var rows: [Row] = []
        for (name, make) in workloads where workload.isEmpty || workload.contains(name) {
            var times: [Double] = []
            var result: (RingBuilder, RingBuilder.Report)?
            for _ in 0..<runs {
                var builder = try make()
                let start = DispatchTime.now().uptimeNanoseconds
                let report = try builder.rebalance(hour: 1000)
                times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
                result = (builder, report)
            }
            var (builder, report) = result!
            let again = try builder.rebalance(hour: 2000)
            rows.append(Row(workload: name, medianSeconds: times.sorted()[times.count / 2], balance: report.balance, dispersion: report.dispersion,
                            moved: nil, minimum: nil, secondRebalanceMoved: again.replicasMoved))
        }
        if !workload.isEmpty && !workload.contains("W4") {
            Terminal.standardOutput.write(format == .json ? try JSON.encode(rows) : Self.table(rows))
            return
        }
        // W4: W2 + 10 servers, incremental.
        var base = try Self.builder(partPower: 16, regions: 2, zones: 8, servers: 80) { server, _ in cycle2[server % 3] }
        _ = try base.rebalance(hour: 1000)
        var times: [Double] = []
        var final: (RingBuilder, RingBuilder.Report)?
        for _ in 0..<runs {
            var builder = base
            try Self.addServers(to: &builder, range: 80..<90, regions: 2, zones: 8) { server, _ in cycle2[server % 3] }
            let start = DispatchTime.now().uptimeNanoseconds
            let report = try builder.rebalance(hour: 1100)
            times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
            final = (builder, report)
        }
        var (w4, report) = final!
        let totalWeight = w4.devices.compactMap { $0?.weight }.reduce(0, +)
        let newWeight = w4.devices.compactMap { $0 }.filter { $0.id >= 960 }.map(\.weight).reduce(0, +)
        let minimum = Int((Double(3 << 16) * newWeight / totalWeight).rounded())
        let again = try w4.rebalance(hour: 1200)
        rows.append(Row(workload: "W4", medianSeconds: times.sorted()[times.count / 2], balance: report.balance, dispersion: report.dispersion,
                        moved: report.replicasMoved, minimum: minimum, secondRebalanceMoved: again.replicasMoved))

        Terminal.standardOutput.write(format == .json ? try JSON.encode(rows) : Self.table(rows))
    }

    static func table(_ rows: [Row]) -> String {
        var out = "workload   median s   balance %   dispersion   moved (minimum)     2nd rebalance moved\n"
        for row in rows {
            let moved = row.moved.map { "\($0) (\(row.minimum!))" } ?? "-"
            out += row.workload.padding(toLength: 9, withPad: " ", startingAt: 0)
            out += String(format: "%9.4f %11.2f %12d   ", row.medianSeconds, row.balance, row.dispersion)
            out += moved.padding(toLength: 20, withPad: " ", startingAt: 0) + "\(row.secondRebalanceMoved)\n"
        }
        return out
    }
}
