import Foundation

/// The rows a statement returned, in text format, with their column names.
public struct PostgresRows: Sendable {
    /// Column names, in order.
    public let columns: [String]
    /// Each row's values (nil for SQL NULL).
    public let values: [[String?]]
    /// Rows the statement changed (INSERT, UPDATE, DELETE), or 0.
    public let affected: Int

    /// The rows.
    public var rows: [PostgresRow] {
        let index = Dictionary(columns.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
        return values.map { PostgresRow(index: index, values: $0) }
    }

    /// The first row, if any.
    public var first: PostgresRow? { rows.first }
}

/// One row: values by column name, converted from PostgreSQL's text format.
public struct PostgresRow: Sendable {
    let index: [String: Int]
    let values: [String?]

    /// The value of `column` as text (nil for NULL or no such column).
    public subscript(_ column: String) -> String? {
        guard let position = index[column] else { return nil }
        return values[position]
    }

    /// Text that must be there.
    public func string(_ column: String) -> String { self[column] ?? "" }

    /// An integer column (bigint, integer).
    public func int64(_ column: String) -> Int64? { self[column].flatMap { Int64($0) } }

    /// An integer column that must be there.
    public func int(_ column: String) -> Int { self[column].flatMap { Int($0) } ?? 0 }

    /// A double precision column.
    public func double(_ column: String) -> Double? { self[column].flatMap { Double($0) } }

    /// A boolean column (`t`/`f`).
    public func bool(_ column: String) -> Bool { self[column] == "t" }

    /// A bytea column (hex output: `\x0a1b…`).
    public func data(_ column: String) -> Data? {
        guard let text = self[column] else { return nil }
        return PostgresValue.decodeBytea(text)
    }
}

/// Values sent as statement parameters, in PostgreSQL's text format.
public enum PostgresValue {
    /// A bytea parameter in hex format.
    public static func bytea(_ data: Data) -> String {
        let digits: [UInt8] = Array("0123456789abcdef".utf8)
        var bytes: [UInt8] = [UInt8(ascii: "\\"), UInt8(ascii: "x")]
        bytes.reserveCapacity(2 + data.count * 2)
        for byte in data {
            bytes.append(digits[Int(byte >> 4)])
            bytes.append(digits[Int(byte & 0xf)])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// A `text[]` parameter: each element quoted, backslashes and quotes escaped.
    public static func textArray(_ elements: [String]) -> String {
        "{" + elements.map { "\"" + $0.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\"" }.joined(separator: ",") + "}"
    }

    static func decodeBytea(_ text: String) -> Data? {
        var text = text
        return text.withUTF8 { utf8 -> Data? in
            guard utf8.count >= 2, utf8[0] == UInt8(ascii: "\\"), utf8[1] == UInt8(ascii: "x"), utf8.count % 2 == 0 else { return nil }
            var bytes = [UInt8](repeating: 0, count: (utf8.count - 2) / 2)
            var valid = true
            bytes.withUnsafeMutableBufferPointer { out in
                for index in 0..<out.count {
                    let high = Self.nibble(utf8[2 + 2 * index]), low = Self.nibble(utf8[3 + 2 * index])
                    if high > 15 || low > 15 { valid = false }
                    out[index] = high << 4 | (low & 0xf)
                }
            }
            return valid ? Data(bytes) : nil
        }
    }

    @inline(__always)
    private static func nibble(_ c: UInt8) -> UInt8 {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c &- UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c &- UInt8(ascii: "a") &+ 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c &- UInt8(ascii: "A") &+ 10
        default: 0xff
        }
    }
}
