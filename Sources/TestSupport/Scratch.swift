import Foundation
import Manifests
import Processes

/// A temporary directory for one test, removed when the value is released.
public final class Scratch {
    /// The directory.
    public let path: String

    /// Creates a fresh directory named after `label`.
    public init(_ label: String = "test") throws {
        path = FileManager.default.temporaryDirectory
            .appendingPathComponent("stacklab-\(label)-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit {
        try? FileManager.default.removeItem(atPath: path)
    }

    /// `path/relative`.
    public func file(_ relative: String) -> String { (path as NSString).appendingPathComponent(relative) }

    /// Writes text (creating directories).
    public func write(_ relative: String, _ text: String) throws {
        try write(relative, bytes: Array(text.utf8))
    }

    /// Writes bytes (creating directories).
    public func write(_ relative: String, bytes: [UInt8]) throws {
        let url = URL(fileURLWithPath: file(relative))
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(bytes).write(to: url)
    }

    /// Copies every file of `source` into this directory (or its `subdirectory`), replacing files that exist.
    public func overlay(from source: String, into subdirectory: String = "") throws {
        let fm = FileManager.default
        guard let walker = fm.enumerator(atPath: source) else { return }
        while let relative = walker.nextObject() as? String {
            var isDirectory: ObjCBool = false
            let from = (source as NSString).appendingPathComponent(relative)
            guard fm.fileExists(atPath: from, isDirectory: &isDirectory), !isDirectory.boolValue else { continue }
            let to = file(subdirectory.isEmpty ? relative : subdirectory + "/" + relative)
            try fm.createDirectory(atPath: (to as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            if fm.fileExists(atPath: to) { try fm.removeItem(atPath: to) }
            try fm.copyItem(atPath: from, toPath: to)
        }
    }
}

/// Runs git in a directory with a fixed identity and no user configuration.
public enum GitCLI {
    /// Runs `git -C directory arguments…` and returns its trimmed output; throws on a non-zero exit.
    @discardableResult
    public static func run(_ arguments: [String], in directory: String, date: String? = nil) throws -> String {
        let output = try Command.check((date.map { ["env", "GIT_COMMITTER_DATE=\($0)", "GIT_AUTHOR_DATE=\($0)"] } ?? []) + ["git", "-C", directory, "-c", "user.name=StackLab Tests", "-c", "user.email=tests@stacklab.invalid",
                                        "-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false"] + arguments)
        return output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// `git init` (once) + add everything + commit (committed at `date`, ISO 8601, when given); returns the commit SHA.
    @discardableResult
    public static func commitAll(in directory: String, message: String = "test", date: String? = nil) throws -> String {
        if !FileManager.default.fileExists(atPath: (directory as NSString).appendingPathComponent(".git")) {
            try run(["init", "-q"], in: directory)
        }
        try run(["add", "-A"], in: directory)
        try run(["commit", "-q", "--allow-empty", "-m", message], in: directory, date: date)
        return try run(["rev-parse", "HEAD"], in: directory)
    }
}

/// Where the fixtures live in the source tree.
public enum Fixtures {
    /// The package's root directory.
    public static let packageRoot: String = {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    }()

    /// Tests/Fixtures.
    public static let root: String = (packageRoot as NSString).appendingPathComponent("Tests/Fixtures")

    /// A path under Tests/Fixtures.
    public static func path(_ relative: String) -> String { (root as NSString).appendingPathComponent(relative) }

    /// A scratch copy of the valid base deployment with `overlay` (a fixture directory) copied over it.
    /// The reference deployment this repository bundles (manifests/, regions/, ci/), committed in a fresh git repository.
    public static func bundledDeployment(_ name: String = "bundled") throws -> Scratch {
        let repo = try Scratch(name)
        for root in ManifestLayout.roots {
            try repo.overlay(from: (packageRoot as NSString).appendingPathComponent(root), into: root)
        }
        try GitCLI.commitAll(in: repo.path)
        return repo
    }

    public static func deployment(overlay: String? = nil) throws -> Scratch {
        let scratch = try Scratch("deployment")
        try scratch.overlay(from: path("base"))
        if let overlay { try scratch.overlay(from: path(overlay)) }
        return scratch
    }
}
