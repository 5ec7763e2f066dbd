import Foundation
import Hummingbird
import Logging
import Manifests
import NIOCore
import Planning

/// A compute node's metadata service: answers instances at 169.254.169.254 (DNAT'd to the node's gateway address,
/// port 8775) with what StackLab wrote for them under `<root>/etc/stacklab/metadata/<fixed-ip>.json`.
///
/// The client is known by its port, not by the address it claims: the node's ruleset marks every frame from an
/// instance's port with that instance's fixed IP (`FirewallRules.mark(for:)`), and with `net.ipv4.tcp_fwmark_accept=1`
/// (which StackLab sets when it loads the ruleset) an accepted connection carries its SYN's mark. A request answers only
/// when it came through a bound port and its source is that port's address; a connection without a mark (the ruleset
/// not loaded, the sysctl off, or not from an instance port) gets nothing. Files are read per request, so a change
/// StackLab applies is served at once.
public struct MetadataServer: Sendable {
    /// The node's file root (`/` on a production node).
    public var root: String
    public var host: String
    public var port: Int

    public init(root: String, host: String, port: Int) {
        self.root = root
        self.host = host
        self.port = port
    }

    /// The request context: the client's address and its connection (whose mark names its port).
    struct Context: RequestContext, RemoteAddressRequestContext {
        var coreContext: CoreRequestContextStorage
        let remoteAddress: SocketAddress?
        let channel: any Channel

        init(source: ApplicationRequestContextSource) {
            coreContext = .init(source: source)
            remoteAddress = source.channel.remoteAddress
            channel = source.channel
        }
    }

    /// `SO_MARK` (Linux).
    static let markOption = ChannelOptions.Types.SocketOption(level: .init(rawValue: SOL_SOCKET), name: .init(rawValue: 36))

    /// The fixed IP of the port a connection came through, from its mark; nil without one.
    static func portAddress(mark: Int?) -> String? {
        guard let mark, mark != 0 else { return nil }
        return IPv4Address(UInt32(truncatingIfNeeded: mark)).description
    }

    /// What to answer `path` for the client at `ip` whose connection came through the port bound to `portIP`: status and
    /// body.
    public static func answer(root: String, ip: String?, portIP: String?, path: String) -> (status: Int, body: String) {
        guard let ip else { return (400, "no client address\n") }
        guard let portIP else {
            return (403, "this connection did not come through an instance port the node's ruleset binds\n")
        }
        guard portIP == ip else { return (403, "\(ip) is not the address of the port this request came through\n") }
        let file = (root as NSString).appendingPathComponent("etc/stacklab/metadata/\(ip).json")
        guard let data = FileManager.default.contents(atPath: file), let metadata = try? JSONDecoder().decode(InstanceMetadata.self, from: data),
              metadata.localIPv4.description == ip else {
            return (404, "no instance has address \(ip) on this node\n")
        }
        guard let body = metadata.answer(path) else { return (404, "not found\n") }
        return (200, body)
    }

    /// Serves until the process gets SIGTERM or SIGINT; `ready` is called once the port is bound.
    public func run(ready: @escaping @Sendable () -> Void = {}) async throws {
        let root = self.root
        let responder = CallbackResponder<Context> { request, context in
            let ip = context.remoteAddress?.ipAddress
            let mark = try? await context.channel.getOption(Self.markOption).get()
            let (status, body) = request.method == .get || request.method == .head
                ? Self.answer(root: root, ip: ip, portIP: Self.portAddress(mark: mark), path: request.uri.path) : (405, "only GET\n")
            var headers = HTTPFields()
            headers[.contentType] = body.hasPrefix("{") ? "application/json" : "text/plain; charset=utf-8"
            return Response(status: .init(code: status), headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
        }
        var logger = Logger(label: "stacklab-metadata")
        logger.logLevel = .warning
        let app = Application(responder: responder, configuration: .init(address: .hostname(host, port: port), serverName: "stacklab-metadata"),
                              onServerRunning: { _ in ready() }, logger: logger)
        try await app.runService()
    }
}
