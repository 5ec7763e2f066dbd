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
    /// documents the changed resource is made from, last changed by a commit the base does not contain. The cost
    /// follows the altered files and the plan: only altered files are split into documents, and only documents in
    /// them are looked at (a document elsewhere has no altered line to give).
    public static func find(plan: Plan, loaded: LoadResult, repository: Repository, base: String, head: String) throws -> [String: [Provenance]] {
        let files = loaded.files
        let changedPaths = Set(try repository.changedFiles(from: base, to: head, under: ManifestLayout.roots))
        guard !changedPaths.isEmpty, !plan.changes.isEmpty else { return [:] }
        var fileIDs: [String: FileID] = [:]
        for index in 0..<files.count where changedPaths.contains(files[FileID(UInt32(index))].path) { fileIDs[files[FileID(UInt32(index))].path] = FileID(UInt32(index)) }
        // Altered lines per file: blame at the head, keeping the hunks of commits the base lacks.
        var altered: [UInt32: [Int: Provenance]] = [:]
        var summaries: [String: String] = [:]
        for path in changedPaths.sorted() {
            guard let id = fileIDs[path] else { continue }  // deleted
            let file = files[id]
            var lines: [Int: Provenance] = [:]
            for hunk in try repository.blame(path, at: head) where !(try repository.contains(base, ancestor: hunk.commit)) {
                let summary = try summaries[hunk.commit] ?? repository.commitInfo(hunk.commit).summary
                summaries[hunk.commit] = summary
                for line in hunk.start..<(hunk.start + hunk.count) {
                    lines[line] = Provenance(file: path, line: line, commit: hunk.commit, author: hunk.author, email: hunk.email, summary: summary,
                                             text: file.line(Int32(line)) ?? "")
                }
            }
            if !lines.isEmpty { altered[id.index] = lines }
        }
        guard !altered.isEmpty else { return [:] }
        let documents = DocumentSpans(files: files, only: Set(altered.keys))
        let index = Index(loaded.model, files: Set(altered.keys), changed: Set(plan.changes.map(\.address)))
        var result: [String: [Provenance]] = [:]
        for change in plan.changes {
            var found: [Provenance] = []
            for location in index.sources(of: change) {
                guard let lines = altered[location.file.index] else { continue }
                found += documents.span(of: location).compactMap { lines[$0] }
            }
            if !found.isEmpty { result[change.id.description] = Array(Set(found)).sorted { ($0.file, $0.line) < ($1.file, $1.line) } }
        }
        return result
    }

    /// Where each document of the files `only` begins and ends (documents are separated by `---` lines).
    struct DocumentSpans {
        var separators: [UInt32: [Int]] = [:]
        var lengths: [UInt32: Int] = [:]

        init(files: SourceFiles, only: Set<UInt32>) {
            for index in only {
                let file = files[FileID(index)]
                let lines = String(decoding: file.bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
                separators[index] = lines.indices.filter { lines[$0].hasPrefix("---") }.map { $0 + 1 }
                lengths[index] = lines.count
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

    /// The documents a change is made from, among those in the altered files: one pass over the model keeps those
    /// documents, and the changed instances (whose flavor, image, network, volumes and groups are looked up).
    struct Index {
        var own: [Address: SourceLocation] = [:]
        var instances: [Address: Resource<InstanceSpec>] = [:]
        var flavors: [String: SourceLocation] = [:], images: [String: SourceLocation] = [:]
        var networks: [Resource<NetworkSpec>] = [], volumes: [Resource<VolumeSpec>] = [], groups: [Resource<SecurityGroupSpec>] = []
        var filters: [Resource<FilterSpec>] = [], floatingIPs: [Resource<FloatingIPSpec>] = []
        var regionInstances: [Resource<InstanceSpec>] = [], nodes: [Resource<NodeSpec>] = []
        var loadBalancers: [Resource<LoadBalancerSpec>] = [], regions: [String: SourceLocation] = [:]

        init(_ model: DesiredModel, files: Set<UInt32>, changed: Set<Address>) {
            func kept<Spec>(_ resource: Resource<Spec>) -> Bool { files.contains(resource.meta.location.file.index) }
            for entry in model.instances {
                if changed.contains(entry.address) { instances[entry.address] = entry }
                if kept(entry) { own[entry.address] = entry.meta.location; regionInstances.append(entry) }
            }
            for entry in model.volumes where kept(entry) { own[entry.address] = entry.meta.location; volumes.append(entry) }
            for entry in model.floatingIPs where kept(entry) { own[entry.address] = entry.meta.location; floatingIPs.append(entry) }
            for entry in model.networks where kept(entry) { own[entry.address] = entry.meta.location; networks.append(entry) }
            for entry in model.containers where kept(entry) { own[entry.address] = entry.meta.location }
            for entry in model.tenants where kept(entry) { own[entry.address] = entry.meta.location }  // its account's quotas
            for entry in model.rings where kept(entry) { own[entry.address] = entry.meta.location }
            for entry in model.nodes where kept(entry) { own[entry.address] = entry.meta.location; nodes.append(entry) }
            for entry in model.flavors where kept(entry) { flavors[entry.name] = entry.meta.location }
            for entry in model.images where kept(entry) { images[entry.name] = entry.meta.location }
            groups = model.securityGroups.filter(kept)
            filters = model.filters.filter(kept)
            loadBalancers = model.loadBalancers.filter(kept)
            for entry in model.regions where kept(entry) { regions[entry.name] = entry.meta.location }
        }

        func sources(of change: Change) -> [SourceLocation] {
            var found: [SourceLocation] = []
            if let location = own[change.address] { found.append(location) }
            switch change.address.kind {
            case .instance:
                if let instance = instances[change.address] {
                    if let flavor = flavors[instance.spec.flavor.value] { found.append(flavor) }
                    if let image = images[instance.spec.image.value] { found.append(image) }
                    found += networks.filter { $0.region == instance.region && $0.name == instance.spec.network.value }.map(\.meta.location)
                    found += volumes.filter { $0.tenant == instance.tenant && $0.region == instance.region && $0.spec.instance?.value == instance.name }.map(\.meta.location)
                    let names = Set(instance.spec.securityGroups?.value.map(\.value) ?? [])
                    found += groups.filter { $0.tenant == instance.tenant && names.contains($0.name) }.map(\.meta.location)
                }
            case .firewall, .dhcp:
                let region = change.address.region
                found += groups.map(\.meta.location) + filters.filter { $0.region == nil || $0.region == region }.map(\.meta.location)
                found += floatingIPs.filter { $0.region == region }.map(\.meta.location) + regionInstances.filter { $0.region == region }.map(\.meta.location)
                found += networks.filter { $0.region == region }.map(\.meta.location)
            case .haproxy:
                let region = change.address.region
                found += regions[region ?? ""].map { [$0] } ?? []
                found += loadBalancers.filter { $0.region == region }.map(\.meta.location) + groups.map(\.meta.location)
                found += regionInstances.filter { $0.region == region }.map(\.meta.location) + nodes.filter { $0.region == region }.map(\.meta.location)
            case .ring:
                found += nodes.filter { $0.region == change.address.region }.map(\.meta.location)
            case .snapshot:
                let volume = String(change.address.name.prefix { $0 != "@" })
                found += volumes.filter { $0.tenant == change.address.tenant && $0.region == change.address.region && $0.name == volume }.map(\.meta.location)
            case .region, .node, .network, .filter, .flavor, .image, .priceList, .tenant, .volume, .floatingIP, .securityGroup, .keypair, .loadBalancer, .alarm, .container, .pipeline:
                break
            }
            return found
        }
    }
}
