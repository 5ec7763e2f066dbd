import Glibc

/// Every resource declared by a revision of the manifests repository, typed, with source locations.
public struct DesiredModel: Sendable {
    public var regions: [Resource<RegionSpec>] = []
    public var nodes: [Resource<NodeSpec>] = []
    public var networks: [Resource<NetworkSpec>] = []
    public var filters: [Resource<FilterSpec>] = []
    public var rings: [Resource<RingSpec>] = []
    public var flavors: [Resource<FlavorSpec>] = []
    public var images: [Resource<ImageSpec>] = []
    public var priceLists: [Resource<PriceListSpec>] = []
    public var tenants: [Resource<TenantSpec>] = []
    public var instances: [Resource<InstanceSpec>] = []
    public var volumes: [Resource<VolumeSpec>] = []
    public var floatingIPs: [Resource<FloatingIPSpec>] = []
    public var securityGroups: [Resource<SecurityGroupSpec>] = []
    public var keypairs: [Resource<KeypairSpec>] = []
    public var loadBalancers: [Resource<LoadBalancerSpec>] = []
    public var alarms: [Resource<AlarmSpec>] = []
    public var containers: [Resource<ContainerSpec>] = []
    public var pipelines: [Resource<PipelineSpec>] = []

    /// An empty model.
    public init() {}

    /// The one table of kinds: every traversal of the model (identities, digests, merging, validation of identity,
    /// plan keys) walks it, so a kind added here cannot be left out of any of them. In kind order.
    public static func visitKinds(_ visitor: inout some ModelKindVisitor) {
        visitor.visit(\.regions); visitor.visit(\.nodes); visitor.visit(\.networks); visitor.visit(\.filters); visitor.visit(\.rings)
        visitor.visit(\.flavors); visitor.visit(\.images); visitor.visit(\.priceLists); visitor.visit(\.tenants); visitor.visit(\.instances)
        visitor.visit(\.volumes); visitor.visit(\.floatingIPs); visitor.visit(\.securityGroups); visitor.visit(\.keypairs)
        visitor.visit(\.loadBalancers); visitor.visit(\.alarms); visitor.visit(\.containers); visitor.visit(\.pipelines)
    }

    /// The identity of every resource, in kind order then declaration order.
    public var metas: [ObjectMeta] {
        var all: [ObjectMeta] = []
        all.reserveCapacity(instances.count + nodes.count + volumes.count + 256)
        forEachMeta { all.append($0) }
        return all
    }

    /// How many resources of each kind there are (kinds with none left out).
    public var countsByKind: [Kind: Int] {
        struct Count: ModelKindVisitor {
            let model: DesiredModel
            var counts: [Kind: Int] = [:]
            mutating func visit<Spec: ResourceSpec>(_ column: WritableKeyPath<DesiredModel, [Resource<Spec>]>) {
                let count = model[keyPath: column].count
                if count > 0 { counts[Spec.kind, default: 0] += count }
            }
        }
        var count = Count(model: self)
        Self.visitKinds(&count)
        return count.counts
    }

    /// Calls `body` with the identity of every resource (instances left out unless asked for), in kind order then
    /// declaration order (as `metas`).
    public func forEachMeta(includingInstances: Bool = true, _ body: (ObjectMeta) -> Void) {
        struct Walk: ModelKindVisitor {
            let model: DesiredModel
            let instances: Bool
            let body: (ObjectMeta) -> Void
            mutating func visit<Spec: ResourceSpec>(_ column: WritableKeyPath<DesiredModel, [Resource<Spec>]>) {
                guard instances || Spec.kind != .instance else { return }
                let resources = model[keyPath: column]
                for index in resources.indices { body(resources[index].meta) }
            }
        }
        withoutActuallyEscaping(body) { body in
            var walk = Walk(model: self, instances: includingInstances, body: body)
            Self.visitKinds(&walk)
        }
    }

    /// Calls `body` with the identity of every resource, to change it.
    mutating func updateMetas(_ body: (inout ObjectMeta) -> Void) {
        struct Update: ModelKindVisitor {
            var model: DesiredModel
            let body: (inout ObjectMeta) -> Void
            mutating func visit<Spec: ResourceSpec>(_ column: WritableKeyPath<DesiredModel, [Resource<Spec>]>) {
                for index in model[keyPath: column].indices { body(&model[keyPath: column][index].meta) }
            }
        }
        withoutActuallyEscaping(body) { body in
            var update = Update(model: self, body: body)
            self = DesiredModel()
            Self.visitKinds(&update)
            self = update.model
        }
    }

