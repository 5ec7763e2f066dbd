import Foundation
import Drivers
import Logging
import Manifests
import Metrics
import Planning
import Reconcile
import ServiceLifecycle

/// Reads what every running instance of the regions this reconciler holds has used — CPU time, disk and network
/// bytes, from libvirt's domain counters — every `usageInterval` seconds, for `/metrics` and the dashboard (like
/// Sina's Kanyun monitor), and meters each compute node's traffic counters into the ledger (`TrafficMeter`: only the
/// holder of a region meters it; on a shared database the ledger's write is fenced by the region's lease). Each node is read on its own connection, off the cooperative pool; a node that cannot be
/// read is counted and the others go on. Between nodes it waits while the reconcile loop is looking: counters are
/// worth less than a push planned without delay.
public struct UsageMonitor: Service {
    public let configuration: ServiceConfiguration
    public let state: ServiceState
    let logger: Logger

    public init(configuration: ServiceConfiguration, state: ServiceState, logger: Logger) {
        self.configuration = configuration
        self.state = state
        self.logger = logger
    }

    public func run() async throws {
        guard configuration.usageInterval > 0 else {
            // Off: it idles until the service stops (a service that returned early would stop the whole group).
            try? await gracefulShutdown()
            return
        }
        let stopping = StopFlag()
        await withGracefulShutdownHandler {
            while !stopping.isSet && !Task.isCancelled {
                await Self.yielding { readAll(stopping: stopping) }
                var waited = 0.0
                while waited < configuration.usageInterval && !stopping.isSet && !Task.isCancelled {
                    try? await Task.sleep(for: .milliseconds(100))
                    waited += 0.1
                }
            }
        } onGracefulShutdown: {
            stopping.set()
        }
    }

