import Foundation
import Manifests
import Planning
import Snapshots

/// The regions' object stores (Swift clusters, from each Region's `objectStore`), signed in once per process and
/// shared by the planner (which lists snapshots) and the applier (which takes, restores and deletes them). The key
/// comes from the environment variable the Region names, never from the manifests.
public final class ObjectStores: @unchecked Sendable {
    private let settings: [String: RegionSpec.ObjectStore]
    private let environment: [String: String]
    private let lock = NSLock()
    private var opened: [String: SnapshotStore] = [:]

    /// The object stores of `model`'s regions; keys are read from `environment`.
    public init(model: DesiredModel, environment: [String: String] = ProcessInfo.processInfo.environment) {
        var settings: [String: RegionSpec.ObjectStore] = [:]
        for region in model.regions { if let store = region.spec.objectStore?.value { settings[region.name] = store } }
        self.settings = settings
        self.environment = environment
    }

    /// Whether `region` has an object store.
    public func has(_ region: String) -> Bool { settings[region] != nil }

    /// The snapshot store of `region`, signed in on first use.
    public func store(_ region: String) throws -> SnapshotStore {
        if let store = lock.withLock({ opened[region] }) { return store }
        guard let setting = settings[region] else {
            throw Reconciler.Failure(description: "region '\(region)' has no objectStore: volume snapshots need one")
        }
        guard let key = environment[setting.effectiveKeyEnv], !key.isEmpty else {
            throw Reconciler.Failure(description: "region '\(region)': set $\(setting.effectiveKeyEnv) to the key of Swift user \(setting.user.value) (objectStore at \(setting.proxy.location))")
        }
        let store: SnapshotStore
        do {
            store = SnapshotStore(client: try SwiftClient.authenticate(proxy: setting.proxy.value, user: setting.user.value, key: key))
        } catch {
            throw Reconciler.Failure(description: "region '\(region)': cannot sign in to its object store at \(setting.proxy.value): \(error)")
        }
        lock.withLock { opened[region] = store }
        return store
    }

    /// The snapshots stored in `region`'s object store.
    public func observe(_ region: String) throws -> [ObservedSnapshot] {
        do {
            return try store(region).list().map {
                var snapshot = ObservedSnapshot(volume: $0.volume, name: $0.name, capacity: $0.capacity, chunks: $0.chunks, created: $0.created)
                snapshot.uploaded = $0.uploaded
                return snapshot
            }
        } catch let failure as Reconciler.Failure {
            throw failure
        } catch {
            throw Reconciler.Failure(description: "region '\(region)': cannot list its snapshots: \(error)")
        }
    }
}
