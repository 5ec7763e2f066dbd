import Dispatch
import Parallel

/// Cross-document rules over a whole desired model: identity, references, networks, storage, capacity.
/// Every rule reports all its findings; nothing stops at the first problem.
struct Validator: Sendable {
    let model: DesiredModel
    let files: SourceFiles
    let index: ModelIndex
    /// Regions whose own files failed to parse: references to them are not reported again.
    let unreadableRegions: Set<String>
    /// Names that files which failed to parse appear to declare (`name:` lines): references to them are not reported
    /// as undeclared, since the syntax error already explains them.
    let lostNames: Set<String>
    var diagnostics: [Diagnostic] = []

    /// StackLab's minimum number of servers in a region.
    static let minimumNodesPerRegion = 3

    /// `cache` keeps the index of everything but what instances are attached to, while those columns are the same
    /// arrays (a spliced model's untouched columns).
    init(model: DesiredModel, files: SourceFiles, unreadableRegions: Set<String> = [], lostNames: Set<String> = [], cache: ValidationCache? = nil) {
        self.model = model
        self.files = files
        self.unreadableRegions = unreadableRegions
        self.lostNames = lostNames
        var index = cache?.catalogIndex(of: model) ?? ModelIndex(catalogOf: model)
        index.attach(model)
        self.index = index
    }

    /// Runs every rule and returns the findings, with each region's instances (their positions in `model.instances`,
    /// in declaration order). Instances are checked region by region, concurrently; a region
    /// whose instance documents (and their places) and everything that is not an instance are unchanged since
    /// `cache` last saw them keeps its findings. The rules over everything else run concurrently with them.
    func run(cache: ValidationCache? = nil) -> (diagnostics: [Diagnostic], instancesByRegion: [String: [Int]]) {
        // Instances by region, in declaration order, and (for the cache) a key of each region's instances: each
        // instance's region slot in one pass (a tenant's file holds instances of many regions, so runs are short), then
        // each region's positions in arrays of their final size.
        let context = cache.map { contextKey(cache: $0) }
        let placed = instanceRegions(cache: cache)
        var positions: [String: [Int]] = [:]
        var keys: [String: UInt64] = [:]
        for (slot, name) in placed.names.enumerated() where placed.counts[slot] > 0 {
            positions[name] = placed.positions[slot]
            keys[name] = context.map { StableHasher.mix($0 ^ StableHasher.mix(placed.sums[slot] ^ UInt64(placed.counts[slot]))) }
        }
        let regions = positions.keys.sorted()
        var findings: [String: InstanceFindings] = [:]
        var toCheck: [(region: String, key: UInt64?)] = []
        let changed = cache.flatMap { changedByRegion(cache: $0) }
        for region in regions {
            let key = keys[region]
            if let key, let kept = cache?.findings(region: region, key: key) {
                findings[region] = kept
            } else if let key, let context, let cache, let changed = changed?[region],
                      let spliced = splicedFindings(region: region, changed: changed, context: context, cache: cache) {
                findings[region] = spliced
                cache.keep(spliced, region: region, key: key, context: context, spliced: true)
            } else {
                toCheck.append((region, key))
            }
        }
        let work = toCheck.map { positions[$0.region]! }
        let checked = ResultSlots<InstanceFindings>(count: work.count)
        let others = ResultSlots<[Diagnostic]>(count: 1)
        // The rules over everything but instances read no instance but those volumes and floating IPs attach to:
        // while those and every other document are unchanged, their findings are too.
        let keyOfOthers = context.map { self.othersKey(context: $0) }
        if let keyOfOthers, let kept = cache?.others(key: keyOfOthers) { others[0] = kept }
        let runOthers = others[0] == nil
        let first = runOthers ? 1 : 0
        let base = self
        // Slot 0 runs the rules over everything but instances (unless kept); the others check one region's instances each.
        DispatchQueue.concurrentPerform(iterations: work.count + first) { slot in
            if runOthers && slot == 0 {
                var validator = base
                validator.checkIdentity()
                validator.checkRegions()
                validator.checkNodes()
                validator.checkNetworks()
                validator.checkRings()
                validator.checkCatalog()
                validator.checkTenantScopes()
                validator.checkTenantResources()
                validator.checkLoadBalancers()
                validator.checkAlarms()
                validator.checkContainers()
                validator.checkFilters()
                validator.checkPipelines()
                others[0] = validator.diagnostics
            } else {
                checked[slot - first] = base.instanceFindings(at: work[slot - first])
            }
        }
        if runOthers, let keyOfOthers { cache?.keep(others: others[0]!, key: keyOfOthers) }
        for ((region, key), result) in zip(toCheck, checked.values) {
            findings[region] = result
            if let key, let context { cache?.keep(result, region: region, key: key, context: context, spliced: false) }
        }
        cache?.retain(regions: Set(regions))
        var validator = self
        validator.diagnostics = others[0]!
        validator.checkCapacity(findings)
        validator.checkQuotas(findings)
        return (validator.diagnostics + regions.flatMap { findings[$0]!.diagnostics }, positions)
    }

