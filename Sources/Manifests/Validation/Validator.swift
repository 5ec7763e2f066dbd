import Dispatch

/// Cross-document rules over a whole desired model: identity, references, networks, storage, capacity.
/// Every rule reports all its findings; nothing stops at the first problem.
struct Validator: Sendable {
    let model: DesiredModel
    let files: SourceFiles
    let index: ModelIndex
    /// Regions whose own files failed to parse: references to them are not reported again.
    let unreadableRegions: Set<String>
    var diagnostics: [Diagnostic] = []

    /// StackLab's minimum number of servers in a region.
    static let minimumNodesPerRegion = 3

    init(model: DesiredModel, files: SourceFiles, unreadableRegions: Set<String> = []) {
        self.model = model
        self.files = files
        self.unreadableRegions = unreadableRegions
        self.index = ModelIndex(model)
    }

    /// Rule groups that read the model independently; they run concurrently and their findings are merged
    /// (the loader sorts them, so the output does not depend on scheduling).
    private static let groups: [@Sendable (inout Validator) -> Void] = [
        { $0.checkIdentity() },
        { $0.checkInstances() },
        { v in
            v.checkRegions()
            v.checkNodes()
            v.checkNetworks()
            v.checkRings()
            v.checkCatalog()
            v.checkTenantScopes()
            v.checkTenantResources()
            v.checkFilters()
            v.checkCapacity()
            v.checkQuotas()
        },
    ]

    /// Runs every rule and returns the findings.
    func run() -> [Diagnostic] {
        let results = ResultSlots<[Diagnostic]>(count: Self.groups.count)
        let base = self
        DispatchQueue.concurrentPerform(iterations: Self.groups.count) { group in
            var validator = base
            Self.groups[group](&validator)
            results[group] = validator.diagnostics
        }
        return results.values.flatMap { $0 }
    }

    mutating func error(_ message: String, at location: SourceLocation, hint: String? = nil) {
        diagnostics.append(.error(message, at: location, hint: hint))
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
