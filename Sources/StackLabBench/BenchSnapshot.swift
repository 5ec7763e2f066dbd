import ArgumentParser
import Foundation
import Processes
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
            """)

    @Option(help: "Volume size in MiB.")
    var mebibytes = 1024

    @Option(help: "text or json.")
    var format: OutputFormat = .text

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
        let rss = BenchIncremental.peakRSSMB()
        func row(_ name: String, _ seconds: Double, _ detail: String) -> BenchRow {
            BenchRow(name: name, medianSeconds: seconds, minSeconds: seconds, maxSeconds: seconds, peakRSSMB: rss, detail: detail)
        }
        let report = BenchReport(workload: "\(mebibytes) MiB volume, 1 MiB chunks, Swift 2.38.3 on loopback (3 replicas)",
                                 cores: ProcessInfo.processInfo.activeProcessorCount, runs: 1, rows: [
            row("first", firstSeconds, "\(first.chunksUploaded) chunks, \(first.bytesSent >> 20) MiB sent (\(String(format: "%.0f", Double(first.bytesSent) / 1_048_576 / firstSeconds)) MiB/s)"),
            row("incremental", secondSeconds, "\(second.chunksUploaded) chunks, \(second.bytesSent >> 20) MiB sent after \(changed) MiB changed"),
            row("restore", restoreSeconds, "\(mebibytes) MiB read back, sha256 checked"),
        ])
        Terminal.standardOutput.write(format == .json ? try JSON.encode(report) : report.table)
    }
}
