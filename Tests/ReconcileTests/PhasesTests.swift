import Foundation
import Testing
@testable import Reconcile

/// Each step of a plan records the process's peak resident memory (`VmHWM`), read without building strings.
@Suite struct PhasesTests {
    @Test func thePeakIsTheKernelsHighWaterMark() throws {
        func parsed() throws -> Double {
            let status = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
            let line = try #require(status.split(separator: "\n").first { $0.hasPrefix("VmHWM:") })
            return try #require(Double(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")) / 1024
        }
        let before = try parsed()
        let peak = ReconcileRun.Phases.peakMB()
        let after = try parsed()
        #expect(peak > 0)
        #expect(before <= peak && peak <= after, "the mark only grows: \(before) ≤ \(peak) ≤ \(after)")
    }
}
