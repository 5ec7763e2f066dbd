import Foundation
import Git
import Manifests
import Planning
import Reconcile
import State

/// `ci check`: a change validated and planned against every region it touches, touching nothing; each planned change
/// names the manifest lines of the change that caused it (git blame through libgit2).
extension PipelineRunner {
    public struct CheckedChange: Sendable, Codable {
        public var id: String
        public var action: String
        public var reason: String
        public var fields: [Change.FieldChange]
        public var causes: [Provenance]
    }

    public struct CheckResult: Sendable, Codable {
        public var change: String
        public var commit: String?
        public var base: String
        public var merged: String?
        public var conflicts: [String] = []
        /// Validation errors, each with its file, line and column; empty when valid.
        public var diagnostics: [DiagnosticRecord] = []
        /// The same, rendered with their source lines for a terminal.
        public var report = ""
        public var regions: [String] = []
        public var changes: [CheckedChange] = []
        public var planErrors: [String] = []
        /// Object-store settings the change makes that this check did not use (it used the base's): each takes effect
        /// once the change is on the deployed branch.
        public var deferred: [String] = []
        public var verdict = Verdict.failed
    }

    public func check(change: String, base: String) throws -> CheckResult {
        let repo = try Repository(at: repository)
        let tip = try repo.resolveCommit(base)
        var result = CheckResult(change: change, base: tip)
        let commit = try repo.resolveCommit(change)
        result.commit = commit
        let info = try repo.commitInfo(commit)
        switch try repo.merge(commit, onto: tip, message: "Check: merge \(change)", author: (info.author, info.email)) {
        case .conflicts(let files):
            result.conflicts = files
            return result
        case .merged(let merged):
            result.merged = merged
        }
        let loaded = try load(result.merged!)
        if loaded.hasErrors {
            let errors = loaded.diagnostics.filter { $0.severity == .error }
            result.diagnostics = errors.map { DiagnosticRecord($0, files: loaded.files) }
            result.report = DiagnosticRenderer(files: loaded.files).render(errors)
            return result
        }
        // The regions whose documents (or the cloud-wide documents they use) differ from the base's.
        let baseModel = try load(tip).model
        let before = baseModel.planDigests
        let after = loaded.model.planDigests
        let regions = loaded.model.regions.map(\.name).filter { before.catalog != after.catalog || before.regions[$0] != after.regions[$0] }.sorted()
        result.regions = regions
        guard !regions.isEmpty else {
            result.verdict = .passed
            return result
        }
        var trusted = self
        trusted.bindings = baseModel
        result.deferred = Self.deferredBindings(base: baseModel, change: loaded.model)
        let reconciler = try trusted.reconciler(loaded)
        var request = PlanRequest(.refresh, regions: regions)
        request.recover = false
        let plan = try reconciler.plan(request).plan
        let causes = try ProvenanceFinder.find(plan: plan, loaded: loaded, repository: repo, base: tip, head: result.merged!)
        result.changes = plan.changes.map { change in
            CheckedChange(id: change.id.description, action: change.action.rawValue, reason: change.reason.rawValue, fields: change.fields,
                          causes: causes[change.id.description] ?? [])
        }
        result.planErrors = plan.errors.map { "\($0.address): \($0.message)" }
        result.verdict = plan.errors.isEmpty ? .passed : .failed
        return result
    }

    /// What a change does to the regions' object-store endpoints and credential bindings, none of which a check or gate
    /// uses before the change is merged.
    static func deferredBindings(base: DesiredModel, change: DesiredModel) -> [String] {
        func bindings(_ model: DesiredModel) -> [String: RegionSpec.ObjectStore] {
            Dictionary(model.regions.compactMap { region in region.spec.objectStore.map { (region.name, $0.value) } }, uniquingKeysWith: { first, _ in first })
        }
        let before = bindings(base), after = bindings(change)
        func describe(_ store: RegionSpec.ObjectStore?) -> String {
            store.map { "\($0.proxy.value) as \($0.user.value) with $\($0.effectiveKeyEnv)" } ?? "none"
        }
        return Set(before.keys).union(after.keys).sorted().compactMap { region in
            let was = before[region], now = after[region]
            guard was?.proxy.value != now?.proxy.value || was?.user.value != now?.user.value || was?.effectiveKeyEnv != now?.effectiveKeyEnv else { return nil }
            return "region \(region): objectStore \(describe(was)) → \(describe(now)) takes effect after merge (this check used the base's)"
        }
    }
}