    /// Digests of the documents the plans read, derived from the table of kinds: one per region over every regional
    /// resource of that region (of every kind), and one over every resource that is not regional (the cloud-wide
    /// catalog). A region's plan key is made from its digest and the catalog's, so no kind can be forgotten.
    ///
    /// Each digest is the wrapping sum of its resources' mixed document digests (`StableHasher.mix`): it does not
    /// depend on the order resources come in, so the digests of a model are the sums of its files' digests, and a
    /// loader that decodes one changed file adds up the kept digests of the others (`LoadResult.planDigests`).
    public var planDigests: (catalog: UInt64, regions: [String: UInt64]) {
        var digests = PlanDigests()
        // Resources of one region come in runs (a file's documents): keep the run's sum at hand.
        var runRegion: String?
        var run: UInt64 = 0
        forEachMeta { meta in
            guard let region = meta.region?.value else {
                if meta.kind != .pipeline { digests.catalog &+= StableHasher.mix(meta.digest) }
                return
            }
            if region != runRegion {
                if let runRegion { digests.regions[runRegion, default: 0] &+= run }
                runRegion = region
                run = 0
            }
            run &+= StableHasher.mix(meta.digest)
        }
        if let runRegion { digests.regions[runRegion, default: 0] &+= run }
        return (digests.catalog, digests.regions)
    }

    /// A digest of every document plans are made from (`planDigests`: every resource but pipelines, by its file path
    /// and text): equal digests mean the same manifests as far as a plan goes. A saved plan records it.
    public var digest: String { Self.digest(of: planDigests) }

    /// `digest`, from `planDigests` already computed.
    public static func digest(of digests: (catalog: UInt64, regions: [String: UInt64])) -> String {
        var hasher = StableHasher()
        hasher.combine(digests.catalog)
        for (region, digest) in digests.regions.sorted(by: { $0.key < $1.key }) {
            hasher.combine(region)
            hasher.combine(digest)
        }
        return hasher.hex
    }

    /// Gives every resource of one file the digest of its document's source (`ObjectMeta.digest`): the file's path
    /// and its bytes from the line its document starts on to the line the next one starts on (the first from the
    /// top of the file, the last to its end). A document's value depends only on those (anchors do not cross
    /// documents), so an unchanged digest means an unchanged resource.
    mutating func stampDigests(path: String, bytes: [UInt8]) {
        var starts: [Int32] = []
        forEachMeta { starts.append($0.location.line) }
        guard !starts.isEmpty else { return }
        starts.sort()
        var unique = 1
        for position in 1..<starts.count where starts[position] != starts[unique - 1] {
            starts[unique] = starts[position]
            unique += 1
        }
        starts.removeSubrange(unique...)
        var pathHasher = StableHasher()
        pathHasher.combine(path)
        let digests: [UInt64] = bytes.withUnsafeBufferPointer { buffer in
            // The byte offset of each start line, in one pass over the line feeds.
            var offsets = [Int](repeating: buffer.count, count: starts.count)
            var line: Int32 = 1
            var index = 0
            for (position, start) in starts.enumerated() {
                while line < start, index < buffer.count {
                    guard let base = buffer.baseAddress,
                          let found = memchr(base + index, 0x0A, buffer.count - index) else { index = buffer.count; break }
                    index = base.distance(to: found.assumingMemoryBound(to: UInt8.self)) + 1
                    line += 1
                }
                offsets[position] = line == start ? index : buffer.count
            }
            return starts.indices.map { position in
                var hasher = pathHasher
                let from = position == 0 ? 0 : offsets[position]
                let to = position + 1 < starts.count ? offsets[position + 1] : buffer.count
                hasher.combine(bytes: buffer[from..<max(from, to)])
                return hasher.value
            }
        }
        updateMetas { meta in
            // Binary search: the line is one of `starts`.
            var low = 0, high = starts.count - 1
            while low < high {
                let middle = (low + high) / 2
                if starts[middle] < meta.location.line { low = middle + 1 } else { high = middle }
            }
            meta.digest = starts[low] == meta.location.line ? digests[low] : 0
        }
    }

    /// How many resources of each kind (in `visitKinds` order) the model holds: where a part's resources sit once merged.
    /// The instances' place among the kinds, in `visitKinds` order (as `kindCounts` counts them).
    static let instanceKind: Int = {
        struct Find: ModelKindVisitor {
            var index = 0, found = -1
            mutating func visit<Spec: ResourceSpec>(_ column: WritableKeyPath<DesiredModel, [Resource<Spec>]>) {
                if Spec.self == InstanceSpec.self { found = index }
                index += 1
            }
        }
        var find = Find()
        DesiredModel.visitKinds(&find)
        return find.found
    }()

    public var kindCounts: [Int] {
        struct Count: ModelKindVisitor {
            let model: DesiredModel
            var counts: [Int] = []
            mutating func visit<Spec: ResourceSpec>(_ column: WritableKeyPath<DesiredModel, [Resource<Spec>]>) {
                counts.append(model[keyPath: column].count)
            }
        }
        var count = Count(model: self)
        DesiredModel.visitKinds(&count)
        return count.counts
    }

