/// A TCP/UDP port or inclusive range, written `22` or `"8000-8100"`.
public struct PortRange: Sendable, Hashable, TextCodable {
    public static let textKind = "port range"
    /// First port.
    public var lower: UInt16
    /// Last port (equal to `lower` for a single port).
    public var upper: UInt16

    /// Creates a range.
    public init(_ lower: UInt16, _ upper: UInt16) {
        self.lower = lower
        self.upper = upper
    }

    /// Parses `22` or `8000-8100`; nil when malformed, port 0, or reversed.
    public init?(parsing text: String) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), let lower = UInt16(parts[0].trimmingSpaces), lower > 0,
              let upper = parts.count == 2 ? UInt16(parts[1].trimmingSpaces) : lower, upper >= lower
        else { return nil }
        self.init(lower, upper)
    }

    /// `22` or `8000-8100`.
    public var description: String { lower == upper ? "\(lower)" : "\(lower)-\(upper)" }

}
