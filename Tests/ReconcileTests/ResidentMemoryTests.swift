import Foundation
import Reconcile
import Testing

/// Each step of a plan records the process's peak resident memory, and the benches report it and another process's
/// resident memory: read from `/proc/<pid>/status` without building strings, they must be what the kernel says there.
@Suite struct ResidentMemoryTests {
    /// `field` of `/proc/<pid>/status` in MB, parsed as text.
    private static func parsed(_ field: String, of pid: pid_t) throws -> Double {
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        let line = try #require(status.split(separator: "\n").first { $0.hasPrefix("\(field):") })
        return try #require(Double(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")) / 1024
    }

    @Test func thePeakIsTheKernelsHighWaterMark() throws {
        let before = try Self.parsed("VmHWM", of: getpid())
        let peak = ResidentMemory.peakMB()
        let after = try Self.parsed("VmHWM", of: getpid())
        #expect(peak > 0)
        #expect(before <= peak && peak <= after, "the mark only grows: \(before) ≤ \(peak) ≤ \(after)")
    }

    @Test func anotherProcessesResidentMemoryIsItsVmRSS() throws {
        let sleeper = Process()
        sleeper.executableURL = URL(fileURLWithPath: "/bin/sleep")
        sleeper.arguments = ["30"]
        try sleeper.run()
        defer {
            kill(sleeper.processIdentifier, SIGKILL)
            sleeper.waitUntilExit()
        }
        let resident = ResidentMemory.residentMB(of: sleeper.processIdentifier)
        let parsed = try Self.parsed("VmRSS", of: sleeper.processIdentifier)
        #expect(resident > 0 && abs(resident - parsed) < 1, "\(resident) MB read, \(parsed) MB in the status")
        #expect(ResidentMemory.residentMB(of: 0x7fff_fffe) == 0, "no such process: 0")
    }

    @Test func aStartedPeakIsWhatTheProcessHoldsFromThen() throws {
        do {  // a peak above what the process will hold afterwards
            let block = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 << 20, alignment: 16)
            defer { block.deallocate() }
            block.initializeMemory(as: UInt8.self, repeating: 1)
        }
        let peak = ResidentMemory.peakMB()
        ResidentMemory.startPeak()
        let started = ResidentMemory.peakMB()
        #expect(started < peak - 32, "set back from \(peak) MB, which held the freed 64 MB, to \(started) MB")
        #expect(started >= (try Self.parsed("VmRSS", of: getpid())) - 1, "the new mark is what the process holds")
    }
}