    /// Each instance's region slot and mix, and each region's positions (in declaration order), count and sum of mixes.
    /// When `cache` holds them for the model this one was spliced from (`ValidationCache.changedInstances`), only the
    /// instances of the replaced files move; otherwise one pass over every instance makes them (a tenant's file holds
    /// instances of many regions, so runs are short).
    private func instanceRegions(cache: ValidationCache?) -> ValidationCache.InstanceRegions {
        if let cache, let changed = cache.changedInstances, var placed = cache.takeInstanceRegions(),
           placed.load == cache.loads - 1, placed.slots.count == model.instances.count {
            model.instances.withUnsafeBufferPointer { instances in
                for range in changed {
                    for index in range {
                        let meta = UnsafePointer(instances.baseAddress! + index)
                        let slot = placed.slot(of: meta.pointee.meta.region!.value)
                        let old = Int(placed.slots[index])
                        let mix = Self.instanceMix(meta.pointee.meta)
                        placed.counts[old] -= 1
                        placed.sums[old] &-= placed.mixes[index]
                        placed.counts[slot] += 1
                        placed.sums[slot] &+= mix
                        placed.mixes[index] = mix
                        guard slot != old else { continue }
                        placed.slots[index] = Int32(slot)
                        placed.positions[old].remove(at: placed.positions[old].lowerBound(of: index))
                        placed.positions[slot].insert(index, at: placed.positions[slot].lowerBound(of: index))
                    }
                }
            }
            placed.load = cache.loads
            cache.keep(placed, moved: changed.reduce(0) { $0 + $1.count })
            return placed
        }
        var placed = ValidationCache.InstanceRegions(load: cache?.loads ?? 0)
        placed.slots = [Int32](repeating: 0, count: model.instances.count)
        placed.mixes = [UInt64](repeating: 0, count: model.instances.count)
        model.instances.withUnsafeBufferPointer { instances in
            // A small direct-mapped cache of region names in front of the dictionary: names are short, so a byte hash
            // and one comparison cost less than hashing the name for the dictionary.
            var recent = [(name: String, slot: Int)?](repeating: nil, count: 256)
            for index in instances.indices {
                let resource = UnsafePointer(instances.baseAddress! + index)
                let region = resource.pointee.meta.region!.value
                var hash = 0
                for byte in region.utf8 { hash = hash &* 31 &+ Int(byte) }
                let bucket = hash & 255
                let slot: Int
                if let hit = recent[bucket], hit.name == region {
                    slot = hit.slot
                } else {
                    slot = placed.slot(of: region)
                    recent[bucket] = (region, slot)
                }
                let mix = Self.instanceMix(resource.pointee.meta)
                placed.slots[index] = Int32(slot)
                placed.mixes[index] = mix
                placed.counts[slot] += 1
                placed.sums[slot] &+= mix
            }
        }
        var bySlot = placed.counts.map { count in
            var positions: [Int] = []
            positions.reserveCapacity(count)
            return positions
        }
        for (index, slot) in placed.slots.enumerated() { bySlot[Int(slot)].append(index) }
        placed.positions = bySlot
        cache?.keep(placed, moved: nil)
        return placed
    }

    /// `contextKey()`, kept by `cache` while every column but the instances is the same array and the same regions'
    /// files did not parse and the same names were lost.
    private func contextKey(cache: ValidationCache) -> UInt64 {
        let columns = HeldColumns(exceptInstancesOf: model)
        if let kept = cache.context, kept.columns.same(as: columns), kept.unreadable == unreadableRegions, kept.lost == lostNames {
            return kept.key
        }
        let key = contextKey()
        cache.context = (columns, unreadableRegions, lostNames, key)
        return key
    }

