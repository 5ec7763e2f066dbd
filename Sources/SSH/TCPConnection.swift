import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// TCP connections with deadlines: a node that accepts connections and then never answers must cost a bounded wait,
/// never a hung reconciler.
public enum TCPConnection {
    /// Connects to `host` (an IPv4 or IPv6 address, or a name) and `port` within `timeout` seconds; returns a blocking
    /// socket descriptor the caller owns.
    public static func open(host: String, port: UInt16, timeout: Double) throws(SSHError) -> Int32 {
        let endpoint = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_family = AF_UNSPEC
        var list: UnsafeMutablePointer<addrinfo>?
        let resolved = getaddrinfo(host, String(port), &hints, &list)
        guard resolved == 0, let first = list else {
            throw SSHError(operation: "resolve \(host)", code: resolved, message: String(cString: gai_strerror(resolved)))
        }
        defer { freeaddrinfo(list) }
        let deadline = Date().addingTimeInterval(timeout)
        var lastError = SSHError(operation: "connect to \(endpoint)", code: ETIMEDOUT, message: "no address to connect to")
        var candidate: UnsafeMutablePointer<addrinfo>? = first
        while let info = candidate {
            candidate = info.pointee.ai_next
            let fd = socket(info.pointee.ai_family, info.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), info.pointee.ai_protocol)
            guard fd >= 0 else { continue }
            let flags = fcntl(fd, F_GETFL)
            _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
            if connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) != 0 && errno != EINPROGRESS {
                lastError = SSHError(operation: "connect to \(endpoint)", code: errno, message: String(cString: strerror(errno)))
                close(fd)
                continue
            }
            do throws(SSHError) {
                try wait(fd, for: Int16(POLLOUT), until: deadline, what: "connect to \(endpoint)")
                var code: Int32 = 0
                var length = socklen_t(MemoryLayout<Int32>.size)
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &code, &length)
                guard code == 0 else { throw SSHError(operation: "connect to \(endpoint)", code: code, message: String(cString: strerror(code))) }
            } catch {
                lastError = error
                close(fd)
                continue
            }
            _ = fcntl(fd, F_SETFL, flags)
            // SSH sends many small packets (each command, each SFTP request): without this, Nagle and delayed ACKs
            // add tens of milliseconds to every round trip.
            var one: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            return fd
        }
        throw lastError
    }

    /// Connects and reads the server's SSH identification line (`SSH-2.0-…`) within `timeout` seconds: a node whose
    /// port accepts but stays silent, or answers with something else, is refused before anything is sent to it.
    @discardableResult
    public static func probeSSH(host: String, port: UInt16, timeout: Double) throws(SSHError) -> String {
        let endpoint = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        let deadline = Date().addingTimeInterval(timeout)
        let fd = try open(host: host, port: port, timeout: timeout)
        defer { close(fd) }
        var line: [UInt8] = []
        while true {
            try wait(fd, for: Int16(POLLIN), until: deadline, what: "read the SSH banner of \(endpoint)")
            var byte: UInt8 = 0
            let count = read(fd, &byte, 1)
            guard count == 1 else {
                throw SSHError(operation: "read the SSH banner of \(endpoint)", code: errno, message: "the connection closed before an SSH banner")
            }
            if byte == UInt8(ascii: "\n") {
                let text = String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                if text.hasPrefix("SSH-") { return text }
                line = []  // RFC 4253 allows other lines before the identification
                continue
            }
            line.append(byte)
            guard line.count <= 255 else {
                throw SSHError(operation: "read the SSH banner of \(endpoint)", code: EPROTO, message: "it does not speak SSH")
            }
        }
    }

    private static func wait(_ fd: Int32, for events: Int16, until deadline: Date, what: String) throws(SSHError) {
        while true {
            let left = deadline.timeIntervalSinceNow
            guard left > 0 else { throw SSHError(operation: what, code: ETIMEDOUT, message: "no answer within the deadline") }
            var entry = pollfd(fd: fd, events: events, revents: 0)
            let ready = poll(&entry, 1, Int32(min(left * 1000, 60_000).rounded(.up)))
            if ready > 0 { return }
            if ready < 0 && errno != EINTR { throw SSHError(operation: what, code: errno, message: String(cString: strerror(errno))) }
        }
    }
}
