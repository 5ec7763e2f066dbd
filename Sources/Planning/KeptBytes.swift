import Foundation
import Zlib

/// Bytes a change carries whole to where they are written, and that nothing reads in between (a ring builder's state,
/// saved in the state store): deflated once the plan is kept for later (`compacted()`), and read, encoded, compared
/// and hashed as the bytes they are. A region waiting to be converged keeps three ring builders' states of 50–70 KB
/// of JSON each; deflated they are about 8 KB.
public struct KeptBytes: Sendable, Hashable, Codable {
    private enum Storage: Sendable {
        case plain(Data)
        /// Deflated by `Zlib.kept`, from `count` bytes.
        case deflated([UInt8], count: Int)
    }

    private var storage: Storage

    /// `data` as it is.
    public init(_ data: Data) {
        storage = .plain(data)
    }

    /// The bytes (inflated when they are kept deflated).
    public var data: Data {
        switch storage {
        case .plain(let data): data
        case .deflated(let bytes, let count): Data(Zlib.unkept(bytes, count: count, what: "kept bytes"))
        }
    }

    /// How many bytes there are (without inflating them).
    public var count: Int {
        switch storage {
        case .plain(let data): data.count
        case .deflated(_, let count): count
        }
    }

    /// Whether they are kept deflated.
    public var isCompacted: Bool {
        if case .deflated = storage { true } else { false }
    }

    /// These bytes as a plan kept for later holds them: deflated when that makes them smaller (1 KiB or more).
    public func compacted() -> KeptBytes {
        guard case .plain(let data) = storage, let packed = Zlib.kept([UInt8](data)) else { return self }
        var kept = self
        kept.storage = .deflated(packed, count: data.count)
        return kept
    }

    public static func == (lhs: KeptBytes, rhs: KeptBytes) -> Bool {
        switch (lhs.storage, rhs.storage) {
        case (.deflated(let left, let leftCount), .deflated(let right, let rightCount)):
            // Equal bytes deflate to equal bytes (one zlib, one level): kept against kept needs no inflating.
            leftCount == rightCount && left == right
        default:
            lhs.count == rhs.count && lhs.data == rhs.data
        }
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(data)
    }

    /// Read as `Data` is (base64 in JSON).
    public init(from decoder: any Decoder) throws {
        self.init(try decoder.singleValueContainer().decode(Data.self))
    }

    /// Written as `Data` is (base64 in JSON), kept or not.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(data)
    }
}
