import Foundation
import Manifests

/// Manifests from a directory on disk (a working tree, uncommitted changes included).
public struct DirectorySource: ManifestSource {
    /// The repository root.
    public var root: String

    /// Creates a source.
    public init(root: String) {
        self.root = root
    }

    public var description: String { "directory \(root)" }

    public func read(limits: LoadLimits) throws(SourceError) -> SourceSnapshot {
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: root, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw SourceError("'\(root)' is not a directory", hint: "pass --repo with the manifests repository's path")
        }
        let realRoot = URL(fileURLWithPath: root).resolvingSymlinksInPath().path
        var inputs: [SourceInput] = []
        for top in ManifestLayout.roots {
            guard let walker = fm.enumerator(atPath: (root as NSString).appendingPathComponent(top)) else { continue }
            while let relative = walker.nextObject() as? String {
                let path = top + "/" + relative
                guard ManifestLayout.isManifest(path) else { continue }
                let full = (root as NSString).appendingPathComponent(path)
                inputs.append(SourceInput(path: path, content: Self.content(full, realRoot: realRoot, limit: limits.maxFileBytes)))
            }
        }
        return SourceSnapshot(inputs: inputs.sorted { $0.path < $1.path }, revision: nil)
    }

    private static func content(_ full: String, realRoot: String, limit: Int) -> Result<[UInt8], RefusalError> {
        let url = URL(fileURLWithPath: full)
        let link = try? FileManager.default.destinationOfSymbolicLink(atPath: full)
        if let link, !FileManager.default.fileExists(atPath: full) { return .failure(RefusalError(.symlinkDangling(target: link))) }
        let resolved = url.resolvingSymlinksInPath().path
        if resolved != url.standardizedFileURL.path {
            // A link may point anywhere inside the manifest roots, never outside them (not even into .git).
            let target = link ?? resolved
            guard resolved.hasPrefix(realRoot + "/"),
                  let top = resolved.dropFirst(realRoot.count + 1).split(separator: "/").first, ManifestLayout.roots.contains(String(top))
            else { return .failure(RefusalError(.symlinkOutside(target: target))) }
        }
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: resolved),
              let size = (attributes[.size] as? NSNumber)?.intValue else {
            return .failure(RefusalError(.unreadable(reason: "cannot read its attributes")))
        }
        guard size <= limit else { return .failure(RefusalError(.tooLarge(size: size, limit: limit))) }
        guard let data = FileManager.default.contents(atPath: resolved) else {
            return .failure(RefusalError(.unreadable(reason: "permission denied or not a regular file")))
        }
        return .success([UInt8](data))
    }
}
