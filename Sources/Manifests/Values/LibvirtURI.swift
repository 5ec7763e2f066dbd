/// The libvirt connections a manifest may name. Manifests arrive in pull requests and are planned by CI, so a URI is an
/// instruction to connect somewhere, never to run something: only `simulated` (libvirt's test driver on a host file
/// StackLab keeps) and QEMU's system instance over SSH are accepted. Every other transport (`ext` runs a program,
/// `unix`/`tcp`/`tls` reach local or unauthenticated daemons, `test:///path` reads an arbitrary file) and every query
/// parameter (`command`, `socket`, `netcat`, `keyfile`, `no_verify`…) is refused.
public struct LibvirtURI: Sendable, Hashable, CustomStringConvertible {
    /// Where the node's libvirt is.
    public enum Endpoint: Sendable, Hashable {
        /// libvirt's test driver on a host file under the state directory.
        case simulated
        /// `qemu+ssh://[user@]host[:port]/system` (`qemu+libssh2://` with `libssh2`).
        case ssh(user: String?, host: String, port: Int?, libssh2: Bool)
    }

    public let endpoint: Endpoint

    /// The URI as libvirt takes it.
    public var description: String {
        switch endpoint {
        case .simulated:
            return "simulated"
        case .ssh(let user, let host, let port, let libssh2):
            let hostPart = host.contains(":") ? "[\(host)]" : host
            return "qemu+\(libssh2 ? "libssh2" : "ssh")://\(user.map { "\($0)@" } ?? "")\(hostPart)\(port.map { ":\($0)" } ?? "")/system"
        }
    }

    /// What a manifest should write instead of a refused URI.
    public static let hint = "write simulated, or qemu+ssh://[user@]host[:port]/system (no other transport, no query parameters)"

    /// Parses `text`; nil for anything but the accepted forms.
    public init?(parsing text: String) {
        if text == "simulated" {
            endpoint = .simulated
            return
        }
        let libssh2: Bool
        var rest: Substring
        if text.hasPrefix("qemu+ssh://") {
            libssh2 = false
            rest = text.dropFirst("qemu+ssh://".count)
        } else if text.hasPrefix("qemu+libssh2://") {
            libssh2 = true
            rest = text.dropFirst("qemu+libssh2://".count)
        } else {
            return nil
        }
        guard rest.hasSuffix("/system") else { return nil }
        rest = rest.dropLast("/system".count)
        var user: String?
        if let at = rest.firstIndex(of: "@") {
            let name = rest[..<at]
            guard let first = name.first, first.isASCII, first.isLetter || first == "_", name.count <= 32,
                  name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" || $0 == ".") })
            else { return nil }
            user = String(name)
            rest = rest[rest.index(after: at)...]
        }
        var host: Substring
        var port: Int?
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { return nil }
            host = rest[rest.index(after: rest.startIndex)..<close]
            guard !host.isEmpty, host.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }), host.contains(":") else { return nil }
            rest = rest[rest.index(after: close)...]
        } else {
            let end = rest.firstIndex(of: ":") ?? rest.endIndex
            host = rest[..<end]
            guard !host.isEmpty, host.count <= 253, !host.hasPrefix("-"), !host.hasPrefix("."),
                  host.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == ".") })
            else { return nil }
            rest = rest[end...]
        }
        if rest.hasPrefix(":") {
            let digits = rest.dropFirst()
            guard !digits.isEmpty, digits.count <= 5, digits.allSatisfy(\.isASCII), let value = Int(digits), (1...65535).contains(value) else { return nil }
            port = value
        } else if !rest.isEmpty {
            return nil
        }
        endpoint = .ssh(user: user, host: String(host), port: port, libssh2: libssh2)
    }
}
