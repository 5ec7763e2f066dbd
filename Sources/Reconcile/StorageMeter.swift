import Billing
import Planning
import State

/// Object-storage metering: the bytes each tenant's account holds in a region's object store, sampled into the ledger
/// once per hour.
///
/// A round reads every declared tenant's account (`X-Account-Bytes-Used`, as the reseller admin) and records the
/// current hour's sample for each. The ledger keeps the first sample of an hour and ignores the rest, so a round
/// repeated (every usage interval, after a crash, or by a second service sharing the database) bills each hour once;
/// a round that never happens in an hour leaves that hour unbilled, never doubled. A container that left the
/// manifests but still holds objects is in its account's bytes: it keeps billing until it is emptied.
public enum StorageMeter {
    /// Meters `region` at `time`: how many accounts were read and how many hours were new.
    public static func meter(region: String, stores: ObjectStores, tenants: [String], ledger: any StorageLedger,
                             billing: [String: (priceList: String, prepaid: Bool)], at time: Int64) throws -> (accounts: Int, added: Int) {
        let hour = time - ((time % 3_600) + 3_600) % 3_600
        let bytes = try stores.accountBytes(region, tenants: tenants)
        let samples = bytes.sorted { $0.key < $1.key }.map { tenant, bytes in
            StorageUsage(tenant: tenant, region: region, priceList: billing[tenant]?.priceList ?? "", hour: hour, bytes: bytes)
        }
        return (samples.count, try ledger.recordStorage(region: region, samples: samples))
    }
}
