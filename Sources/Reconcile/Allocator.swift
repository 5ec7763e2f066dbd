#if canImport(Glibc)
import Glibc
#endif

/// glibc malloc's settings for a process that converges regions: the service, and `stacklab plan`, `apply` and
/// `drift`. A convergence from nothing allocates and frees gigabytes in large arrays (observations, region plans,
/// decoded files) on many threads; with glibc's defaults the freed memory stays in per-thread arenas and, above the
/// dynamic mmap threshold, in the heap, where a few live objects pin whole pages. So such a process (measured in
/// docs/bench/README.md):
/// - keeps at most 2 arenas (`M_ARENA_MAX`),
/// - gives allocations of 128 KiB and more their own mappings (`M_MMAP_THRESHOLD`, which also stops glibc raising the
///   threshold as large blocks are freed): a freed large array goes back to the kernel at once,
/// - and hands free heap pages back between phases: the service after each pass that ran a region, a run after its
///   apply, before the verify plans again (`malloc_trim`).
///
/// The functions are looked up at run time (Swift's Glibc module does not export `malloc.h`); on another C library
/// nothing is done. These settings replace what `MALLOC_ARENA_MAX` or `MALLOC_MMAP_THRESHOLD_` said, as `mallopt`
/// does.
public enum Allocator {
    private typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
    private typealias Trim = @convention(c) (Int) -> Int32

    private static let mallopt: Mallopt? = symbol("mallopt").map { unsafeBitCast($0, to: Mallopt.self) }
    private static let trimmer: Trim? = symbol("malloc_trim").map { unsafeBitCast($0, to: Trim.self) }

    /// glibc's `M_ARENA_MAX` and `M_MMAP_THRESHOLD`.
    private static let arenaMax: Int32 = -8, mmapThreshold: Int32 = -3

    /// Applies the settings (once, at start, before the threads that allocate most are started).
    public static func configure() {
        guard let mallopt else { return }
        _ = mallopt(arenaMax, 2)
        _ = mallopt(mmapThreshold, 128 * 1024)
    }

    /// Gives free heap memory back to the kernel.
    public static func trim() {
        _ = trimmer?(0)
    }

    private static func symbol(_ name: String) -> UnsafeMutableRawPointer? {
        #if canImport(Glibc)
        return dlsym(dlopen(nil, RTLD_NOW), name)
        #else
        return nil
        #endif
    }
}
