import ArgumentParser
import Foundation
import Processes
import Reconcile
import Snapshots
import StackLabCLI
import TestSupport

/// `stacklab-bench snapshot`: a first and an incremental snapshot of a 1 GiB volume into a real Swift cluster.
struct BenchSnapshot: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "snapshot",
        abstract: "Snapshot a 1 GiB volume into a loopback Swift cluster: first, then after 1% changed; time and bytes sent.",
        discussion: """
            Needs $STACKLAB_SWIFT_PYTHON (a venv with swift==2.38.3, as .ci/run makes). The cluster's rings are built \
            by StackLab: a generated region with three storage nodes on 127.0.0.2–4 is applied first. Rows:
              first        every 1 MiB chunk uploaded
              incremental  after 1% of the volume (10 chunks' worth, spread out) changed: only those chunks are asked
                           for and sent (the first snapshot's chunks are known to be stored)
              restore      the incremental snapshot read back and checked by sha256
            Beside them, what a user would use instead, on the same cluster, volume and segment size: python-swiftclient \
            (--swiftclient, a `swift` command from a venv: python3 -m venv .build/swiftclient-venv && \
            .build/swiftclient-venv/bin/pip install python-swiftclient):
              swift upload        swift upload --use-slo --segment-size 1 MiB of the first volume
              swift upload again  the same after the change, --skip-identical (only changed segments sent)
              swift download      the object read back
            """)

    @Option(help: "Volume size in MiB.")
    var mebibytes = 1024

    @Option(help: "text or json.")
    var format: OutputFormat = .text

    @Option(help: ArgumentHelp("python-swiftclient's `swift` command, the comparison (left out when absent).", valueName: "path"))
    var swiftclient = ".build/swiftclient-venv/bin/swift"

    func run() async throws {
        guard LoopbackSwift.python != nil else { throw fail("set STACKLAB_SWIFT_PYTHON to a python with swift==2.38.3 (.ci/run makes one in .build/swift-venv)") }
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("stacklab-bench-snapshot-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let cluster = try LoopbackStore.start(root: root, ports: (account: 16212, container: 16211, object: 16210))
        let store = SnapshotStore(client: try SwiftClient.authenticate(proxy: cluster.proxyURL, user: "test:tester", key: "testing"))

        // The volume is written (and later changed) a chunk at a time: the peak RSS is the snapshot code's, not the bench's.
        let volume = "\(root)/volume.img"
        _ = FileManager.default.createFile(atPath: volume, contents: nil)
        guard let writer = FileHandle(forWritingAtPath: volume) else { throw fail("cannot write \(volume)") }
        var seed: UInt64 = 0x5eed
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        for _ in 0..<mebibytes {
            for index in stride(from: 0, to: chunk.count, by: 8) {
                seed = seed &* 6364136223846793005 &+ 1442695040888963407
                withUnsafeBytes(of: seed) { for (offset, byte) in $0.enumerated() { chunk[index + offset] = byte } }
            }
            try writer.write(contentsOf: chunk)
        }
        func timed<T>(_ body: () async throws -> T) async rethrows -> (T, Double) {
            let start = DispatchTime.now().uptimeNanoseconds
            let result = try await body()
            return (result, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        let (first, firstSeconds) = try await timed { try store.upload(volume: "bench", name: "first", from: volume) }
        // python-swiftclient on the same volume, segment size and cluster (its own container).
        let client = FileManager.default.isExecutableFile(atPath: swiftclient) ? swiftclient : nil
        func swift(_ arguments: [String]) throws -> Double {
            let start = DispatchTime.now().uptimeNanoseconds
            let result = try Command.run([client!, "-A", "\(cluster.proxyURL)/auth/v1.0", "-U", "test:tester", "-K", "testing"] + arguments,
                                         stderr: .apart)
            guard result.status == 0 else { throw fail("swift \(arguments.joined(separator: " ")) failed: \(result.output.suffix(500)) \(result.errors.suffix(500))") }
            return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        }
        // A static large object: a dynamic one is read back at one segment a second past its tenth (Swift's DLO
        // rate limit), which would measure the limit, not the client.
        let upload = ["upload", "--use-slo", "--segment-size", "\(1 << 20)", "--object-name", "volume", "swiftclient", volume]
        let clientFirst = try client.map { _ in try swift(upload) }
        let changed = max(1, mebibytes / 100)
        try writer.close()
        guard let updater = FileHandle(forUpdatingAtPath: volume) else { throw fail("cannot change \(volume)") }
        for index in 0..<changed {
            let offset = UInt64(index * (mebibytes / changed)) << 20
            try updater.seek(toOffset: offset)
            let byte = try updater.read(upToCount: 1)?.first ?? 0
            try updater.seek(toOffset: offset)
            try updater.write(contentsOf: [byte ^ 0xFF])
        }
        try updater.close()
        let (second, secondSeconds) = try await timed { try store.upload(volume: "bench", name: "second", from: volume, after: first.manifest) }
        let (_, restoreSeconds) = try await timed { try store.restore(volume: "bench", name: "second", to: "\(root)/restored.img") }
        let clientAgain = try client.map { _ in try swift(upload.dropLast(1) + ["--skip-identical", volume]) }
        let clientDownload = try client.map { _ in try swift(["download", "swiftclient", "volume", "-o", "\(root)/downloaded.img"]) }
        // What `swift download` wrote must be the volume, or its time means nothing.
        let downloaded = (try? FileManager.default.attributesOfItem(atPath: "\(root)/downloaded.img")[.size] as? Int) ?? nil
        let downloadCounts = downloaded == mebibytes << 20
        let rss = ResidentMemory.peakMB()
        func row(_ name: String, _ seconds: Double, _ detail: String) -> BenchRow {
            BenchRow(name: name, medianSeconds: seconds, minSeconds: seconds, maxSeconds: seconds, peakRSSMB: rss, detail: detail)
        }
        func rate(_ seconds: Double) -> String { String(format: "%.0f MiB/s of the volume", Double(mebibytes) / seconds) }
        var rows = [
            row("first", firstSeconds, "\(first.chunksUploaded) chunks, \(first.bytesSent >> 20) MiB sent, \(rate(firstSeconds))"),
            row("incremental", secondSeconds, "\(second.chunksUploaded) chunks, \(second.bytesSent >> 20) MiB sent after \(changed) MiB changed, \(rate(secondSeconds))"),
            row("restore", restoreSeconds, "\(mebibytes) MiB read back, sha256 checked, \(rate(restoreSeconds))"),
        ]
        if let clientFirst, let clientAgain, let clientDownload {
            // Peak RSS of the largest child waited for: the `swift` processes (and the ring build's stacklab before them).
            var children = rusage()
            getrusage(RUSAGE_CHILDREN.rawValue, &children)
            func row(_ name: String, _ seconds: Double, _ detail: String) -> BenchRow {
                BenchRow(name: name, medianSeconds: seconds, minSeconds: seconds, maxSeconds: seconds, peakRSSMB: Double(children.ru_maxrss) / 1024, detail: detail)
            }
            rows += [
                row("swift upload", clientFirst, "python-swiftclient, 1 MiB segments, \(rate(clientFirst)) (StackLab's first: \(String(format: "%.2f×", clientFirst / firstSeconds)) as fast)"),
                row("swift upload again", clientAgain, "--skip-identical after the change, \(rate(clientAgain)) (StackLab's incremental: \(String(format: "%.2f×", clientAgain / secondSeconds)) as fast)"),
            ]
            if downloadCounts {
                rows.append(row("swift download", clientDownload, "\(rate(clientDownload)) (StackLab's restore: \(String(format: "%.2f×", clientDownload / restoreSeconds)) as fast)"))
            } else {
                rows[2].detail = (rows[2].detail ?? "") + "; swift download wrote \(downloaded.map(String.init) ?? "no file") bytes, not the volume's \(mebibytes << 20): not compared"
            }
        } else {
            rows[0].detail = (rows[0].detail ?? "") + "; python-swiftclient not found at \(swiftclient): no comparison"
        }
        let report = BenchReport(workload: "\(mebibytes) MiB volume, 1 MiB chunks, Swift 2.38.3 on loopback (3 replicas)",
                                 cores: ProcessInfo.processInfo.activeProcessorCount, runs: 1, rows: rows)
        Terminal.standardOutput.write(format == .json ? try JSON.encode(report) : report.table)
    }
}
