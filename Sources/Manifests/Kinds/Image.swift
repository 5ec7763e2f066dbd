import YAML

/// Disk image formats.
public enum ImageFormat: String, Sendable, CaseIterable, Codable {
    case qcow2, raw, iso
}

/// A bootable image.
public struct ImageSpec: ResourceSpec, DecodableSpec {
    public static let kind = Kind.image
    static let fields = ["format", "source", "checksum", "os", "minDisk", "minRam"]

    /// Disk format.
    public var format: Located<ImageFormat>
    /// Where the image comes from (a path in the image store or a URL; StackLab does not fetch it here).
    public var source: Located<String>
    /// `sha256:` and 64 hex digits.
    public var checksum: Located<String>?
    /// Operating system, free text (`ubuntu-24.04`).
    public var os: Located<String>?
    /// Smallest root disk it fits on.
    public var minDisk: Located<ByteSize>?
    /// Least memory it boots with.
    public var minRam: Located<ByteSize>?

    static func decode(from d: ManifestDecoder, what: @autoclosure () -> String) throws(YAMLError) -> ImageSpec? {
        var format: Located<ImageFormat>?, source: Located<String>?, checksum: Located<String>?
        var os: Located<String>?, minDisk: Located<ByteSize>?, minRam: Located<ByteSize>?
        guard try d.mapping(what(), required: ["format", "source"], { key throws(YAMLError) in
            switch key.value {
            case "format": format = try d.choice("format", ImageFormat.self)
            case "source": source = try d.string("source")
            case "checksum":
                checksum = try d.parsed("checksum", expected: "a sha256 checksum", hint: "write sha256: followed by 64 hex digits") { text in
                    let hex = text.dropFirst("sha256:".count)
                    return text.hasPrefix("sha256:") && hex.count == 64 && hex.allSatisfy(\.isHexDigit) ? text : nil
                }
            case "os": os = try d.string("os")
            case "minDisk": minDisk = try d.byteSize("minDisk")
            case "minRam": minRam = try d.byteSize("minRam")
            default: try d.unknownField(key, in: what(), known: fields)
            }
        }) != nil else { return nil }
        guard let format, let source else { return nil }
        return ImageSpec(format: format, source: source, checksum: checksum, os: os, minDisk: minDisk, minRam: minRam)
    }
}
