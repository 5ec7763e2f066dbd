import Foundation
import Processes
#if canImport(Glibc)
import Glibc
#endif

/// A real OpenStack Swift cluster on loopback (Swift 2.38.3 from `$STACKLAB_SWIFT_PYTHON`'s venv): account, container
/// and object servers on each storage "node" (127.0.0.x, its devices as directories), and a proxy with tempauth
/// (`test:tester` / `testing`, and the reseller admin `admin:admin` / `admin`, plus any `tempauth` user lines the test
/// gives), account and container quotas and object versioning, and a container updater per node (an account's byte
/// and object counts follow its containers' within a second or so, as in a real cluster, asynchronously). The rings
/// are whatever the test puts in `swiftDirectory` (StackLab's own). Every server is stopped by PID when the cluster goes.
///
/// The proxy waits up to 10 s (not Swift's 0.5 s, `post_quorum_timeout`) for the replicas left once a write has its
/// quorum: on a loaded CI machine a slow container server could otherwise still hold the old metadata when the next
/// read reaches it, and a test that changes a container by hand and plans at once would read either.
public final class LoopbackSwift {
    /// One storage node: its address, the directory holding its devices (`<root>/srv/node/<device>`), and its devices.
    public struct Node {
        public var address: String
        public var root: String
        public var devices: [String]

        public init(address: String, root: String, devices: [String]) {
            self.address = address
            self.root = root
            self.devices = devices
        }
    }

    /// Where swift.conf and the ring files live.
    public let swiftDirectory: String
    /// The proxy's URL (`http://127.0.0.1:<port>`).
    public let proxyURL: String
    private let bin: String
    private var servers: [String: pid_t] = [:]
    private let directory: String

    /// The Python of a venv with Swift installed, or nil.
    public static var python: String? {
        guard let python = ProcessInfo.processInfo.environment["STACKLAB_SWIFT_PYTHON"], FileManager.default.isExecutableFile(atPath: python) else { return nil }
        return python
    }

