import ArgumentParser
import Manifests
import Service

/// `stacklab show [KIND] [NAME]`: the resolved desired model.
struct Show: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the resolved desired model: every resource, or those of one kind and name.",
        discussion: """
            KIND is a manifest kind, case-insensitive (node, Instance, floatingip). NAME filters by resource name. \
            Text output lists each resource's address, where it is declared, and a one-line summary; \
            --format json prints {ok, diagnostics, resources}: the full typed specs with every default applied.

            With --live and --prometheus URL, each alarm shows its state per instance it watches (ok, pending, firing: \
            "2 of 2 OK") from Prometheus's alerts. With --live, a load balancer shows its listeners (the http name, each tcp listener's port) and, from HAProxy's \
            stats socket on each load-balancer node, every member's health; an instance shows its public domain \
            (name and port, as the load-balancer nodes serve it). With --live, each Volume is also observed: the node and libvirt volume holding it with its \
            capacity, and its snapshots in the region's object store (capacity, chunks, chunks that snapshot uploaded, \
            when taken), then the snapshots of volumes that left the manifests. The Swift key comes from the variable \
            the Region's objectStore names (default $STACKLAB_SWIFT_KEY). With --live, a container shows, per tenant \
            account (read as the objectStore's reseller, key $STACKLAB_SWIFT_RESELLER_KEY), the bytes stored and the \
            quota, then each container's objects, bytes, ACLs and versioning, and the containers that left the manifests.

            Examples:
              stacklab show
              stacklab show node
              stacklab show instance gerrit --format json
              stacklab show volume gerrit-data --live
              stacklab show container site --live
              stacklab show loadbalancer www --live
              stacklab show instance openstackblog --live
              stacklab show alarm blog-cpu --live --prometheus http://127.0.0.1:9090
            """)

    @OptionGroup var repository: RepositoryOptions

    @OptionGroup var reconcile: ReconcileOptions

    @Flag(help: "Volumes, load balancers, instances, alarms and containers: observe them (volumes: placement and snapshots; load balancers: listeners and member health; instances: public domain; alarms: their state in --prometheus; containers: objects, bytes, ACLs, the account's quota).")
    var live = false

    @Option(help: ArgumentHelp("Alarms with --live: the Prometheus that evaluates them (see stacklab monitoring config).", valueName: "url"))
    var prometheus: String?

    @Argument(help: "Only resources of this kind.")
    var kind: String?

    @Argument(help: "Only resources with this name.")
    var name: String?

    @OptionGroup var output: OutputOptions
    var format: OutputFormat { output.format }

    func validate() throws {
        if let kind, Kind(addressName: kind) == nil {
            throw ValidationError("unknown kind '\(kind)'; kinds are: \(Kind.manifestKinds.map(\.rawValue).joined(separator: ", "))")
        }
        if live, ![.volume, .loadBalancer, .instance, .alarm, .container].contains(kind.flatMap(Kind.init(addressName:))) {
            throw ValidationError("--live shows volumes, load balancers, instances, alarms and containers: write e.g. stacklab show loadbalancer [NAME] --live")
        }
        if live, kind.flatMap(Kind.init(addressName:)) == .alarm, prometheus == nil {
            throw ValidationError("alarms are evaluated by Prometheus: write stacklab show alarm [NAME] --live --prometheus http://127.0.0.1:9090")
        }
    }

    func run() throws {
        if live, let kind = kind.flatMap(Kind.init(addressName:)), kind != .volume {
            try showLive(kind)
            return
        }
        if live {
            let loaded = try repository.loadValid()
            let reconciler = try reconcile.reconciler(for: loaded, repo: repository.repo)
            let statuses: [VolumeStatus]
            do {
                statuses = try VolumeStatus.observe(loaded.model.volumes, reconciler: reconciler, regions: reconcile.region)
            } catch {
                throw failing(error)
            }
            let shown = statuses.filter { name == nil || $0.address.hasSuffix("/\(name!)") }
            guard !shown.isEmpty else { throw fail("no volume matches") }
            Terminal.standardOutput.write(format == .json ? try JSON.encode(["volumes": shown]) : shown.map { $0.text.split(separator: "\n").map { String($0).terminalSafe + "\n" }.joined() }.joined())
            return
        }
        let result = try repository.load()
        try Self.output(for: result, kind: kind.flatMap(Kind.init(addressName:)), name: name, format: format,
                        colors: Terminal.standardError.wantsColor).emit()
    }

    /// `show loadbalancer|instance --live`.
    private func showLive(_ kind: Kind) throws {
        let loaded = try repository.loadValid()
        let reconciler = try reconcile.reconciler(for: loaded, repo: repository.repo)
        func wanted<Spec>(_ resource: Resource<Spec>) -> Bool {
            (name == nil || resource.name == name) && (reconcile.region.isEmpty || reconcile.region.contains(resource.region ?? ""))
        }
        let text: String, json: String
        do {
            if kind == .alarm, let prometheus {
                let shown = try AlarmState.read(loaded.model.alarms.filter(wanted), prometheus: prometheus)
                guard !shown.isEmpty else { throw fail("no alarm matches") }
                (text, json) = (shown.map { state in
                    "\(state.alarm)  \(state.summary)\n" + state.instances.sorted { $0.key < $1.key }.map { "  \($0.key): \($0.value)\n" }.joined()
                }.joined(), try JSON.encode(["alarms": shown]))
            } else if kind == .container {
                let shown = try ContainerStatus.observe(loaded.model.containers, name: name, reconciler: reconciler, regions: reconcile.region)
                guard !shown.isEmpty else { throw fail("no container matches") }
                (text, json) = (shown.map(\.text).joined(), try JSON.encode(["accounts": shown]))
            } else if kind == .loadBalancer {
                let shown = try LoadBalancerStatus.observe(loaded.model.loadBalancers.filter(wanted), reconciler: reconciler)
                guard !shown.isEmpty else { throw fail("no load balancer matches") }
                (text, json) = (shown.map(\.text).joined(), try JSON.encode(["loadBalancers": shown]))
            } else {
                let shown = try PublicDomainStatus.observe(loaded.model.instances.filter(wanted), reconciler: reconciler)
                guard !shown.isEmpty else { throw fail("no instance matches") }
                (text, json) = (shown.map(\.text).joined(), try JSON.encode(["instances": shown]))
            }
        } catch {
            throw failing(error)
        }
        Terminal.standardOutput.write(format == .json ? json : text.split(separator: "\n").map { String($0).terminalSafe + "\n" }.joined())
    }

    /// The listing of `result`'s resources of `kind` and `name` (nil: all), with errors on stderr.
    static func output(for result: LoadResult, kind: Kind?, name: String?, format: OutputFormat, colors: Bool) throws -> CommandOutput {
        var output = CommandOutput()
        if result.hasErrors {
            let renderer = DiagnosticRenderer(files: result.files, colors: colors)
            output.stderr = renderer.render(result.diagnostics.filter { $0.severity == .error })
                + "the model below leaves out the documents with errors\n"
            output.exitCode = 1
        }
        let entries = ModelEntries(result.model).all.filter { entry in
            (kind == nil || entry.meta.kind == kind) && (name == nil || entry.meta.name.value == name)
        }
        // A lookup that finds nothing is a failure, in JSON as in the exit status.
        let nothing = entries.isEmpty && (kind != nil || name != nil)
        switch format {
        case .json:
            struct Listing: Encodable {
                var ok: Bool
                var error: String?
                var diagnostics: [DiagnosticRecord]
                var resources: [ModelEntry]
            }
            output.stdout = try JSON.encode(Listing(ok: !result.hasErrors && !nothing, error: nothing ? "no resource matches" : nil,
                                                    diagnostics: result.diagnostics.map { DiagnosticRecord($0, files: result.files) }
                                                        + (nothing ? [DiagnosticRecord(error: "no resource matches", hint: "'stacklab show' lists everything declared")] : []),
                                                    resources: entries), files: result.files)
        case .text:
            let width = entries.map { $0.meta.address.description.count }.max() ?? 0
            for entry in entries {
                let address = entry.meta.address.description
                output.stdout += address.terminalSafe + String(repeating: " ", count: width - address.count + 2)
                output.stdout += entry.summary.terminalSafe + "  (" + result.files.describe(entry.meta.location).terminalSafe + ")\n"
            }
        }
        if nothing {
            output.stderr += "no resource matches\n"
            output.exitCode = 1
        }
        return output
    }
}
