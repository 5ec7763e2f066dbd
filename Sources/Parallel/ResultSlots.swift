/// Slots written by parallel workers, each index by exactly one worker, read after they all finish.
///
/// The slots live in memory this class allocates and owns, not in an `Array`: a write to an array stored in a class
/// is a mutating access to the whole array (a uniqueness check, possibly a copy, then a write back), so two workers
/// writing different indexes at once race on the array itself and one write can be lost. Here each write touches only
/// its own slot's address.
///
/// `@unchecked Sendable`: every index is written by one worker only, and reads happen after
/// `concurrentPerform` returns, which orders them after all writes.
public final class ResultSlots<Value>: @unchecked Sendable {
    private let slots: UnsafeMutablePointer<Value?>
    /// How many slots there are.
    public let count: Int

    /// `count` empty slots.
    public init(count: Int) {
        self.count = count
        slots = UnsafeMutablePointer<Value?>.allocate(capacity: max(count, 1))
        slots.initialize(repeating: nil, count: count)
    }

    deinit {
        slots.deinitialize(count: count)
        slots.deallocate()
    }

    /// One slot; each index must be written by one worker only.
    public subscript(index: Int) -> Value? {
        get {
            precondition(index >= 0 && index < count, "slot \(index) of \(count)")
            return slots[index]
        }
        set {
            precondition(index >= 0 && index < count, "slot \(index) of \(count)")
            slots[index] = newValue
        }
    }

    /// Every slot's value, once all are written.
    public var values: [Value] { (0..<count).map { slots[$0]! } }
}
