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

    init(model: DesiredModel, files: SourceFiles, unreadableRegions: Set<String> = [], lostNames: Set<String> = []) {
        self.model = model
        self.files = files
        self.unreadableRegions = unreadableRegions
        self.lostNames = lostNames
        self.index = ModelIndex(model)
    }

    /// Runs every rule and returns the findings. Instances are checked region by region, concurrently; a region
    /// whose instance documents (and their places) and everything that is not an instance are unchanged since
    /// `cache` last saw them keeps its findings. The rules over everything else run concurrently with them.
    func run(cache: ValidationCache? = nil) -> [Diagnostic] {
        // Instances by region, in declaration order.
        var positions: [String: [Int]] = [:]
        for index in model.instances.indices { positions[model.instances[index].region!, default: []].append(index) }
        let regions = positions.keys.sorted()
        let context = cache.map { _ in contextKey() }
        var findings: [String: InstanceFindings] = [:]
        var toCheck: [(region: String, key: UInt64?)] = []
        for region in regions {
            let key = context.map { instanceKey(positions[region]!, context: $0) }
            if let key, let kept = cache?.findings(region: region, key: key) { findings[region] = kept } else { toCheck.append((region, key)) }
        }
        let work = toCheck.map { positions[$0.region]! }
        let checked = ResultSlots<InstanceFindings>(count: work.count)
        let others = ResultSlots<[Diagnostic]>(count: 1)
        let base = self
        // Slot 0 runs the rules over everything but instances; the others check one region's instances each.
        DispatchQueue.concurrentPerform(iterations: work.count + 1) { slot in
            if slot == 0 {
                var validator = base
                validator.checkIdentity()
                validator.checkRegions()
                validator.checkNodes()
                validator.checkNetworks()
                validator.checkRings()
                validator.checkCatalog()
                validator.checkTenantScopes()
                validator.checkTenantResources()
                validator.checkFilters()
                validator.checkPipelines()
                others[0] = validator.diagnostics
            } else {
                checked[slot - 1] = base.instanceFindings(at: work[slot - 1])
            }
        }
        for ((region, key), result) in zip(toCheck, checked.values) {
            findings[region] = result
            if let key { cache?.keep(result, region: region, key: key) }
        }
        cache?.retain(regions: Set(regions))
        var validator = self
        validator.diagnostics = others[0]!
        validator.checkCapacity(findings)
        validator.checkQuotas(findings)
        return validator.diagnostics + regions.flatMap { findings[$0]!.diagnostics }
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
        return hasher.value
    }

    /// A digest of the instances at `positions` (documents and places) within `context`.
    private func instanceKey(_ positions: [Int], context: UInt64) -> UInt64 {
        var hasher = StableHasher()
        hasher.combine(context)
        for position in positions {
            let meta = model.instances[position].meta
            hasher.combine(meta.digest)
            hasher.combine(UInt64(meta.location.file.index) << 32 | UInt64(UInt32(bitPattern: meta.location.line)))
        }
        return hasher.value
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
    private var kept: [String: (key: UInt64, findings: InstanceFindings)] = [:]
    /// Regions whose findings were kept, and checked, by the last run.
    public private(set) var lastReused = 0

    /// An empty cache.
    public init() {}

    func findings(region: String, key: UInt64) -> InstanceFindings? {
        guard let entry = kept[region], entry.key == key else { return nil }
        lastReused += 1
        return entry.findings
    }

    func keep(_ findings: InstanceFindings, region: String, key: UInt64) {
        kept[region] = (key, findings)
    }

    func retain(regions: Set<String>) {
        kept = kept.filter { regions.contains($0.key) }
    }

    func reset() { lastReused = 0 }
}
