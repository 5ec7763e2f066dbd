#if canImport(Glibc)
import Glibc
#endif

/// A process's resident memory as Linux's `/proc/<pid>/status` gives it: what each step of a plan records
/// (`ReconcileRun.Phases`) and what the benches report. Read with one `read` into a buffer on the stack and a scan for
/// the field: a plan reads it at the end of every step.
public enum ResidentMemory {
    /// This process's peak resident memory so far (`VmHWM`), in MB; `getrusage`'s where `/proc` cannot be read.
    public static func peakMB() -> Double {
        if let kib = kib("VmHWM", of: nil) { return Double(kib) / 1024 }
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_maxrss) / 1024
    }

    /// The resident memory of process `pid` now (`VmRSS`), in MB; 0 where it cannot be read.
    public static func residentMB(of pid: pid_t) -> Double {
        kib("VmRSS", of: pid).map { Double($0) / 1024 } ?? 0
    }

    /// Sets this process's peak back to what it holds now (`/proc/self/clear_refs`, Linux 4.0 and later), so the next
    /// `peakMB` is the peak from here on; elsewhere the peak stays the process's.
    public static func startPeak() {
        let descriptor = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return }
        _ = write(descriptor, "5", 1)
        close(descriptor)
    }

    /// The value in KiB of `field` in the status of `pid` (this process when nil), or nil.
    static func kib(_ field: String, of pid: pid_t?) -> Int? {
        let descriptor = open(pid.map { "/proc/\($0)/status" } ?? "/proc/self/status", O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 8192) { buffer -> Int? in
            var filled = 0
            while filled < buffer.count {
                let count = read(descriptor, buffer.baseAddress! + filled, buffer.count - filled)
                guard count > 0 else { break }
                filled += count
            }
            let text = buffer[..<filled]
            guard let label = text.firstRange(of: Array("\n\(field):".utf8)) else { return nil }
            let digits = text[label.upperBound...].drop { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }
                .prefix { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
            guard !digits.isEmpty else { return nil }
            return digits.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
        }
    }
}
