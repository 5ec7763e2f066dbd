import ArgumentParser
import Foundation
import Processes
import Rings
import StackLabCLI

/// `stacklab-bench rings`: the ring issue's workloads, timed in process.
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
            With --swift (default: $STACKLAB_SWIFT_PYTHON, a Python with OpenStack Swift installed), each workload is also
            built once by Swift's own RingBuilder in the same run: its time, balance and dispersion, and the ratio.
            """)

    @Option(help: "Runs (the median time is reported).")
    var runs = 5

    @Option(help: "text or json.")
    var format: OutputFormat = .text

    @Option(help: "Only these workloads (repeatable: W1, W2, W3, W4).")
    var workload: [String] = []

    @Option(help: ArgumentHelp("A Python with OpenStack Swift, to build the same workloads with Swift's RingBuilder (the anchor).", valueName: "python"))
    var swift: String?

    struct Row: Codable {
        var workload: String
        var medianSeconds: Double
        var balance: Double
        var dispersion: Int
        var moved: Int?
        var minimum: Int?
        var secondRebalanceMoved: Int
        /// Swift's RingBuilder on the same workload, in the same run (one build).
        var swift: SwiftRow?
        /// Swift's time over ours.
        var speedup: Double?
    }

    struct SwiftRow: Codable {
        var seconds: Double
        var balance: Double
        var dispersion: Double
        /// Partitions with a replica moved (Swift's count; ours counts replicas).
        var moved: Int?
    }

    /// Builds the workloads with Swift's RingBuilder (seeded, min_part_hours pretended to have passed for W4) and
    /// prints their rebalance times and results as JSON.
    static let swiftScript = """
        import json, sys, time
        from swift.common.ring import RingBuilder
        c2 = [2000.0, 4000.0, 8000.0]
        c3 = [2000.0, 4000.0, 6000.0, 8000.0]
        def add(b, servers, regions, zones, weight):
            for server in servers:
                zone = server % zones
                region = zone * regions // zones
                for disk in range(12):
                    b.add_dev({'region': region + 1, 'zone': zone + 1, 'ip': '10.%d.%d.1' % (server // 250, server % 250), 'port': 6200,
                               'device': 'd%d' % disk, 'weight': weight(server, disk)})
        def build(power, regions, zones, servers, weight):
            b = RingBuilder(power, 3, 1)
            add(b, range(servers), regions, zones, weight)
            return b
        def timed(b):
            start = time.perf_counter()
            moved, balance, _ = b.rebalance(seed=1)
            return time.perf_counter() - start, moved, balance
        out = {}
        for name in sys.argv[1:]:
            if name == 'W1': b = build(10, 1, 3, 3, lambda s, d: 2000.0)
            elif name == 'W2': b = build(16, 2, 8, 80, lambda s, d: c2[s % 3])
            elif name == 'W3': b = build(18, 4, 16, 200, lambda s, d: c3[(s + d) % 4])
            elif name == 'W4':
                b = build(16, 2, 8, 80, lambda s, d: c2[s % 3])
                b.rebalance(seed=1)
                b.pretend_min_part_hours_passed()
                add(b, range(80, 90), 2, 8, lambda s, d: c2[s % 3])
            else: continue
            seconds, moved, balance = timed(b)
            out[name] = {'seconds': seconds, 'balance': balance, 'dispersion': b.dispersion, 'moved': moved if name == 'W4' else None}
        print(json.dumps(out))
        """

    /// Swift's results for `names`, or nil (with a note on standard error) when Swift cannot be run.
    func swiftAnchor(_ names: [String]) -> [String: SwiftRow]? {
        guard let swift = swift ?? ProcessInfo.processInfo.environment["STACKLAB_SWIFT_PYTHON"], !names.isEmpty else { return nil }
        do {
            let result = try Command.run([swift, "-c", Self.swiftScript] + names, stderr: .captured)
            guard result.status == 0, let line = result.output.split(separator: "\n").last else {
                Terminal.standardError.write("note: Swift's RingBuilder did not run (\(result.output.suffix(500))); no anchor\n")
                return nil
            }
            return try JSONDecoder().decode([String: SwiftRow].self, from: Data(line.utf8))
        } catch {
            Terminal.standardError.write("note: cannot run \(swift): \(error); no anchor\n")
            return nil
        }
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
            Terminal.standardOutput.write(format == .json ? try JSON.encode(anchored(rows)) : Self.table(anchored(rows)))
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
        rows = anchored(rows)
        Terminal.standardOutput.write(format == .json ? try JSON.encode(rows) : Self.table(rows))
    }

    /// `rows` with Swift's figures and the speedup, when Swift can be run.
    func anchored(_ rows: [Row]) -> [Row] {
        guard let swift = swiftAnchor(rows.map(\.workload)) else { return rows }
        return rows.map { row in
            var row = row
            row.swift = swift[row.workload]
            row.speedup = row.swift.map { $0.seconds / max(row.medianSeconds, 1e-9) }
            return row
        }
    }

    static func table(_ rows: [Row]) -> String {
        var out = "workload   median s   balance %   dispersion   moved (minimum)     2nd rebalance moved\n"
        for row in rows {
            let moved = row.moved.map { "\($0) (\(row.minimum!))" } ?? "-"
            out += row.workload.padding(toLength: 9, withPad: " ", startingAt: 0)
            out += String(format: "%9.4f %11.2f %12d   ", row.medianSeconds, row.balance, row.dispersion)
            out += moved.padding(toLength: 20, withPad: " ", startingAt: 0) + "\(row.secondRebalanceMoved)\n"
            if let swift = row.swift, let speedup = row.speedup {
                out += String(format: "  Swift 2.38 in this run: %.3f s, balance %.2f %%, dispersion %.0f", swift.seconds, swift.balance, swift.dispersion)
                out += (swift.moved.map { ", \($0) partitions moved" } ?? "") + String(format: "; StackLab %.0f× faster\n", speedup)
            }
        }
        return out
    }
}
