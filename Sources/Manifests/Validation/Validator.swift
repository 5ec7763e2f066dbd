/// Cross-document rules over a whole desired model: identity, references, networks, storage, capacity.
/// Every rule reports all its findings; nothing stops at the first problem.
struct Validator {
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

    /// Runs every rule and returns the findings.
    func run() -> [Diagnostic] {
        var validator = self
        validator.checkIdentity()
        validator.checkRegions()
        validator.checkNodes()
        validator.checkNetworks()
        validator.checkRings()
        validator.checkCatalog()
        validator.checkTenantScopes()
        validator.checkInstances()
        validator.checkTenantResources()
        validator.checkFilters()
        validator.checkCapacity()
        validator.checkQuotas()
        return validator.diagnostics
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