    /// A digest of everything instance findings read besides the instances: every other resource's document and
    /// place, and the regions whose files did not parse.
    private func contextKey() -> UInt64 {
        var hasher = StableHasher()
        model.forEachMeta(includingInstances: false) { meta in
            hasher.combine(meta.digest)
            hasher.combine(UInt64(meta.location.file.index) << 32 | UInt64(UInt32(bitPattern: meta.location.line)))
        }
        for region in unreadableRegions.sorted() { hasher.combine(region) }
        // Names a file that did not parse may have declared: an instance's reference to one is not reported.
        hasher.combine(UInt64(lostNames.count))
        for name in lostNames.sorted() { hasher.combine(name) }
        return hasher.value
    }

    /// A digest of what the rules over everything but instances read: `context`, the instances volumes and floating
    /// IPs attach to (owner, flavor), and the names files that did not parse may have declared.
    private func othersKey(context: UInt64) -> UInt64 {
        var hasher = StableHasher()
        hasher.combine(context)
        let attached = index.attachedFlavors.map { "\($0.key.region)/\($0.key.tenant)/\($0.key.name)=\($0.value)" }.sorted()
        hasher.combine(UInt64(attached.count))
        for entry in attached { hasher.combine(entry) }
        let owners = index.instanceOwners.map { "\($0.key.region)/\($0.key.name)=\($0.value.joined(separator: ","))" }.sorted()
        hasher.combine(UInt64(owners.count))
        for entry in owners { hasher.combine(entry) }
        for name in lostNames.sorted() { hasher.combine(name) }
        return hasher.value
    }

    /// One instance's part of its region's key: its document's digest and its place, mixed. A region's key sums its
    /// instances' parts, so it is made in one pass over the column; the places fix the order (a file's index and a
    /// line), so equal sums of equal counts are the same documents in the same order, but for a 64-bit collision.
    private static func instanceMix(_ meta: ObjectMeta) -> UInt64 {
        let place = UInt64(meta.location.file.index) << 32 | UInt64(UInt32(bitPattern: meta.location.line))
        return StableHasher.mix(meta.digest ^ StableHasher.mix(place))
    }

    mutating func error(_ message: String, at location: SourceLocation, hint: String? = nil) {
        diagnostics.append(.error(message, at: location, hint: hint))
    }

    /// A reference to `name` that resolves to nothing: an error, unless a file that failed to parse may have declared it.
    mutating func undeclared(_ name: String, _ message: String, at location: SourceLocation, hint: String? = nil) {
        guard !lostNames.contains(name) else { return }
        error(message, at: location, hint: hint)
    }

    mutating func warning(_ message: String, at location: SourceLocation, hint: String? = nil) {
        diagnostics.append(.warning(message, at: location, hint: hint))
    }

    /// "did you mean 'x'?" from candidates, or a list of what exists, or a fallback.
    static func suggestion(for name: String, among candidates: some Sequence<String>, noun: String) -> String {
        let sorted = Array(candidates).sorted()
        if let close = ManifestDecoder.closest(to: name, in: sorted) { return "did you mean '\(close)'?" }
        if sorted.isEmpty { return "no \(noun) is declared; add one" }
        let shown = sorted.prefix(8).joined(separator: ", ")
        return "declared: \(shown)\(sorted.count > 8 ? ", …" : "")"
    }

    /// `path:line:column` of another declaration, for hints.
    func place(_ location: SourceLocation) -> String {
        files.describe(location)
    }
}

/// Instance findings kept between loads, by region and key (see `Validator.run(cache:)`).
public final class ValidationCache {
    /// A region's instance findings, the key and context they were made under, and the last load they held for.
    struct Kept {
        var key: UInt64
        var context: UInt64
        var load: Int
        var findings: InstanceFindings
    }
    private var kept: [String: Kept] = [:]
    /// The last context key (`Validator.contextKey`) and what it was made from.
    var context: (columns: HeldColumns, unreadable: Set<String>, lost: Set<String>, key: UInt64)?
    /// The catalog index (`ModelIndex(catalogOf:)`) and the columns it was built from (only those it reads: holding the
    /// instances too would share them with the next load's model, which would then copy them to splice).
    private var index: (columns: HeldColumns, index: ModelIndex)?

    /// The catalog index of `model`: the kept one while its columns are the same arrays, else built (and kept).
    func catalogIndex(of model: DesiredModel) -> ModelIndex {
        let columns = HeldColumns(model.regions, model.flavors, model.images, model.tenants, model.priceLists, model.networks,
                                  model.nodes, model.keypairs, model.securityGroups)
        lastKeptIndex = index?.columns.same(as: columns) ?? false
        if lastKeptIndex, let index { return index.index }
        let built = ModelIndex(catalogOf: model)
        index = (columns, built)
        return built
    }
    /// The findings of the rules over everything but instances, by `Validator.othersKey`.
    private var keptOthers: (key: UInt64, diagnostics: [Diagnostic])?
    /// Regions whose findings were kept, and checked, by the last run.
    public private(set) var lastReused = 0
    /// Whether the last run kept the catalog index (its columns were the same arrays).
    public private(set) var lastKeptIndex = false
    /// Whether the last run kept the findings of the rules over everything but instances.
    public private(set) var lastReusedOthers = false