    /// Runs `work` on a thread of its own at a lower scheduling priority (nice 10), and waits for it: reading every
    /// node's counters (10,000 nodes at a time in a large cloud) yields the cores to the reconcile loop, so a push is
    /// not planned later because counters were being read.
    static func yielding(_ work: @escaping @Sendable () -> Void) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let thread = Thread {
                // On Linux, PRIO_PROCESS with 0 is the calling thread only (nice is per thread there).
                _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 10)
                work()
                continuation.resume()
            }
            thread.name = "stacklab-usage"
            thread.start()
        }
    }

    /// One round over the regions this reconciler holds (those it converged at least once).
    func readAll(stopping: StopFlag) {
        guard let (revision, loaded) = state.loadedModel else { return }
        let held = state.snapshot.filter { $0.holder == "this reconciler" && $0.appliedRevision != nil }.map(\.region)
        state.usage.keep(only: Set(held))
        let billing = Catalog.billing(loaded.model)
        for region in held {
            guard !stopping.isSet else { return }
            let start = DispatchTime.now().uptimeNanoseconds
            do {
                let store = try configuration.store.existing()
                var reconciler = Reconciler(model: loaded.model, revision: revision, stateDirectory: configuration.stateDirectory, state: store,
                                            environment: configuration.environment)
                reconciler.sshIdentity = configuration.sshIdentity
                let drivers = try reconciler.drivers(for: try reconciler.endpoints(for: [region]))
                let balancers = Set(loaded.model.nodes.filter { $0.region == region && $0.spec.has(.loadbalancer) }.map(\.address))
                let computes = Set(loaded.model.nodes.filter { $0.region == region && $0.spec.has(.compute) }.map(\.address))
                var nodes: [String: [InstanceUsage]] = [:]
                var health: [String: [ProxyServerHealth]] = [:]
                for (node, driver) in drivers {
                    // Reconciling comes first: a push's load and plan are not slowed by reading counters.
                    while state.loopBusy && !stopping.isSet { usleep(10_000) }
                    do {
                        nodes[node.name] = try driver.usage()
                        if computes.contains(node), let ledger = store {
                            do {
                                _ = try TrafficMeter.meter(driver, region: region, ledger: ledger, billing: billing, at: ledger.now)
                            } catch {
                                ServiceMetrics.usageReadFailures(region: region).increment()
                                logger.warning("cannot meter the traffic of \(node): \(error)")
                            }
                        }
                        // A load-balancer node's members, from its HAProxy's stats socket (none to ask: not listed).
                        if balancers.contains(node), let servers = try (driver as? any LibvirtBacked).flatMap({ try $0.libvirtNode.proxyHealth() }) {
                            health[node.name] = servers
                        }
                    } catch {
                        ServiceMetrics.usageReadFailures(region: region).increment()
                        logger.warning("cannot read the instance counters of \(node): \(error)")
                    }
                    driver.disconnect()
                }
                state.usage.record(region, nodes: nodes, balancers: health)
                if let ledger = store, reconciler.objectStores.hasReseller(region) {
                    do {
                        _ = try StorageMeter.meter(region: region, stores: reconciler.objectStores, tenants: loaded.model.tenants.map(\.name), ledger: ledger,
                                                   billing: billing, at: ledger.now)
                    } catch {
                        ServiceMetrics.usageReadFailures(region: region).increment()
                        logger.warning("cannot sample the object store of region \(region): \(error)")
                    }
                }
            } catch {
                ServiceMetrics.usageReadFailures(region: region).increment()
                logger.warning("cannot read the instance counters of region \(region): \(error)")
            }
            ServiceMetrics.usageReadDuration(region: region).recordSeconds(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
    }
}

/// The last counters read per region and node, rendered as Prometheus counters (they are the hypervisor's own
/// cumulative values, so they are exported as read rather than through swift-metrics, which only increments).
public final class UsageBook: @unchecked Sendable {
    private let lock = NSLock()
    private var regions: [String: (readAt: Double, nodes: [String: [InstanceUsage]], balancers: [String: [ProxyServerHealth]])] = [:]

    public init() {}

    /// Records what a round read of `region`: each node's instance counters, and each load-balancer node's members.
    public func record(_ region: String, nodes: [String: [InstanceUsage]], balancers: [String: [ProxyServerHealth]] = [:]) {
        lock.withLock { regions[region] = (Date().timeIntervalSince1970, nodes, balancers) }
    }

    /// Each load-balancer node's backend servers as its HAProxy last reported them, by region and node.
    public func balancerHealth(only: Set<String>? = nil) -> [String: [String: [ProxyServerHealth]]] {
        lock.withLock { regions.filter { only?.contains($0.key) ?? true }.mapValues(\.balancers).filter { !$0.value.isEmpty } }
    }

    /// Forgets regions this reconciler no longer holds (another one exports them now).
    public func keep(only held: Set<String>) {
        lock.withLock { regions = regions.filter { held.contains($0.key) } }
    }

    /// An instance's last counters, if it was read.
    public func usage(of instance: Address) -> InstanceUsage? {
        guard let region = instance.region else { return nil }
        return lock.withLock { regions[region]?.nodes.values.lazy.compactMap { $0.first { $0.instance == instance } }.first }
    }

    /// The Prometheus text exposition of every instance's counters.
    public func exposition() -> String {
        let snapshot = lock.withLock { regions }
        // Each instance's labels are written once, for every family.
        var series: [(labels: String, usage: InstanceUsage)] = []
        for (region, entry) in snapshot.sorted(by: { $0.key < $1.key }) {
            let regionLabel = "{region=\"\(Self.escape(region))\",node=\""
            for (node, usages) in entry.nodes.sorted(by: { $0.key < $1.key }) {
                let nodeLabel = regionLabel + Self.escape(node) + "\",tenant=\""
                for usage in usages {
                    series.append((nodeLabel + Self.escape(usage.instance.tenant ?? "") + "\",server=\"" + Self.escape(usage.instance.name) + "\"} ", usage))
                }
            }
        }
        var text = ""
        text.reserveCapacity(series.count * ServiceMetrics.instanceFamilies.count * 128)
        for family in ServiceMetrics.instanceFamilies {
            text += "# HELP \(family.name) \(family.help)\n# TYPE \(family.name) counter\n"
            for (labels, usage) in series {
                text += family.name
                text += labels
                text += family.value(usage)
                text += "\n"
            }
        }
        let up = ServiceMetrics.haproxyServerUp
        text += "# HELP \(up.name) \(up.help)\n# TYPE \(up.name) gauge\n"
        for (region, entry) in snapshot.sorted(by: { $0.key < $1.key }) {
            for (node, servers) in entry.balancers.sorted(by: { $0.key < $1.key }) {
                for server in servers {
                    let labels = [("region", region), ("node", node), ("backend", server.backend), ("server", server.server)]
                        .map { "\($0.0)=\"\(Self.escape($0.1))\"" }.joined(separator: ",")
                    text += "\(up.name){\(labels)} \(server.status.hasPrefix("UP") || server.status == "no check" ? 1 : 0)\n"
                }
            }
        }
        let stamp = ServiceMetrics.usageReadTimestamp
        text += "# HELP \(stamp.name) \(stamp.help)\n# TYPE \(stamp.name) gauge\n"
        for (region, entry) in snapshot.sorted(by: { $0.key < $1.key }) {
            text += "\(stamp.name){region=\"\(Self.escape(region))\"} \(entry.readAt)\n"
        }
        return text
    }

    /// A label value as the text format wants it: backslash, double quote and newline escaped.
    static func escape(_ value: String) -> String {
        guard value.utf8.contains(where: { $0 == UInt8(ascii: "\\") || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\n") }) else { return value }
        return value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n")
    }
}
