import Foundation

/// Values kept with the stamp they were made at (a node's generation, a ring builder's stamp), by region: a value
/// is given back only under the same stamp. With a limit, only the `limit` regions used most recently are kept. A
/// long-running reconciler plans one region at a time, mostly the few its pushes touch; keeping the decoded state of
/// every region it ever planned (every one, after a resync) would hold a large cloud's observations and ring builders
/// for regions it may not plan again for an hour.
package final class RegionBoundedCache<Key: Hashable & Sendable, Value: Sendable>: @unchecked Sendable {
    private var entries: [String: [Key: (stamp: String, value: Value)]] = [:]
    private var lastUse: [String: UInt64] = [:]
    private var clock: UInt64 = 0
    private let limit: Int?
    private let lock = NSLock()

    /// An empty cache of at most `regions` regions (every region when nil).
    package init(regions: Int?) {
        limit = regions.map { max(1, $0) }
    }

    package func value(_ key: Key, region: String, stamp: String?) -> Value? {
        guard let stamp else { return nil }
        return lock.withLock {
            guard let kept = entries[region]?[key], kept.stamp == stamp else { return nil }
            use(region)
            return kept.value
        }
    }

    /// The values of `keys` (each with its region and stamp) in their order, nil where none is kept under its stamp:
    /// one lock for all of them.
    package func values(_ keys: [(key: Key, region: String, stamp: String?)]) -> [Value?] {
        lock.withLock {
            var used = Set<String>()
            let values = keys.map { entry -> Value? in
                guard let stamp = entry.stamp, let value = entries[entry.region]?[entry.key], value.stamp == stamp else { return nil }
                used.insert(entry.region)
                return value.value
            }
            for region in used.sorted() { use(region) }
            return values
        }
    }

    /// Keeps `value` under `stamp` (forgets the key's value when there is no stamp).
    package func keep(_ value: Value, key: Key, region: String, stamp: String?) {
        lock.withLock {
            guard let stamp else {
                entries[region]?[key] = nil
                return
            }
            use(region)
            entries[region, default: [:]][key] = (stamp, value)
        }
    }

    /// Forgets the value kept under `key`.
    package func forget(_ key: Key, region: String) {
        _ = take(key, region: region)
    }

    /// The value kept under `key` (whatever its stamp), no longer kept.
    package func take(_ key: Key, region: String) -> Value? {
        lock.withLock { entries[region]?.removeValue(forKey: key)?.value }
    }

    /// Regions and values kept.
    package var kept: (regions: Int, values: Int) {
        lock.withLock { (entries.count, entries.values.reduce(0) { $0 + $1.count }) }
    }

    /// Marks `region` used now; a region new to the cache that passes the limit forgets the one used least recently.
    private func use(_ region: String) {
        clock += 1
        guard lastUse.updateValue(clock, forKey: region) == nil, let limit, lastUse.count > limit,
              let oldest = lastUse.min(by: { $0.value < $1.value })?.key else { return }
        lastUse[oldest] = nil
        entries[oldest] = nil
    }
}
