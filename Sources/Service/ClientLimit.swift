import Foundation
import Hummingbird
import NIOCore

/// The service's request context: Hummingbird's basic one, plus the client's address (for per-client limits).
public struct ServiceRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }
}

/// At most `limit` requests of one client (by address) in flight at once on the routes it guards (the pages that
/// render statements and instance lists); one more gets 429 with `Retry-After`, at once. A flood of page views from one
/// client then holds a few threads, never the service's.
final class ClientLimit<Context: RequestContext & RemoteAddressRequestContext>: RouterMiddleware, @unchecked Sendable {  // counts behind `lock`
    let limit: Int
    private let lock = NSLock()
    private var inFlight: [String: Int] = [:]

    init(limit: Int) {
        self.limit = limit
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let client = context.remoteAddress?.ipAddress ?? "unknown"
        let admitted = lock.withLock { () -> Bool in
            guard inFlight[client, default: 0] < limit else { return false }
            inFlight[client, default: 0] += 1
            return true
        }
        guard admitted else {
            var headers = HTTPFields()
            headers[.retryAfter] = "1"
            headers[.contentType] = "text/plain; charset=utf-8"
            return Response(status: .tooManyRequests, headers: headers,
                            body: .init(byteBuffer: ByteBuffer(string: "too many pages at once from \(client): at most \(limit); retry in a second\n")))
        }
        defer {
            lock.withLock {
                inFlight[client, default: 1] -= 1
                if inFlight[client] == 0 { inFlight[client] = nil }
            }
        }
        return try await next(request, context)
    }
}
