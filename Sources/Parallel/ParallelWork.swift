import Dispatch
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Work spread over threads that each take the next item as they finish one, so a few large items (a file of
/// 10,000 instances among files of 60) do not leave the other threads idle while one works through them.
public enum ParallelWork {
    /// The machine's online cores.
    public static var coreCount: Int { max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }

    /// Calls `body` once for every index below `count`, on up to `workers` threads. Returns when all calls have.
    public static func forEach(count: Int, workers: Int, _ body: @Sendable (Int) -> Void) {
        let next = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: max(1, min(workers, count))) { _ in
            while true {
                let index = next.wrappingAdd(1, ordering: .relaxed).oldValue
                guard index < count else { return }
                body(index)
            }
        }
    }
}
