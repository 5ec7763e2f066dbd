import Foundation
import Git
import Manifests
import Planning

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
        /// Validation errors, rendered; empty when valid.
        public var diagnostics = ""
        public var regions: [String] = []
        public var changes: [CheckedChange] = []
        public var planErrors: [String] = []
        public var verdict = -1
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
            result.diagnostics = DiagnosticRenderer(files: loaded.files).render(loaded.diagnostics.filter { $0.severity == .error })
            return result
        }
        // The regions whose documents (or the cloud-wide documents they use) differ from the base's.
        let before = try load(tip).model.planDigests
        let after = loaded.model.planDigests
        let regions = loaded.model.regions.map(\.name).filter { before.catalog != after.catalog || before.regions[$0] != after.regions[$0] }.sorted()
        result.regions = regions
        guard !regions.isEmpty else {
            result.verdict = 1
            return result
        }
        let reconciler = try reconciler(loaded)
        let drivers = try reconciler.drivers(for: regions)
        let plan = try reconciler.plan(regions: regions, observed: try reconciler.observe(drivers), drivers: drivers)
        let causes = try ProvenanceFinder.find(plan: plan, loaded: loaded, repository: repo, base: tip, head: result.merged!)
        result.changes = plan.changes.map { change in
            CheckedChange(id: change.id.description, action: change.action.rawValue, reason: change.reason.rawValue, fields: change.fields,
                          causes: causes[change.id.description] ?? [])
        }
        result.planErrors = plan.errors.map { "\($0.address): \($0.message)" }
        result.verdict = plan.errors.isEmpty ? 1 : -1
        return result
    }
}
