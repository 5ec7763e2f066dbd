/// JSON written the way Python's `json.dumps(value, sort_keys=True, ensure_ascii=True)` writes it (", " and ": "
/// separators, non-ASCII escaped, floats in repr form), so ring files match Swift's byte for byte.
indirect enum PythonJSON {
    case null
    case int(Int)
    case double(Double)
    case string(String)
    case array([PythonJSON])
    /// Keys must already be sorted.
    case object([(String, PythonJSON)])

    var text: String {
        var out = ""
        write(to: &out)
        return out
    }

    func write(to out: inout String) {
        switch self {
        case .null: out += "null"
        case .int(let value): out += String(value)
        case .double(let value): out += Self.repr(value)
        case .string(let value): Self.quote(value, into: &out)
        case .array(let items):
            out += "["
            for (index, item) in items.enumerated() {
                if index > 0 { out += ", " }
                item.write(to: &out)
            }
            out += "]"
        case .object(let fields):
            out += "{"
            for (index, (key, value)) in fields.enumerated() {
                if index > 0 { out += ", " }
                Self.quote(key, into: &out)
                out += ": "
                value.write(to: &out)
            }
            out += "}"
        }
    }

    /// Python's float repr: shortest round-trip digits, always with a '.' or exponent.
    static func repr(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "Infinity" : "-Infinity" }
        var text = value.description  // Swift also prints the shortest round-trip form
        if let e = text.firstIndex(of: "e") {
            // Python writes 1e+16 and 1e-05: a sign, and at least two exponent digits.
            let mantissa = text[..<e]
            var exponent = String(text[text.index(after: e)...])
            let sign = exponent.hasPrefix("-") ? "-" : "+"
            exponent = exponent.trimmingPrefix("-").trimmingPrefix("+").description
            if exponent.count < 2 { exponent = "0" + exponent }
            let cleanMantissa = mantissa.hasSuffix(".0") ? String(mantissa.dropLast(2)) : String(mantissa)
            text = cleanMantissa + "e" + sign + exponent
        }
        return text
    }

    static func quote(_ string: String, into out: inout String) {
        out += "\""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if scalar.value < 0x20 || scalar.value > 0x7F {
                    for unit in String(scalar).utf16 {
                        let hex = String(unit, radix: 16)
                        out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                    }
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out += "\""
    }
}
