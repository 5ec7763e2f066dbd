import Foundation
import Manifests
import Parallel
import Planning
import Snapshots

/// The regions' object stores (Swift clusters, from each Region's `objectStore`), signed in once per process and
/// shared by the planner (which lists snapshots) and the applier (which takes, restores and deletes them). The key
/// comes from the environment variable the Region names, never from the manifests, and only from a variable the
/// operator lists as a credential: `STACKLAB_SWIFT_KEY`, and the names in `$STACKLAB_CREDENTIAL_VARIABLES` (exact
/// names, comma- or space-separated; never a prefix, so `STACKLAB_DATABASE`, which holds a password, is never one
/// unless listed). A manifest cannot name any other variable's value into a request.
public final class ObjectStores: @unchecked Sendable {  // `opened` behind `lock`
    private let settings: [String: RegionSpec.ObjectStore]
    private let credentials: [String: String]
    private let lock = NSLock()
    private var opened: [String: SnapshotStore] = [:]
    private var resellers: [String: SwiftClient] = [:]

    /// The variable every region's key comes from unless it names another.
    public static let defaultCredential = "STACKLAB_SWIFT_KEY"
    /// The variable the reseller admin's key comes from unless the region names another.
    public static let resellerCredential = "STACKLAB_SWIFT_RESELLER_KEY"
    /// The variable that lists the others an operator allows.
    public static let credentialList = "STACKLAB_CREDENTIAL_VARIABLES"

    /// The credential variables `environment` allows, with their values.
    public static func credentials(in environment: [String: String]) -> [String: String] {
        let listed = (environment[credentialList] ?? "").split(whereSeparator: { $0 == "," || $0 == " " }).map(String.init)
        var credentials: [String: String] = [:]
        for name in [defaultCredential, resellerCredential] + listed { if let value = environment[name] { credentials[name] = value } }
        return credentials
    }

    /// The object stores of `model`'s regions, with `credentials` (variable name → key) the only keys they may use.
    public init(model: DesiredModel, credentials: [String: String]) {
        var settings: [String: RegionSpec.ObjectStore] = [:]
        for region in model.regions { if let store = region.spec.objectStore?.value { settings[region.name] = store } }
        self.settings = settings
        self.credentials = credentials
    }


    /// Whether `region` has an object store.
    public func has(_ region: String) -> Bool { settings[region] != nil }

    /// The snapshot store of `region`, signed in on first use.
    public func store(_ region: String) throws -> SnapshotStore {
        if let store = lock.withLock({ opened[region] }) { return store }
        guard let setting = settings[region] else {
            throw ReconcileError(.invalid, "region '\(region)' has no objectStore: volume snapshots need one")
        }
        let store = SnapshotStore(client: try signIn(region, setting, user: setting.user.value, variable: setting.effectiveKeyEnv,
                                                     defaultVariable: Self.defaultCredential, what: "its objectStore"))
        lock.withLock { opened[region] = store }
        return store
    }

    /// Signs in to `region`'s proxy as `user` with the key in `variable`, which must be `defaultVariable` or one the
    /// operator lists as a credential.
    private func signIn(_ region: String, _ setting: RegionSpec.ObjectStore, user: String, variable: String, defaultVariable: String,
                        what: String) throws -> SwiftClient {
        guard variable == defaultVariable || credentials[variable] != nil else {
            throw ReconcileError(.invalid, "region '\(region)': \(what) takes its key from $\(variable), which is not a credential variable: the operator lists those in $\(Self.credentialList) (objectStore at \(setting.proxy.location))")
        }
        guard let key = credentials[variable], !key.isEmpty else {
            throw ReconcileError(.invalid, "region '\(region)': set $\(variable) to the key of Swift user \(user) (objectStore at \(setting.proxy.location))")
        }
        do {
            return try SwiftClient.authenticate(proxy: setting.proxy.value, user: user, key: key)
        } catch {
            throw ReconcileError(.objectStoreUnavailable, "region '\(region)': cannot sign in to its object store at \(setting.proxy.value) as \(user): \(error)")
        }
    }

