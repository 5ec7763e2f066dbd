extension Sequence<UInt8> {
    /// The bytes in lowercase hexadecimal, two digits each (a digest as sha256sum prints it). Written digit by digit:
    /// `String(format: "%02x")` per byte goes through Foundation's formatter, a microsecond a byte on Linux.
    public var hexDigits: String {
        let digits = Array("0123456789abcdef".utf8)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(underestimatedCount * 2)
        for byte in self {
            bytes.append(digits[Int(byte >> 4)])
            bytes.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