    /// Where each instance of a validated model is: its region's slot and its mix (`Validator.instanceMix`), and each
    /// region's positions in declaration order, count and sum of mixes (a region key's part that is the instances').
    struct InstanceRegions {
        /// The load (`loads`) whose model these describe.
        var load: Int
        var slots: [Int32] = []
        var mixes: [UInt64] = []
        var names: [String] = []
        var slotOf: [String: Int] = [:]
        var counts: [Int] = []
        var sums: [UInt64] = []
        var positions: [[Int]] = []

        /// The slot of `region`, a new one (empty) the first time.
        mutating func slot(of region: String) -> Int {
            if let slot = slotOf[region] { return slot }
            slotOf[region] = names.count
            names.append(region)
            counts.append(0)
            sums.append(0)
            positions.append([])
            return names.count - 1
        }
    }

    private var instanceRegions: InstanceRegions?
    /// Loads validated with this cache, counted.
    private(set) var loads = 0
    /// The instance positions the current load replaced in place (its model is the last load's with only these
    /// positions changed), or nil when it was merged anew or a replaced file holds another number of instances.
    private(set) var changedInstances: [Range<Int>]?
    /// The last load's instances at `changedInstances`, in order: what a region's kept findings counted for them.
    private(set) var replacedInstances: [Resource<InstanceSpec>] = []

    /// A new load begins; `changed` are the instance positions it replaced in the last load's model (nil: unknown), and
    /// `replaced` the instances those positions held (all of `changed`'s, in order).
    func beginLoad(changed: [Range<Int>]?, replaced: [Resource<InstanceSpec>] = []) {
        loads += 1
        changedInstances = changed
        replacedInstances = changed == nil ? [] : replaced
    }

    /// The kept instance regions, no longer kept (moved in place, not copied, then kept again).
    func takeInstanceRegions() -> InstanceRegions? {
        defer { instanceRegions = nil }
        return instanceRegions
    }

    /// Keeps `regions`; `moved` instances were placed again (nil: every instance was, in one pass).
    func keep(_ regions: InstanceRegions, moved: Int?) {
        instanceRegions = regions
        lastMoved = moved
    }

    /// The instances the last run placed again in their regions (those of the files a splice replaced), or nil when it
    /// placed every instance.
    public private(set) var lastMoved: Int?

    /// An empty cache.
    public init() {}

    func findings(region: String, key: UInt64) -> InstanceFindings? {
        guard let entry = kept[region], entry.key == key else { return nil }
        lastReused += 1
        kept[region]?.load = loads
        return entry.findings
    }

    /// The findings kept for `region` when they held for the last load, made under `context`.
    func previous(region: String, context: UInt64) -> InstanceFindings? {
        guard let entry = kept[region], entry.load == loads - 1, entry.context == context else { return nil }
        return entry.findings
    }

    func keep(_ findings: InstanceFindings, region: String, key: UInt64, context: UInt64, spliced: Bool) {
        kept[region] = Kept(key: key, context: context, load: loads, findings: findings)
        if spliced { lastSpliced += 1 }
    }

    /// Regions whose findings the last run made from the last load's, counting again only the replaced instances.
    public private(set) var lastSpliced = 0

    func others(key: UInt64) -> [Diagnostic]? {
        let kept = keptOthers.flatMap { $0.key == key ? $0.diagnostics : nil }
        lastReusedOthers = kept != nil
        return kept
    }

    func keep(others diagnostics: [Diagnostic], key: UInt64) {
        keptOthers = (key, diagnostics)
    }

    func retain(regions: Set<String>) {
        kept = kept.filter { regions.contains($0.key) }
    }

    func reset() {
        lastReused = 0
        lastSpliced = 0
        lastReusedOthers = false
    }
}

extension Array where Element == Int {
    /// The first position whose element is not below `value`, in an ascending array (where `value` is, or would go).
    fileprivate func lowerBound(of value: Int) -> Int {
        var low = 0, high = count
        while low < high {
            let middle = (low + high) / 2
            if self[middle] < value { low = middle + 1 } else { high = middle }
        }
        return low
    }
}
