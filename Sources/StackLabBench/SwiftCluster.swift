import ArgumentParser
import Foundation
import Processes
import StackLabCLI
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// A loopback Swift cluster on rings StackLab builds: a generated region `store` of three storage nodes on
/// 127.0.0.2–4 is applied (simulated nodes, under `root`), its ring files copied, and the servers started.
enum LoopbackStore {
    static func start(root: String, ports: (account: Int, container: Int, object: Int), tempauth: [String] = []) throws -> LoopbackSwift {
        let repo = "\(root)/repo", state = "\(root)/state", swiftDirectory = "\(root)/swift"
        try FileManager.default.createDirectory(atPath: repo + "/regions/store", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: swiftDirectory, withIntermediateDirectories: true)
        var text = "kind: Region\nname: store\nspec: {sponsor: loopback}\n---\nkind: Network\nname: private\nregion: store\nspec: {bridge: br100, fixedRange: 10.50.0.0/24, gateway: 10.50.0.1}\n"
        for index in 2...4 {
            text += "---\nkind: Node\nname: st-\(index)\nregion: store\nspec: {address: 127.0.0.\(index), libvirt: simulated, roles: [\(index == 2 ? "controller, " : "")compute, storage], cpus: 4, memory: 8GiB, disks: [{name: sdb, size: 100GB}]}\n"
        }
        for (ring, port, power) in [("account", ports.account, 8), ("container", ports.container, 8), ("object", ports.object, 10)] {
            text += "---\nkind: Ring\nname: \(ring)\nregion: store\nspec: {partPower: \(power), replicas: 3, devices: {port: \(port)}}\n"
        }
        try text.write(toFile: repo + "/regions/store/all.yaml", atomically: true, encoding: .utf8)
        try Command.check(["git", "init", "-q", repo])
        try Command.check(["git", "-C", repo, "add", "-A"])
        try Command.check(["git", "-C", repo, "-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit", "-qm", "store"])
        try Command.check([SelfPath.stacklab, "apply", "--auto-approve", "--repo", repo, "--state-dir", state])
        for ring in ["account", "container", "object"] {
            let target = "\(swiftDirectory)/\(ring).ring.gz"
            if FileManager.default.fileExists(atPath: target) { try FileManager.default.removeItem(atPath: target) }
            try FileManager.default.copyItem(atPath: "\(state)/nodes/store/st-2/etc/swift/\(ring).ring.gz", toPath: target)
        }
        return try LoopbackSwift(swiftDirectory: swiftDirectory,
                                 nodes: (2...4).map { LoopbackSwift.Node(address: "127.0.0.\($0)", root: "\(root)/node-\($0)", devices: ["sdb"]) },
                                 ports: ports, tempauth: tempauth)
    }
}

/// `stacklab-bench swift-cluster`: a real Swift cluster on loopback to try tenants' object storage on one machine.
struct SwiftClusterCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "swift-cluster",
        abstract: "Run a loopback Swift cluster (on rings StackLab builds) until interrupted: for trying object storage on one machine.",
        discussion: """
            Needs $STACKLAB_SWIFT_PYTHON (a venv with swift==2.38.3, as .ci/run makes). Starts a proxy on 127.0.0.1 and \
            account, container and object servers on 127.0.0.2–4, with tempauth users test:tester (key testing, the \
            operator's snapshot account) and admin:admin (key admin, .reseller_admin: what a Region's objectStore \
            reseller signs in as), plus each --tempauth line (what stacklab tenant storage-key prints). Prints the proxy's \
            URL, then runs until SIGINT or SIGTERM and stops every server it started. Its files live under --dir.
            """)

    @Option(help: ArgumentHelp("Where the cluster's rings, devices and logs live (made when missing).", valueName: "dir"))
    var dir: String

    @Option(help: ArgumentHelp("A tempauth user line to add (repeatable): user64_…_… = KEY .admin", valueName: "line"))
    var tempauth: [String] = []

    @Option(help: "The first of three ports for the account, container and object servers.")
    var portBase = 16_220

    func validate() throws {
        guard (1_024...65_000).contains(portBase) else { throw ValidationError("--port-base must be between 1024 and 65000") }
        for line in tempauth where !line.hasPrefix("user") || !line.contains(" = ") || line.contains("\n") {
            throw ValidationError("--tempauth takes one tempauth user line (user64_ACCOUNT_USER = KEY .admin), not '\(line)'")
        }
    }

    func run() throws {
        guard LoopbackSwift.python != nil else { throw fail("set STACKLAB_SWIFT_PYTHON to a python with swift==2.38.3 (.ci/run makes one in .build/swift-venv)") }
        // The signals are taken by dispatch sources (ignored as signals: any thread might otherwise take one and die).
        let stop = DispatchSemaphore(value: 0)
        let received = Received()
        let sources = [SIGINT, SIGTERM].map { signal -> any DispatchSourceSignal in
            Glibc.signal(signal, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signal, queue: .global())
            source.setEventHandler {
                received.set(signal)
                stop.signal()
            }
            source.resume()
            return source
        }
        let root = URL(fileURLWithPath: dir).standardizedFileURL.path
        let cluster = try LoopbackStore.start(root: root, ports: (account: portBase + 2, container: portBase + 1, object: portBase), tempauth: tempauth)
        let users = tempauth.isEmpty ? "" : ", and \(tempauth.count) tenant user\(tempauth.count == 1 ? "" : "s")"
        FileHandle.standardOutput.write(Data("""
            swift proxy: \(cluster.proxyURL)
            users: test:tester (key testing), admin:admin (key admin, reseller admin)\(users)
            running until interrupted (SIGINT or SIGTERM)

            """.utf8))
        stop.wait()
        withExtendedLifetime((cluster, sources)) {}
        FileHandle.standardOutput.write(Data("stopped on signal \(received.get())\n".utf8))
    }
}

/// The signal that stopped the cluster, handed from the dispatch source to the waiting thread.
private final class Received: @unchecked Sendable {  // `value` behind `lock`
    private let lock = NSLock()
    private var value: Int32 = 0
    func set(_ signal: Int32) { lock.withLock { value = signal } }
    func get() -> Int32 { lock.withLock { value } }
}
