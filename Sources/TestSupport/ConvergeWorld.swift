import Drivers
import Foundation
import ManifestSources
import Manifests
import Planning
import Reconcile
import SimulatedNodes
import StateSQLite

/// A deployment checked into git (`Fixtures.deployment`), with a state directory of its own: the world the workflow
/// tests of several targets plan and apply in, over simulated nodes.
public final class ConvergeWorld {
    public let repo: Scratch
    public let state: Scratch

    /// What went wrong setting a world up or changing it.
    public struct WorldError: Error, CustomStringConvertible {
        public var description: String
    }

    public init(overlay: String? = nil) throws {
        repo = try Fixtures.deployment(overlay: overlay)
        state = try Scratch("state")
        try GitCLI.commitAll(in: repo.path)
    }

    /// A reconciler of revision `rev`; manifests with errors are an error (a world is always valid).
    public func reconciler(rev: String = "HEAD") throws -> Reconciler {
        let loaded = try Loader().load(GitSource(repository: repo.path, revision: rev))
        guard !loaded.hasErrors else { throw WorldError(description: DiagnosticRenderer(files: loaded.files).render(loaded.diagnostics)) }
        return Reconciler(model: loaded.model, revision: loaded.revision, stateDirectory: state.path, state: try SQLiteState.existing(directory: state.path))
    }

    /// A refresh-only plan of every region at `rev`.
    public func plan(rev: String = "HEAD") throws -> Plan {
        try reconciler(rev: rev).refreshPlan()
    }

    /// Plans and applies every region at `rev`.
    @discardableResult
    public func apply(rev: String = "HEAD") throws -> Applier.Report {
        let reconciler = try reconciler(rev: rev)
        let drivers = try reconciler.drivers(for: try reconciler.regions([]))
        let plan = try reconciler.refreshPlan(drivers: drivers)
        return try Applier().apply(plan, drivers: drivers, state: try SQLiteState(directory: state.path))
    }

    /// What every node holds now.
    public func observed() throws -> [ObservedNode] {
        let reconciler = try reconciler()
        return try reconciler.observe(try reconciler.drivers(for: try reconciler.regions([])))
    }

    /// Writes `text` to `path` and commits it.
    public func commit(_ path: String, _ text: String) throws {
        try repo.write(path, text)
        try GitCLI.commitAll(in: repo.path)
    }

    /// Changes acme's web-1 memory (its balloon) from 2 GiB to `kib` behind StackLab's back, in its node's saved state.
    public func driftWeb1Memory(to kib: Int) throws {
        guard let web1 = try observed().first(where: { $0.domains.contains { $0.address?.name == "web-1" } }) else {
            throw WorldError(description: "no node holds web-1")
        }
        let host = SimulatedNode.hostFile(stateDirectory: state.path, node: web1.address)
        let xml = try String(contentsOfFile: host, encoding: .utf8)
        guard let start = xml.range(of: "<name>acme:web-1</name>"),
              let memory = xml.range(of: "<currentMemory unit='KiB'>2097152</currentMemory>", range: start.upperBound..<xml.endIndex) else {
            throw WorldError(description: "web-1's memory is not 2 GiB in \(host)")
        }
        try xml.replacingCharacters(in: memory, with: "<currentMemory unit='KiB'>\(kib)</currentMemory>").write(toFile: host, atomically: true, encoding: .utf8)
    }
}

extension Reconciler {
    /// A refresh-only plan of `regions` (every one when empty) through `drivers` (tests wrap them to count or fail),
    /// made by the one plan function, without recovering first (the tests' own applies never die).
    public func refreshPlan(_ regions: [String] = [], drivers: [Address: any NodeDriver]? = nil, targets: [String] = []) throws -> Plan {
        var request = PlanRequest(.refresh, regions: regions)
        request.drivers = drivers
        request.targets = targets
        request.recover = false
        return try plan(request).plan
    }
}
