import Foundation
import State
#if canImport(Glibc)
import Glibc
#endif

/// One apply per region at a time on this machine: an exclusive `flock` on `locks/<region>.lock` in the state
/// directory. The kernel drops it when the holder exits, even by SIGKILL, so a crash never leaves a region locked.
public final class RegionLock {
    /// The lock file, open; -1 once a refused lock closed it.
    private var descriptor: Int32
    /// The region.
    public let region: String

    /// Why a lock could not be taken.
    public struct Busy: RegionBusy, CustomStringConvertible {
        public var region: String
        public var holder: String
        public var description: String {
            "region '\(region)' is being applied by another stacklab process (\(holder)); wait for it to finish or pass --lock-timeout"
        }
    }

    /// Takes the lock, waiting up to `timeout` seconds (0: try once).
    public init(region: String, stateDirectory: String, timeout: Double) throws {
        self.region = region
        let directory = "\(stateDirectory)/locks"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = "\(directory)/\(region).lock"
        descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw CocoaError(.fileWriteNoPermission, userInfo: [NSFilePathErrorKey: path]) }
        let deadline = Date().addingTimeInterval(timeout)
        while flock(descriptor, LOCK_EX | LOCK_NB) != 0 {
            guard Date() < deadline else {
                let holder = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "unknown"
                // Closed here and marked, not left to deinit: Swift runs deinit after a class's initializer throws
                // once every property is set, and closing the same number twice can close another thread's file
                // that was opened in between.
                close(descriptor)
                descriptor = -1
                throw Busy(region: region, holder: holder.isEmpty ? "unknown" : holder)
            }
            usleep(50_000)
        }
        ftruncate(descriptor, 0)
        let holder = "pid \(getpid())\n"
        _ = holder.withCString { write(descriptor, $0, strlen($0)) }
    }

    deinit {
        guard descriptor >= 0 else { return }
        flock(descriptor, LOCK_UN)
        close(descriptor)
    }
}

/// Region leases on one machine: a `RegionLock` per region under the state directory.
public struct LocalRegionLeases: RegionLeases {
    /// The state directory holding `locks/`.
    public let stateDirectory: String

    /// Leases under `stateDirectory`.
    public init(stateDirectory: String) {
        self.stateDirectory = stateDirectory
    }

    public func acquire(_ region: String, timeout: Double) throws -> AnyObject {
        try RegionLock(region: region, stateDirectory: stateDirectory, timeout: timeout)
    }
}
