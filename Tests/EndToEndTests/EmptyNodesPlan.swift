import ManifestSources
import Manifests
import Planning
import Testing

/// The plan of one region of the repository at `repo` as if its nodes (those named) held nothing yet, each with 16
/// CPUs and 64 GiB: what the traffic tests load onto nodes they wire themselves. `adjust` may give a node what it has
/// installed (a load-balancer node's HAProxy file).
enum EmptyNodesPlan {
    static func plan(repo: String, region: String, nodes: [String], adjust: (inout [ObservedNode]) -> Void = { _ in }) throws -> Plan {
        let loaded = try Loader().load(DirectorySource(root: repo))
        try #require(!loaded.hasErrors, "\(DiagnosticRenderer(files: loaded.files).render(loaded.diagnostics))")
        var observed = nodes.map { name in
            var node = ObservedNode(address: Address(kind: .node, region: region, name: name), domains: [], networks: [])
            node.cpus = 16
            node.memoryKiB = 64 << 20
            return node
        }
        adjust(&observed)
        let plan = Planner.plan(model: loaded.model, observed: observed, regions: [region], hour: 1000)
        try #require(plan.errors.isEmpty, "\(plan.errors)")
        return plan
    }
}
