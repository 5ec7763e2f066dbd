/// How StackLab marks what it owns: a `<metadata>` element in its own XML namespace carrying the resource's
/// address and spec hash. Objects without it are unmanaged: reported, never touched.
public enum Ownership {
    /// StackLab's metadata namespace URI.
    public static let namespace = "https://stacklab.dev/xmlns/resource/1"
    /// The element's prefix and name.
    public static let prefix = "stacklab"
    public static let element = "resource"

    /// The metadata element for an object.
    public static func element(address: String, specHash: String, extra: [(String, String)] = []) -> String {
        var attributes = "address='\(XMLText.escape(address))' spec='\(specHash)'"
        for (name, value) in extra { attributes += " \(name)='\(XMLText.escape(value))'" }
        return "<\(prefix):\(element) xmlns:\(prefix)='\(namespace)' \(attributes)/>"
    }

    /// Reads the attributes of StackLab's metadata element out of a domain's XML (or out of the element alone,
    /// as `virDomainGetMetadata` returns it), or nil when the object carries none: it is not ours.
    public static func parse(_ xml: String) -> [String: String]? {
        guard let uri = xml.range(of: namespace),
              let open = xml[..<uri.lowerBound].lastIndex(of: "<"),
              let close = xml[uri.upperBound...].firstIndex(of: ">")
        else { return nil }
        return attributes(of: xml[xml.index(after: open)..<close])
    }

    /// The attributes of the element `virDomainGetMetadata` returns for StackLab's namespace (libvirt strips the
    /// namespace from it: asking by URI already made sure it is ours), or nil without an address.
    public static func parseElement(_ xml: String) -> [String: String]? {
        guard let open = xml.firstIndex(of: "<"), let close = xml.lastIndex(of: ">"), open < close else { return nil }
        return attributes(of: xml[xml.index(after: open)..<close])
    }

    private static func attributes(of element: Substring) -> [String: String]? {
        var attributes: [String: String] = [:]
        var rest = element
        while let equals = rest.firstIndex(of: "=") {
            let nameStart = rest[..<equals].lastIndex(where: { $0 == " " || $0 == "\t" || $0 == "\n" }).map { rest.index(after: $0) } ?? rest.startIndex
            let name = String(rest[nameStart..<equals])
            let afterEquals = rest.index(after: equals)
            guard afterEquals < rest.endIndex else { break }
            let quote = rest[afterEquals]
            guard quote == "'" || quote == "\"" else { rest = rest[afterEquals...]; continue }
            let valueStart = rest.index(after: afterEquals)
            guard let valueEnd = rest[valueStart...].firstIndex(of: quote) else { break }
            attributes[name] = unescape(String(rest[valueStart..<valueEnd]))
            rest = rest[rest.index(after: valueEnd)...]
        }
        return attributes["address"] == nil ? nil : attributes
    }

    /// The five entities XML escaping writes; a value without `&` (nearly every one) is given back as it is, without
    /// five Foundation searches over it.
    private static func unescape(_ text: String) -> String {
        guard text.utf8.contains(UInt8(ascii: "&")) else { return text }
        return text.replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
            .replacingOccurrences(of: "&apos;", with: "'").replacingOccurrences(of: "&quot;", with: "\"")
            .replacingOccurrences(of: "&amp;", with: "&")
    }
}
