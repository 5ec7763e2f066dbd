import Git
import Manifests
import Planning

/// Why a planned change is there, in git's terms: the manifest lines that the change under review altered (those the
/// base does not have) in the documents the change is made from, each with the commit and author that wrote it.
public struct Provenance: Sendable, Codable, Hashable {
    public var file: String
    public var line: Int
    public var commit: String
    public var author: String
    public var email: String
    public var summary: String
    /// The line as written.
    public var text: String
}

public enum ProvenanceFinder {
    /// For each change of `plan` (by id), the altered lines behind it: lines of `files` (the head revision's) in the
    /// documents the changed resource is made from, last changed by a commit the base does not contain.
    public static func find(plan: Plan, loaded: LoadResult, repository: Repository, base: String, head: String) throws -> [String: [Provenance]] {
        let files = loaded.files
        let model = loaded.model
        // Altered lines per file: blame at the head, keeping the hunks of commits the base lacks.
        var altered: [String: [Int: Provenance]] = [:]
        var summaries: [String: String] = [:]
        for path in try repository.changedFiles(from: base, to: head, under: ManifestLayout.roots) {
            guard let file = (0..<files.count).map({ files[FileID(UInt32($0))] }).first(where: { $0.path == path }) else { continue }  // deleted
            var lines: [Int: Provenance] = [:]
            for hunk in try repository.blame(path, at: head) where !(try repository.contains(base, ancestor: hunk.commit)) {
                let summary = try summaries[hunk.commit] ?? repository.commitInfo(hunk.commit).summary
                summaries[hunk.commit] = summary
                for line in hunk.start..<(hunk.start + hunk.count) {
                    lines[line] = Provenance(file: path, line: line, commit: hunk.commit, author: hunk.author, email: hunk.email, summary: summary,
                                             text: file.line(Int32(line)) ?? "")
                }
            }
            altered[path] = lines
        }
        guard !altered.isEmpty else { return [:] }
        let documents = DocumentSpans(files: files)
        let index = Index(model)
        var result: [String: [Provenance]] = [:]
        for change in plan.changes {
            var found: [Provenance] = []
            for location in index.sources(of: change, model: model) {
                let file = files[location.file]
                guard let lines = altered[file.path] else { continue }
                let span = documents.span(of: location)
                found += span.compactMap { lines[$0] }
            }
            if !found.isEmpty { result[change.id.description] = Array(Set(found)).sorted { ($0.file, $0.line) < ($1.file, $1.line) } }
        }
        return result
    }

    /// Where each document of each file begins and ends (documents are separated by `---` lines).
    struct DocumentSpans {
        var separators: [UInt32: [Int]] = [:]
        var lengths: [UInt32: Int] = [:]

        init(files: SourceFiles) {
            for index in 0..<files.count {
                let file = files[FileID(UInt32(index))]
                let lines = String(decoding: file.bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
                separators[UInt32(index)] = lines.indices.filter { lines[$0].hasPrefix("---") }.map { $0 + 1 }
                lengths[UInt32(index)] = lines.count
            }
        }

        /// The lines of the document around `location`.
        func span(of location: SourceLocation) -> ClosedRange<Int> {
            let line = Int(location.line)
            let marks = separators[location.file.index] ?? []
            let start = (marks.last { $0 < line } ?? 0) + 1
            let end = (marks.first { $0 > line } ?? ((lengths[location.file.index] ?? line) + 1)) - 1
            return start...max(start, end)
        }
    }

    /// The documents a change is made from.
    struct Index {
        var byAddress: [Address: SourceLocation] = [:]
        var flavors: [String: SourceLocation] = [:], images: [String: SourceLocation] = [:]

        init(_ model: DesiredModel) {
            for entry in model.instances { byAddress[entry.address] = entry.meta.location }
            for entry in model.volumes { byAddress[entry.address] = entry.meta.location }
            for entry in model.floatingIPs { byAddress[entry.address] = entry.meta.location }
            for entry in model.networks { byAddress[entry.address] = entry.meta.location }
            for entry in model.rings { byAddress[entry.address] = entry.meta.location }
            for entry in model.nodes { byAddress[entry.address] = entry.meta.location }
            for entry in model.flavors { flavors[entry.name] = entry.meta.location }
            for entry in model.images { images[entry.name] = entry.meta.location }
        }

        func sources(of change: Change, model: DesiredModel) -> [SourceLocation] {
            var found: [SourceLocation] = []
            if let own = byAddress[change.address] { found.append(own) }
            switch change.address.kind {
            case .instance:
                if let instance = model.instances.first(where: { $0.address == change.address }) {
                    if let flavor = flavors[instance.spec.flavor.value] { found.append(flavor) }
                    if let image = images[instance.spec.image.value] { found.append(image) }
                    found += model.networks.filter { $0.region == instance.region && $0.name == instance.spec.network.value }.map(\.meta.location)
                    found += model.volumes.filter { $0.tenant == instance.tenant && $0.region == instance.region && $0.spec.instance?.value == instance.name }.map(\.meta.location)
                    let groups = Set(instance.spec.securityGroups?.value.map(\.value) ?? [])
                    found += model.securityGroups.filter { $0.tenant == instance.tenant && groups.contains($0.name) }.map(\.meta.location)
                }
            case .firewall, .dhcp:
                let region = change.address.region
                found += model.securityGroups.map(\.meta.location) + model.filters.filter { $0.region == nil || $0.region == region }.map(\.meta.location)
                found += model.floatingIPs.filter { $0.region == region }.map(\.meta.location) + model.instances.filter { $0.region == region }.map(\.meta.location)
                found += model.networks.filter { $0.region == region }.map(\.meta.location)
            case .ring:
                found += model.nodes.filter { $0.region == change.address.region }.map(\.meta.location)
            case .snapshot:
                let volume = String(change.address.name.prefix { $0 != "@" })
                found += model.volumes.filter { $0.tenant == change.address.tenant && $0.region == change.address.region && $0.name == volume }.map(\.meta.location)
            case .region, .node, .network, .filter, .flavor, .image, .priceList, .tenant, .volume, .floatingIP, .securityGroup, .keypair, .pipeline:
                break
            }
            return found
        }
    }
}