    /// `merged` of parts of which only those at `replaced` differ from the parts `self` was merged from (`counts`: each
    /// part's `kindCounts` then, in order): the columns no old or new part at `replaced` has a resource of are kept as
    /// they are, and in the others only those parts' runs are replaced. In place when `self`'s columns are not shared;
    /// equal to `merged` of the new parts either way.
    public mutating func splice(_ replaced: [(index: Int, part: DesiredModel)], counts: [[Int]]) {
        struct Splice: ModelKindVisitor {
            var model: DesiredModel
            let replaced: [(index: Int, part: DesiredModel)]
            let counts: [[Int]]
            var kind = 0
            mutating func visit<Spec: ResourceSpec>(_ column: WritableKeyPath<DesiredModel, [Resource<Spec>]>) {
                defer { kind += 1 }
                guard replaced.contains(where: { counts[$0.index][kind] > 0 || !$0.part[keyPath: column].isEmpty }) else { return }
                // Where each replaced part's run starts, counted over the parts before it; replaced from the last one
                // back, so the runs before each are where they were counted.
                var starts: [Int] = []
                var offset = 0, next = 0
                for entry in replaced {
                    while next < entry.index { offset += counts[next][kind]; next += 1 }
                    starts.append(offset)
                }
                for (entry, start) in zip(replaced, starts).reversed() {
                    model[keyPath: column].replaceSubrange(start..<(start + counts[entry.index][kind]), with: entry.part[keyPath: column])
                }
            }
        }
        var splice = Splice(model: self, replaced: replaced.sorted { $0.index < $1.index }, counts: counts)
        self = DesiredModel()  // the columns held by `splice` alone, so replaced in place
        DesiredModel.visitKinds(&splice)
        self = splice.model
    }

    /// This model with each column's storage cut to its count. A part decoded one document at a time grows its
    /// columns by doubling, so a long-running loader that keeps it (one part per file) would hold up to twice its
    /// resources' inline size.
    public func fitted() -> DesiredModel {
        struct Fit: ModelKindVisitor {
            var model: DesiredModel
            mutating func visit<Spec: ResourceSpec>(_ column: WritableKeyPath<DesiredModel, [Resource<Spec>]>) {
                guard model[keyPath: column].capacity > model[keyPath: column].count else { return }
                model[keyPath: column] = model[keyPath: column].withUnsafeBufferPointer { Array($0) }
            }
        }
        var fit = Fit(model: self)
        Self.visitKinds(&fit)
        return fit.model
    }

    /// The resources of every part, in order: each kind's column is sized once, then filled (merging a repository's
    /// 2,000 files one by one regrows every column again and again).
    public static func merged(_ parts: [DesiredModel]) -> DesiredModel {
        // One visitor holds the part being read as its own property: a column is read from it in place. (Reading a
        // column from a part held anywhere else copies the whole part, every column retained, once per kind: a
        // million retains for a 2,000-file repository.)
        struct Merge: ModelKindVisitor {
            enum Step { case count, reserve, append }
            var step = Step.count
            var model = DesiredModel()
            var part = DesiredModel()
            var counts: [Int] = []
            var kind = 0
            mutating func visit<Spec: ResourceSpec>(_ column: WritableKeyPath<DesiredModel, [Resource<Spec>]>) {
                defer { kind += 1 }
                switch step {
                case .count:
                    if counts.count == kind { counts.append(0) }
                    counts[kind] += part[keyPath: column].count
                case .reserve:
                    if kind < counts.count { model[keyPath: column].reserveCapacity(counts[kind]) }  // none when there are no parts
                case .append:
                    model[keyPath: column].append(contentsOf: part[keyPath: column])
                }
            }
            mutating func pass(_ step: Step, over parts: [DesiredModel]) {
                self.step = step
                for index in parts.indices {
                    part = parts[index]
                    kind = 0
                    DesiredModel.visitKinds(&self)
                }
                part = DesiredModel()
            }
        }
        var merge = Merge()
        merge.pass(.count, over: parts)
        merge.step = .reserve
        merge.kind = 0
        visitKinds(&merge)
        merge.pass(.append, over: parts)
        return merge.model
    }

    /// Appends every resource of `other`.
    public mutating func append(contentsOf other: DesiredModel) {
        struct Append: ModelKindVisitor {
            var model: DesiredModel
            let other: DesiredModel
            mutating func visit<Spec: ResourceSpec>(_ column: WritableKeyPath<DesiredModel, [Resource<Spec>]>) {
                model[keyPath: column] += other[keyPath: column]
            }
        }
        var append = Append(model: self, other: other)
        self = DesiredModel()
        Self.visitKinds(&append)
        self = append.model
    }
}

