import Git
import Manifests

/// The price lists of every commit of a branch that changed them, read from git: what was in force from each commit
/// on (billing applies a change from its commit time forward, never to what came before).
public enum PriceListHistory {
    /// One version: the commit, its time, and every price list it declares.
    public struct Version: Sendable {
        public var commit: String
        public var time: Int64
        public var priceLists: [Resource<PriceListSpec>]
    }

    /// Every version along `revision`'s first-parent history, oldest first; a commit that changed no price list is
    /// left out. Only files that changed since the previous commit are read, and only those that declare a
    /// PriceList are decoded.
    public static func read(repository path: String, revision: String = "HEAD") throws -> [Version] {
        let repository = try Repository(at: path)
        var known: [String: String] = [:]  // path → blob id
        var priced: [String: SourceInput] = [:]  // files that declare a PriceList, by path
        var versions: [Version] = []
        var last: [String: String] = [:]
        for (commit, time) in try repository.history(of: revision) {
            let files = try repository.files(at: commit, under: ManifestLayout.roots, known: known)
            var now: [String: String] = [:]
            for file in files {
                now[file.path] = file.blobID
                if file.omitted { continue }
                let bytes = file.bytes ?? []
                if String(decoding: bytes, as: UTF8.self).contains("PriceList") {
                    priced[file.path] = SourceInput(path: file.path, content: .success(bytes), digest: file.blobID)
                } else {
                    priced[file.path] = nil
                }
            }
            for path in priced.keys where now[path] == nil { priced[path] = nil }
            known = now
            let signature = priced.mapValues { $0.digest ?? "" }
            guard signature != last else { continue }
            last = signature
            let loaded = Loader(validate: false).load(SourceSnapshot(inputs: priced.values.sorted { $0.path < $1.path }, revision: commit))
            versions.append(Version(commit: commit, time: time, priceLists: loaded.model.priceLists))
        }
        return versions
    }
}
