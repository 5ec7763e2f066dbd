/// Slots written by parallel workers, each index by exactly one worker, read after they all finish.
///
/// `@unchecked Sendable`: every index is written by one worker only, and reads happen after
/// `concurrentPerform` returns, which orders them after all writes.
public final class ResultSlots<Value>: @unchecked Sendable {
    private var slots: [Value?]

    /// `count` empty slots.
    public init(count: Int) {
        slots = Array(repeating: nil, count: count)
    }

    /// One slot; each index must be written by one worker only.
    public subscript(index: Int) -> Value? {
        get { slots[index] }
        set {
            slots.withUnsafeMutableBufferPointer { $0[index] = newValue }
        }
    }

    /// Every slot's value, once all are written.
    public var values: [Value] { slots.map { $0! } }
}
