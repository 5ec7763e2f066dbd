/// A plan's changes, in order: the region plans' change arrays joined without copying them. A plan over every
/// region shares each region's array with the memo that keeps the region's plan, so combining 100 region plans
/// (139,000 changes when most regions are still to be built) costs 100 appends, not 139,000 copies, and letting the
/// plan go frees nothing the memo still holds. Read as one collection (integer positions, from 0); encoded as one
/// JSON array, exactly as an array of changes is.
public struct ChangeList: RandomAccessCollection, RangeReplaceableCollection, ExpressibleByArrayLiteral, Sendable, Codable, Hashable {
    /// The joined arrays, none empty.
    private var chunks: [[Change]] = []
    /// Where each chunk ends: the position after its last change.
    private var ends: [Int] = []

    /// No changes.
    public init() {}

    /// `changes`, shared (not copied).
    public init(_ changes: [Change]) {
        append(chunk: changes)
    }

    public init<S: Sequence>(_ changes: S) where S.Element == Change {
        self.init(Array(changes))
    }

    public init(arrayLiteral changes: Change...) {
        self.init(changes)
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int { ends.last ?? 0 }
    public var count: Int { endIndex }
    public var isEmpty: Bool { chunks.isEmpty }

    public subscript(position: Int) -> Change {
        precondition(position >= 0 && position < endIndex, "ChangeList index \(position) out of range 0..<\(endIndex)")
        // The first chunk that ends after `position` (binary search over a few hundred ends at most).
        var low = 0
        var high = ends.count - 1
        while low < high {
            let middle = (low + high) / 2
            if ends[middle] > position { high = middle } else { low = middle + 1 }
        }
        return chunks[low][position - (low == 0 ? 0 : ends[low - 1])]
    }

    /// Appends `changes` as they are: the array is shared, not copied.
    public mutating func append(chunk changes: [Change]) {
        guard !changes.isEmpty else { return }
        let end = endIndex + changes.count
        chunks.append(changes)
        ends.append(end)
    }

    public mutating func append(_ change: Change) {
        if chunks.isEmpty {
            append(chunk: [change])
        } else {
            chunks[chunks.count - 1].append(change)
            ends[ends.count - 1] += 1
        }
    }

    public mutating func append<S: Sequence>(contentsOf changes: S) where S.Element == Change {
        append(chunk: Array(changes))
    }

    /// Anything but appending makes one array of the result.
    public mutating func replaceSubrange<C: Collection>(_ subrange: Range<Int>, with changes: C) where C.Element == Change {
        var flat = array
        flat.replaceSubrange(subrange, with: changes)
        self = ChangeList(flat)
    }

    /// The changes as one array.
    public var array: [Change] {
        chunks.count == 1 ? chunks[0] : Array(chunks.joined())
    }

    public func filter(_ isIncluded: (Change) throws -> Bool) rethrows -> ChangeList {
        var result = ChangeList()
        for chunk in chunks {
            let kept = try chunk.filter(isIncluded)
            // A chunk kept whole stays shared.
            result.append(chunk: kept.count == chunk.count ? chunk : kept)
        }
        return result
    }

    public struct Iterator: IteratorProtocol {
        fileprivate var chunks: IndexingIterator<[[Change]]>
        fileprivate var current: IndexingIterator<[Change]>?

        public mutating func next() -> Change? {
            while true {
                if let change = current?.next() { return change }
                guard let chunk = chunks.next() else { return nil }
                current = chunk.makeIterator()
            }
        }
    }

    public func makeIterator() -> Iterator {
        Iterator(chunks: chunks.makeIterator(), current: nil)
    }

    public init(from decoder: any Decoder) throws {
        self.init(try [Change](from: decoder))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.unkeyedContainer()
        for change in self { try container.encode(change) }
    }

    public static func == (lhs: ChangeList, rhs: ChangeList) -> Bool {
        lhs.count == rhs.count && lhs.elementsEqual(rhs)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(count)
        for change in self { hasher.combine(change) }
    }
}
