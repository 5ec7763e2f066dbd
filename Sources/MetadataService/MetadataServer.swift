import Foundation
import Hummingbird
import Logging
import NIOCore
import Planning

/// A compute node's metadata service: answers instances at 169.254.169.254 (DNAT'd to the node's gateway address,
/// port 8775) with what StackLab wrote for them under `<root>/etc/stacklab/metadata/<fixed-ip>.json`. The client is
/// known by its source address, which the node's bridge and ruleset make its own (a MAC-pinned DHCP lease on a
/// bridge the node routes). Files are read per request, so a change StackLab applies is served at once.
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

    /// The request context: the client's address comes from the connection.
    struct Context: RequestContext, RemoteAddressRequestContext {
        var coreContext: CoreRequestContextStorage
        let remoteAddress: SocketAddress?

        init(source: ApplicationRequestContextSource) {
            coreContext = .init(source: source)
            remoteAddress = source.channel.remoteAddress
        }
    }

    /// What to answer `path` for the client at `ip`: status and body.
    public static func answer(root: String, ip: String?, path: String) -> (status: Int, body: String) {
        guard let ip else { return (400, "no client address\n") }
        let file = (root as NSString).appendingPathComponent("etc/stacklab/metadata/\(ip).json")
        guard let data = FileManager.default.contents(atPath: file), let metadata = try? JSONDecoder().decode(InstanceMetadata.self, from: data) else {
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
            let (status, body) = request.method == .get || request.method == .head
                ? Self.answer(root: root, ip: ip, path: request.uri.path) : (405, "only GET\n")
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
