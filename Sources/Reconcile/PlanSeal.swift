import Crypto
import Foundation

/// The key saved plans are sealed with: 32 random bytes in `plan-seal.key` in the state directory (mode 0600). Whoever
/// may apply can read it; a plan edited by someone who cannot is refused, whatever digest they recompute.
public enum PlanSeal {
    /// Why the key cannot be had.
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// The key in `stateDirectory`; with `create`, a new one is made when there is none. Nil without one.
    public static func key(stateDirectory: String, create: Bool) throws -> SymmetricKey? {
        let path = "\(stateDirectory)/plan-seal.key"
        if let data = FileManager.default.contents(atPath: path) {
            guard data.count == 32 else { throw Failure(description: "\(path) is not a 32-byte key; remove it to make a new one (saved plans made with it will then be refused)") }
            return SymmetricKey(data: data)
        }
        guard create else { return nil }
        try FileManager.default.createDirectory(atPath: stateDirectory, withIntermediateDirectories: true)
        let key = SymmetricKey(size: .bits256)
        let data = key.withUnsafeBytes { Data($0) }
        let temporary = "\(path).tmp-\(getpid())"
        guard FileManager.default.createFile(atPath: temporary, contents: data, attributes: [.posixPermissions: 0o600]),
              rename(temporary, path) == 0
        else { throw Failure(description: "cannot write \(path)") }
        // Two processes making a key at once: the one that renamed last won; use what is on disk.
        return try Self.key(stateDirectory: stateDirectory, create: false)
    }
}
