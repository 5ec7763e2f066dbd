import Drivers
import Manifests
import Planning
import State

/// Bandwidth metering: a node's traffic counters into the ledger, exactly once whatever is interrupted where.
///
/// A round reads the node's counters (one command), records them in the ledger in one transaction (each counter's
/// bytes past its mark for the epoch; see `TrafficLedger`), and only then deletes the counters no rule counts into any
/// more (an instance that left the node). A crash before the ledger commits loses nothing: the counters still hold the
/// bytes, and the next reading records them. A crash after it doubles nothing: the next reading of the same epoch finds
/// the mark where this one left it.
public enum TrafficMeter {
    public struct Outcome: Sendable, Equatable {
        /// Bytes the ledger took from this reading.
        public var added: Int64
        /// Counters read one last time and deleted.
        public var deleted: [String]
    }

    /// Meters `driver`'s node, of `region`, at `time`; nil when there is nothing StackLab can meter there (a simulated
    /// node, or a table without StackLab's epoch: not loaded by StackLab). `billing` says each tenant's price list.
    public static func meter(_ driver: any NodeDriver, region: String, ledger: any TrafficLedger, billing: [String: (priceList: String, prepaid: Bool)],
                             at time: Int64) throws -> Outcome? {
        guard let reading = try driver.trafficReading(), let epoch = reading.epoch else { return nil }
        let samples = reading.counters.compactMap { item -> TrafficSample? in
            guard let tenant = item.counter.instance.tenant else { return nil }
            return TrafficSample(counter: item.counter, tenant: tenant, priceList: billing[tenant]?.priceList ?? "", bytes: item.bytes)
        }
        let added = try ledger.recordTraffic(region: region, node: driver.address, epoch: epoch, samples: samples, at: time)
        let stale = reading.stale.sorted()
        if !stale.isEmpty { try driver.deleteTrafficCounters(stale) }
        return Outcome(added: added, deleted: stale)
    }
}