    /// Writes the configuration and starts every server; returns once the proxy answers its health check and every
    /// storage port accepts connections. `ports` are the account, container and object ports the rings name.
    public init(swiftDirectory: String, nodes: [Node], ports: (account: Int, container: Int, object: Int), tempauth: [String] = []) throws {
        guard let python = Self.python else { throw Command.Failure(description: "no Swift venv: set STACKLAB_SWIFT_PYTHON (.ci/run does)") }
        bin = (python as NSString).deletingLastPathComponent
        self.swiftDirectory = swiftDirectory
        let proxyPort = try LoopbackSSHD.freePort(address: "127.0.0.1")
        proxyURL = "http://127.0.0.1:\(proxyPort)"
        directory = NSTemporaryDirectory() + "/stacklab-swift-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try """
            [swift-hash]
            swift_hash_path_suffix = stacklab-test
            swift_hash_path_prefix = stacklab-test

            [storage-policy:0]
            name = gold
            default = yes

            """.write(toFile: "\(swiftDirectory)/swift.conf", atomically: true, encoding: .utf8)
        for node in nodes {
            for device in node.devices { try FileManager.default.createDirectory(atPath: "\(node.root)/srv/node/\(device)", withIntermediateDirectories: true) }
            for (kind, port) in [("account", ports.account), ("container", ports.container), ("object", ports.object)] {
                let conf = "\(directory)/\(kind)-\(node.address).conf"
                try """
                    [DEFAULT]
                    devices = \(node.root)/srv/node
                    mount_check = false
                    bind_ip = \(node.address)
                    bind_port = \(port)
                    workers = 0
                    user = root
                    swift_dir = \(swiftDirectory)
                    fallocate_reserve = 0
                    log_name = \(kind)-\(node.address)

                    [pipeline:main]
                    pipeline = \(kind)-server

                    [app:\(kind)-server]
                    use = egg:swift#\(kind)

                    [container-updater]
                    interval = 1
                    concurrency = 1

                    """.write(toFile: conf, atomically: true, encoding: .utf8)
                try start("\(kind)-\(node.address)", conf: conf, program: "swift-\(kind)-server")
                if kind == "container" {
                    // A daemon reads /etc/swift/swift.conf unless told where swift.conf is (the servers take swift_dir).
                    let script = "import sys; from swift.common import utils; utils.set_swift_dir('\(swiftDirectory)'); from swift.container.updater import main; "
                        + "sys.argv = ['swift-container-updater', '\(conf)']; sys.exit(main())"
                    servers["container-updater-\(node.address)"] = try Command.start(["sh", "-c", "exec \(bin)/python -c \"\(script)\" > \(directory)/container-updater-\(node.address).log 2>&1 < /dev/null"])
                }
            }
        }
        var key = [UInt8](repeating: 0, count: 32)
        for index in key.indices { key[index] = UInt8.random(in: 0...255) }
        let fernet = Data(key).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        let proxyConf = "\(directory)/proxy.conf"
        try """
            [DEFAULT]
            bind_ip = 127.0.0.1
            bind_port = \(proxyPort)
            workers = 0
            user = root
            swift_dir = \(swiftDirectory)

            [pipeline:main]
            pipeline = catch_errors gatekeeper healthcheck proxy-logging listing_formats tempauth copy container-quotas account-quotas slo versioned_writes symlink proxy-server

            [app:proxy-server]
            use = egg:swift#proxy
            account_autocreate = true
            post_quorum_timeout = 10

            [filter:tempauth]
            use = egg:swift#tempauth
            user_test_tester = testing .admin
            user_admin_admin = admin .admin .reseller_admin
            \(tempauth.joined(separator: "\n"))
            fernet_key_k1 = \(fernet)
            active_fernet_key_id = k1

            [filter:catch_errors]
            use = egg:swift#catch_errors

            [filter:gatekeeper]
            use = egg:swift#gatekeeper

            [filter:listing_formats]
            use = egg:swift#listing_formats

            [filter:copy]
            use = egg:swift#copy

            [filter:container-quotas]
            use = egg:swift#container_quotas

            [filter:account-quotas]
            use = egg:swift#account_quotas

            [filter:versioned_writes]
            use = egg:swift#versioned_writes
            allow_object_versioning = true

            [filter:symlink]
            use = egg:swift#symlink

            [filter:slo]
            use = egg:swift#slo
            max_manifest_segments = 10000

            [filter:healthcheck]
            use = egg:swift#healthcheck

            [filter:proxy-logging]
            use = egg:swift#proxy_logging

            """.write(toFile: proxyConf, atomically: true, encoding: .utf8)
        try start("proxy", conf: proxyConf, program: "swift-proxy-server")
        for _ in 0..<400 {
            if (try? Command.run(["curl", "-sf", "\(proxyURL)/healthcheck"]))?.status == 0 { return }
            usleep(25_000)
        }
        throw Command.Failure(description: "the Swift proxy did not come up: \((try? String(contentsOfFile: "\(directory)/proxy.log", encoding: .utf8)) ?? "")")
    }

    deinit {
        for pid in servers.values { Command.stop(pid) }
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func start(_ name: String, conf: String, program: String) throws {
        servers[name] = try Command.start(["sh", "-c", "exec \(bin)/\(program) \(conf) -v > \(directory)/\(name).log 2>&1 < /dev/null"])
    }

    /// Stops one server and starts it again (`proxy` after its rings changed).
    public func restart(_ name: String) throws {
        stop(name)
        try start(name, conf: "\(directory)/\(name).conf", program: "swift-\(name.split(separator: "-")[0])-server")
        guard name == "proxy" else { return }
        for _ in 0..<400 {
            if (try? Command.run(["curl", "-sf", "\(proxyURL)/healthcheck"]))?.status == 0 { return }
            usleep(25_000)
        }
        throw Command.Failure(description: "the Swift proxy did not come back")
    }

    /// Stops one server (`object-127.0.0.3`): a storage node losing a service.
    public func stop(_ name: String) {
        if let pid = servers.removeValue(forKey: name) { Command.stop(pid) }
    }
}