    /// Whether StackLab may act on the tenants' accounts in `region` (its object store names a reseller).
    public func hasReseller(_ region: String) -> Bool { settings[region]?.reseller != nil }

    /// The reseller admin's client in `region` (on its own account; `forAccount` reaches a tenant's), signed in on first use.
    public func reseller(_ region: String) throws -> SwiftClient {
        if let client = lock.withLock({ resellers[region] }) { return client }
        guard let setting = settings[region], let reseller = setting.reseller?.value else {
            throw ReconcileError(.invalid, "region '\(region)' has no objectStore.reseller: tenants' containers need one")
        }
        let client = try signIn(region, setting, user: reseller.user.value, variable: reseller.effectiveKeyEnv, defaultVariable: Self.resellerCredential,
                                what: "its objectStore's reseller")
        lock.withLock { resellers[region] = client }
        return client
    }

    /// The accounts of `tenants` in `region`'s object store that exist, with their containers (each HEAD'ed for its
    /// ACLs, versioning and usage).
    public func observeAccounts(_ region: String, tenants: [String]) throws -> [ObservedAccount] {
        let client = try reseller(region)
        do {
            return try Self.perTenant(tenants) { tenant in
                let account = client.forAccount(TenantStorage.accountID(tenant))
                guard let info = try account.accountInfo() else { return nil }
                let containers = try account.containers().compactMap { try account.containerInfo($0) }.map {
                    ObservedContainer(name: $0.name, read: $0.read, write: $0.write, versioned: $0.versioned, objects: $0.objects, bytes: $0.bytesUsed)
                }
                return ObservedAccount(tenant: tenant, quotaBytes: info.quotaBytes, quotaObjects: info.quotaObjects, bytesUsed: info.bytesUsed,
                                       objects: info.objects, containers: containers)
            }
        } catch {
            throw ReconcileError(.objectStoreUnavailable, "region '\(region)': cannot list the tenants' accounts: \(error)")
        }
    }

    /// The bytes each of `tenants`' accounts holds in `region`'s object store now (a tenant without an account there is
    /// left out): what storage is billed by.
    public func accountBytes(_ region: String, tenants: [String]) throws -> [String: Int64] {
        let client = try reseller(region)
        do {
            let read = try Self.perTenant(tenants) { tenant in
                try client.forAccount(TenantStorage.accountID(tenant)).accountInfo().map { (tenant, $0.bytesUsed) }
            }
            return Dictionary(read, uniquingKeysWith: { first, _ in first })
        } catch {
            throw ReconcileError(.objectStoreUnavailable, "region '\(region)': cannot read the tenants' accounts: \(error)")
        }
    }

    /// `body`'s results for `tenants`, in their order (nil left out): at most 8 tenants' requests to the proxy at once, so
    /// a region of hundreds of tenants is read in a fraction of the time one after another would take.
    static func perTenant<T>(_ tenants: [String], _ body: @Sendable (String) throws -> T?) throws -> [T] {
        let slots = ResultSlots<Result<T?, any Error>>(count: tenants.count)
        let width = 8
        DispatchQueue.concurrentPerform(iterations: min(width, tenants.count)) { worker in
            for index in stride(from: worker, to: tenants.count, by: width) { slots[index] = Result { try body(tenants[index]) } }
        }
        return try slots.values.compactMap { try $0.get() }
    }

    /// The snapshots stored in `region`'s object store. Its volume keys are `tenant/name` (how `Applier` stores them);
    /// an object under any other key is not StackLab's and is left out.
    public func observe(_ region: String) throws -> [ObservedSnapshot] {
        do {
            return try store(region).list().compactMap {
                guard let volume = TenantKey(parsing: $0.volume) else { return nil }
                var snapshot = ObservedSnapshot(volume: volume, name: $0.name, capacity: $0.capacity, chunks: $0.chunks, created: $0.created)
                snapshot.uploaded = $0.uploaded
                return snapshot
            }
        } catch let failure as ReconcileError {
            throw failure
        } catch {
            throw ReconcileError(.objectStoreUnavailable, "region '\(region)': cannot list its snapshots: \(error)")
        }
    }
}
