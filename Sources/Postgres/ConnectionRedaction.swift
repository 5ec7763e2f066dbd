extension PostgresConnection {
    /// A connection string with every secret in it replaced by `***`, for messages and logs. Both of libpq's forms are
    /// parsed, not pattern-matched:
    /// - a URL, `postgres[ql]://[user[:password]@][host[:port]][,host[:port]…][/database][?key=value&…]` (several hosts
    ///   for a primary and its standbys): the password of the user part, and the `password` and `sslpassword`
    ///   parameters;
    /// - keyword/value pairs, `host=db password='s3 cret' dbname=cloud`: the same keywords, quoted or not.
    /// Anything else (not a connection string StackLab accepts) is replaced whole.
    public static func redacted(_ connection: String) -> String {
        let secrets: Set<String> = ["password", "sslpassword"]
        for scheme in ["postgresql://", "postgres://"] where connection.hasPrefix(scheme) {
            var rest = Substring(connection.dropFirst(scheme.count))
            var query: Substring?
            if let mark = rest.firstIndex(of: "?") {
                query = rest[rest.index(after: mark)...]
                rest = rest[..<mark]
            }
            // The user part ends at the last `@` (a password may hold `/` or `:`).
            var user: Substring?
            if let at = rest.lastIndex(of: "@") {
                user = rest[..<at]
                rest = rest[rest.index(after: at)...]
            }
            var text = scheme
            if let user {
                if let colon = user.firstIndex(of: ":") { text += user[..<colon] + ":***@" } else { text += user + "@" }
            }
            text += rest
            if let query {
                let pairs = query.split(separator: "&", omittingEmptySubsequences: false).map { pair -> String in
                    let key = pair.split(separator: "=", maxSplits: 1).first.map(String.init) ?? ""
                    return secrets.contains((key.removingPercentEncodingOrSelf).lowercased()) ? "\(key)=***" : String(pair)
                }
                text += "?" + pairs.joined(separator: "&")
            }
            return text
        }
        guard connection.contains("=") else { return "***" }
        // Keyword/value: key = value, value bare or single-quoted with backslash escapes.
        var out = ""
        var index = connection.startIndex
        while index < connection.endIndex {
            let character = connection[index]
            guard !character.isWhitespace else {
                out.append(character)
                index = connection.index(after: index)
                continue
            }
            var keyEnd = index
            while keyEnd < connection.endIndex, connection[keyEnd] != "=", !connection[keyEnd].isWhitespace { keyEnd = connection.index(after: keyEnd) }
            let key = connection[index..<keyEnd]
            var cursor = keyEnd
            while cursor < connection.endIndex, connection[cursor].isWhitespace { cursor = connection.index(after: cursor) }
            guard cursor < connection.endIndex, connection[cursor] == "=" else { return "***" }
            cursor = connection.index(after: cursor)
            while cursor < connection.endIndex, connection[cursor].isWhitespace { cursor = connection.index(after: cursor) }
            let valueStart = cursor
            if cursor < connection.endIndex, connection[cursor] == "'" {
                cursor = connection.index(after: cursor)
                while cursor < connection.endIndex, connection[cursor] != "'" {
                    if connection[cursor] == "\\" { cursor = connection.index(after: cursor) }
                    if cursor < connection.endIndex { cursor = connection.index(after: cursor) }
                }
                if cursor < connection.endIndex { cursor = connection.index(after: cursor) }
            } else {
                while cursor < connection.endIndex, !connection[cursor].isWhitespace { cursor = connection.index(after: cursor) }
            }
            out += key + "=" + (secrets.contains(key.lowercased()) ? "***" : String(connection[valueStart..<cursor]))
            index = cursor
        }
        return out
    }
}

extension String {
    /// Percent-decoded, or itself when it is not valid percent-encoding.
    fileprivate var removingPercentEncodingOrSelf: String {
        var bytes: [UInt8] = []
        var iterator = utf8.makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%"), let high = iterator.next(), let low = iterator.next(), let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16) {
                bytes.append(value)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