/// Visits each kind's column of a `DesiredModel` (see `DesiredModel.visitKinds`).
public protocol ModelKindVisitor {
    /// Called once per kind with the key path of its resources.
    mutating func visit<Spec: ResourceSpec>(_ column: WritableKeyPath<DesiredModel, [Resource<Spec>]>)
}

/// Plan digests being added up (`DesiredModel.planDigests`): the catalog's and each region's.
public struct PlanDigests: Sendable {
    public var catalog: UInt64 = 0
    public var regions: [String: UInt64] = [:]

    public init() {}

    /// Adds a part's digests (a file's) to these.
    mutating func add(_ part: (catalog: UInt64, regions: [String: UInt64])) {
        catalog &+= part.catalog
        for (region, digest) in part.regions { regions[region, default: 0] &+= digest }
    }

    /// Adds a part's digests, counting in `counts` the parts each region has (for `subtract`).
    mutating func add(_ part: (catalog: UInt64, regions: [String: UInt64]), counts: inout [String: Int]) {
        add(part)
        for region in part.regions.keys { counts[region, default: 0] += 1 }
    }

    /// Takes a part's digests (a file's, added earlier) out of these. A region none of whose documents is left goes.
    mutating func subtract(_ part: (catalog: UInt64, regions: [String: UInt64]), counts: inout [String: Int]) {
        catalog &-= part.catalog
        for (region, digest) in part.regions {
            regions[region, default: 0] &-= digest
            counts[region, default: 0] -= 1
            if counts[region] == 0 {
                regions[region] = nil
                counts[region] = nil
            }
        }
    }
}

/// Columns of a model, held (so their storage cannot be changed in place while held) and compared by identity: what a
/// cache keeps beside what it made from them, to tell whether a later model's columns are the very same arrays
/// (`Array.sharesStorage`, one comparison per column).
public struct HeldColumns: @unchecked Sendable {
    private let held: [Any]
    /// Each column's base address (0 when empty) and count.
    private let identities: [Int]

    /// Holds `columns`.
    public init<each Spec: ResourceSpec>(_ columns: repeat [Resource<each Spec>]) {
        var held: [Any] = []
        var identities: [Int] = []
        for column in repeat each columns {
            held.append(column)
            identities.append(column.isEmpty ? 0 : column.withUnsafeBufferPointer { Int(bitPattern: $0.baseAddress) })
            identities.append(column.count)
        }
        self.held = held
        self.identities = identities
    }

    /// Holds every column of `model` but its instances.
    init(exceptInstancesOf model: DesiredModel) {
        struct Hold: ModelKindVisitor {
            let model: DesiredModel
            var held: [Any] = []
            var identities: [Int] = []
            mutating func visit<Spec: ResourceSpec>(_ column: WritableKeyPath<DesiredModel, [Resource<Spec>]>) {
                guard Spec.kind != .instance else { return }
                let resources = model[keyPath: column]
                held.append(resources)
                identities.append(resources.isEmpty ? 0 : resources.withUnsafeBufferPointer { Int(bitPattern: $0.baseAddress) })
                identities.append(resources.count)
            }
        }
        var hold = Hold(model: model)
        DesiredModel.visitKinds(&hold)
        held = hold.held
        identities = hold.identities
    }

    /// Whether every column is the one `other` holds in its place (or both are empty).
    public func same(as other: HeldColumns) -> Bool { identities == other.identities }
}

extension Array {
    /// Whether this array and `other` are one array (the same storage, so the same elements), or both empty. A
    /// column a splice left alone (`DesiredModel.splice`) is the same array as before; a caller that holds the
    /// earlier array knows its storage cannot have been reused for another.
    public func sharesStorage(with other: [Element]) -> Bool {
        guard count == other.count else { return false }
        guard !isEmpty else { return true }
        return withUnsafeBufferPointer { mine in other.withUnsafeBufferPointer { theirs in mine.baseAddress == theirs.baseAddress } }
    }
}

extension Dictionary {
    /// Whether this dictionary and `other` are one dictionary (the same storage, so the same entries), or both empty. A
    /// dictionary is a reference to its storage, which is copied before any change while shared: equal references
    /// mean equal entries. The caller holds the earlier dictionary, so its storage cannot have been reused for another.
    /// False for equal entries in separate storage (the caller compares, or makes them again).
    public func sharesStorage(with other: [Key: Value]) -> Bool {
        guard count == other.count else { return false }
        guard !isEmpty else { return true }
        return withUnsafeBytes(of: self) { mine in withUnsafeBytes(of: other) { theirs in mine.elementsEqual(theirs) } }
    }
}
