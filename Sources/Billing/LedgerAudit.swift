import Manifests
import Planning

/// The invariants every metering interval of a ledger keeps, whatever rated it: checked by `bill --verify`.
public enum LedgerAudit {
    /// What the ledger's intervals break: a stop before its start; an owner that is not the tenant of the resource the
    /// interval meters (an interval moved to another tenant); two open intervals of one resource, or overlapping ones;
    /// and a gap between two intervals of an instance that no delete explains (the journal says it ran, unbilled).
    /// `deletedAt` are the times (run starts) at which each instance's address was deleted, from the journal.
    public static func problems(_ intervals: [MeterInterval], deletedAt: [Address: [Int64]]) -> [String] {
        var problems: [String] = []
        for interval in intervals {
            if let stop = interval.stop, stop < interval.start {
                problems.append("\(interval.address): an interval stops at \(Calendar.UTC.format(stop)), before it starts at \(Calendar.UTC.format(interval.start))")
            }
            if let owner = interval.address.tenant, owner != interval.tenant {
                problems.append("\(interval.address): an interval from \(Calendar.UTC.format(interval.start)) is billed to \(interval.tenant), not to its owner \(owner)")
            }
        }
        for (address, intervals) in Dictionary(grouping: intervals, by: \.address) {
            let sorted = intervals.sorted { $0.start < $1.start }
            let open = sorted.filter { $0.stop == nil }.count
            if open > 1 { problems.append("\(address) has \(open) open intervals") }
            for (a, b) in zip(sorted, sorted.dropFirst()) {
                let stop = a.stop ?? .max
                if stop > b.start {
                    problems.append("\(address): intervals from \(Calendar.UTC.format(a.start)) and \(Calendar.UTC.format(b.start)) overlap")
                } else if stop < b.start, address.kind == .instance,
                          !(deletedAt[address] ?? []).contains(where: { $0 >= a.start && $0 <= b.start }) {
                    problems.append("\(address): not billed from \(Calendar.UTC.format(stop)) to \(Calendar.UTC.format(b.start)), and the journal has no delete of it then")
                }
            }
        }
        return problems
    }
}
