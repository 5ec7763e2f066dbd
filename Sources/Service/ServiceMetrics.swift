import Drivers
import Metrics

/// Every metric the service exports, declared in this one file: its name, labels and meaning. Code records through
/// these functions, never by spelling a metric's name where it is used. Metrics that count and time go through
/// swift-metrics (swift-prometheus renders them); the per-instance counters, which come and go with instances and
/// are the hypervisor's own cumulative values, are rendered by `instanceExposition` from the families below.
enum ServiceMetrics {
    /// Seconds one region's reconcile took (load to verify), by region.
    static func reconcileDuration(region: String) -> Timer {
        Timer(label: "stacklab_reconcile_duration_seconds", dimensions: [("region", region)])
    }

    /// Reconcile runs by region and result: `converged`, `failed` (retryable: backing off) or `stopped` (terminal:
    /// not tried again at this revision).
    static func reconcileRuns(region: String, result: String) -> Counter {
        Counter(label: "stacklab_reconcile_runs_total", dimensions: [("region", region), ("result", result)])
    }

    /// Drift the last run of a region healed (see `ServiceState.Region.drift`): changes behind StackLab's back, never what a
    /// new revision asks for.
    static func drift(region: String) -> Gauge {
        Gauge(label: "stacklab_drift", dimensions: [("region", region)])
    }

    /// Changes applied, by action.
    static func changes(action: String) -> Counter {
        Counter(label: "stacklab_changes_total", dimensions: [("action", action)])
    }

    /// Fetches of the followed remote that failed (the last fetched revision is still converged).
    static func fetchFailures() -> Counter {
        Counter(label: "stacklab_fetch_failures_total")
    }

    /// Webhook deliveries by result: `accepted`, `unsigned`, `bad-signature`, `replayed`.
    static func webhookDeliveries(result: String) -> Counter {
        Counter(label: "stacklab_webhook_deliveries_total", dimensions: [("result", result)])
    }

    /// Reads of a region's instance counters that failed (a node, or the whole region).
    static func usageReadFailures(region: String) -> Counter {
        Counter(label: "stacklab_usage_read_failures_total", dimensions: [("region", region)])
    }

    /// Seconds one read of a region's instance counters took.
    static func usageReadDuration(region: String) -> Timer {
        Timer(label: "stacklab_usage_read_duration_seconds", dimensions: [("region", region)])
    }

    /// The per-instance counter families: name, help, and the value of one instance's reading. Labels: `region`,
    /// `node`, `tenant`, `instance`.
    static let instanceFamilies: [(name: String, help: String, value: @Sendable (InstanceUsage) -> String)] = [
        ("stacklab_instance_cpu_seconds_total", "CPU time used by the instance's virtual CPUs since it started (libvirt).", { "\($0.cpuSeconds)" }),
        ("stacklab_instance_disk_read_bytes_total", "Bytes read by the instance's disks since it started (libvirt).", { "\($0.diskReadBytes)" }),
        ("stacklab_instance_disk_written_bytes_total", "Bytes written by the instance's disks since it started (libvirt).", { "\($0.diskWriteBytes)" }),
        ("stacklab_instance_network_received_bytes_total", "Bytes received by the instance's interfaces since it started (libvirt).", { "\($0.networkReceivedBytes)" }),
        ("stacklab_instance_network_sent_bytes_total", "Bytes sent by the instance's interfaces since it started (libvirt).", { "\($0.networkSentBytes)" }),
    ]

    /// When each region's instance counters were last read (a gauge, label `region`).
    static let haproxyServerUp = (name: "stacklab_haproxy_server_up",
                                  help: "Whether a load-balancer node's HAProxy has a backend server up (1; a public domain's unchecked server counts as up) or not (0), from its stats socket.")
    static let usageReadTimestamp = (name: "stacklab_instance_usage_read_timestamp_seconds", help: "When each region's instance counters were last read.")
}
