import Foundation
import Manifests

/// What an executor does for a change. Node, transfer and region operations are separate types, so a node driver is
/// only ever handed work it can do (a mismatch does not compile): executors switch over them exhaustively, and
/// nothing succeeds by default. Cases with a payload of more than 40 bytes (a domain, a node's DHCP or ruleset, a ring
/// file, a snapshot's names) are boxed: every change is as large as the largest case held inline, and a long-running
/// planner keeps the plans of the regions waiting to be converged (100,000 changes and more), so an operation is
/// 56 bytes, not 104.
extension Change {
    public enum Operation: Sendable, Codable, Hashable {
        /// Work one node's driver does alone.
        case node(NodeOperation)
        /// Work on a node with another party: a second node (a move) or the region's object store (snapshots).
        case transfer(TransferOperation)
        /// Work on the region: the state store or the object store, no node.
        case region(RegionOperation)

        /// A short name for logs and errors.
        public var name: String {
            switch self {
            case .node(let operation): operation.name
            case .transfer(let operation): operation.name
            case .region(let operation): operation.name
            }
        }

        /// The domain the operation defines on its node (a create, an update, a replacement, a move), if any.
        public var definedDomain: DesiredDomain? {
            switch self {
            case .node(.defineDomain(let domain, _)), .node(.replaceDomain(let domain)), .transfer(.moveDomain(let domain, _, _)): domain
            default: nil
            }
        }

        // The planners' constructors, one per case of the three kinds.
        public static func ensureNetwork(network: String, bridge: String) -> Self { .node(.ensureNetwork(network: network, bridge: bridge)) }
        public static func deleteNetwork(network: String) -> Self { .node(.deleteNetwork(network: network)) }
        public static func defineDomain(_ domain: DesiredDomain, restart: Bool) -> Self { .node(.defineDomain(domain, restart: restart)) }
        public static func replaceDomain(_ domain: DesiredDomain) -> Self { .node(.replaceDomain(domain)) }
        public static func ensureVolume(pool: String, name: String, bytes: UInt64) -> Self { .node(.ensureVolume(pool: pool, name: name, bytes: bytes)) }
        public static func deleteVolume(pool: String, name: String) -> Self { .node(.deleteVolume(pool: pool, name: name)) }
        public static func setPower(domain: String, running: Bool) -> Self { .node(.setPower(domain: domain, running: running)) }
        public static func deleteDomain(domain: String, instance: Address) -> Self { .node(.deleteDomain(domain: domain, instance: instance)) }
        public static func configureDHCP(_ dhcp: NodeDHCP) -> Self { .node(.configureDHCP(dhcp)) }
        public static func loadFirewall(_ ruleset: Ruleset) -> Self { .node(.loadFirewall(ruleset)) }
        public static func loadProxy(_ config: ProxyConfig) -> Self { .node(.loadProxy(config)) }
        public static func installRing(file: String, content: Data, sha256: String) -> Self { .node(.installRing(file: file, content: content, sha256: sha256)) }
        public static func moveDomain(_ domain: DesiredDomain, from: Address, domain name: String) -> Self { .transfer(.moveDomain(domain, from: from, domain: name)) }
        public static func restoreVolume(pool: String, name: String, bytes: UInt64, store: TenantKey, snapshot: String) -> Self {
            .transfer(.restoreVolume(pool: pool, name: name, bytes: bytes, store: store, snapshot: snapshot))
        }
        public static func takeSnapshot(pool: String, name: String, store: TenantKey, snapshot: String, after: String?) -> Self {
            .transfer(.takeSnapshot(pool: pool, name: name, store: store, snapshot: snapshot, after: after))
        }
        public static func deleteSnapshot(store: TenantKey, snapshot: String) -> Self { .region(.deleteSnapshot(store: store, snapshot: snapshot)) }
        public static func saveRingBuilder(state: Data, checksum: String, previous: String?) -> Self {
            .region(.saveRingBuilder(state: KeptBytes(state), checksum: checksum, previous: previous))
        }
    }
}

/// What one node's driver does alone.
public enum NodeOperation: Sendable, Codable, Hashable {
    /// Define and start StackLab's libvirt network for a manifest network.
    case ensureNetwork(network: String, bridge: String)
    /// Stop and undefine StackLab's libvirt network.
    case deleteNetwork(network: String)
    /// Define (or redefine) an instance's domain, create or grow its volumes, and bring it to its power state.
    /// With `restart`, a running domain is shut down (gracefully, then forcibly) and started again so that the new
    /// definition takes effect.
    indirect case defineDomain(DesiredDomain, restart: Bool)
    /// Destroy the domain and its volumes, then define it anew from `domain` (an image change).
    indirect case replaceDomain(DesiredDomain)
    /// Create a tenant volume that no instance uses (an empty qcow2 of `bytes` in pool `pool`), or grow it.
    case ensureVolume(pool: String, name: String, bytes: UInt64)
    /// Delete a tenant volume (its instance no longer uses it, or it was copied to the instance's new node).
    case deleteVolume(pool: String, name: String)
    /// Start or stop a domain.
    case setPower(domain: String, running: Bool)
    /// Stop a domain, delete its volumes (those of `instance`), undefine it.
    indirect case deleteDomain(domain: String, instance: Address)
    /// Write the node's DHCP configuration (one dnsmasq configuration and hosts file per network; none removes them)
    /// and give the bridge its gateway address.
    indirect case configureDHCP(NodeDHCP)
    /// Load the node's nftables ruleset atomically (no rules: remove StackLab's table).
    indirect case loadFirewall(Ruleset)
    /// Check the node's HAProxy configuration with `haproxy -c`, install it atomically and have HAProxy use it without
    /// dropping established connections (started when it is not running); no services: stop HAProxy, remove the file.
    indirect case loadProxy(ProxyConfig)
    /// Install a Swift ring file (in the node's ring directory), checked against its sha256 afterwards.
    indirect case installRing(file: String, content: Data, sha256: String)

    /// A short name for logs and errors.
    public var name: String {
        switch self {
        case .ensureNetwork: "ensure network"
        case .deleteNetwork: "delete network"
        case .defineDomain: "define domain"
        case .replaceDomain: "replace domain"
        case .ensureVolume: "ensure volume"
        case .deleteVolume: "delete volume"
        case .setPower: "set power"
        case .deleteDomain: "delete domain"
        case .configureDHCP: "configure DHCP"
        case .loadFirewall: "load firewall"
        case .loadProxy: "load HAProxy"
        case .installRing: "install ring"
        }
    }
}

/// Work on a node with another party, which the applier brings together.
public enum TransferOperation: Sendable, Codable, Hashable {
    /// Make the domain on this node from the one on `from` (an instance moving): stop the old domain, copy its
    /// volumes here (checked by sha256), then define `domain` (which records `from` as its origin). The old domain is
    /// deleted by a change that waits for this one.
    indirect case moveDomain(DesiredDomain, from: Address, domain: String)
    /// Create tenant volume `name` from a stored snapshot (`store`: the volume, by tenant and name, in the region's
    /// object store; its content, checked by sha256), then grow it to `bytes`. A half-written one is written again.
    indirect case restoreVolume(pool: String, name: String, bytes: UInt64, store: TenantKey, snapshot: String)
    /// Snapshot tenant volume `name` into the region's object store as `store`/`snapshot`: an independent copy of it
    /// (a running guest is paused while the copy is made on its node), uploaded as content-addressed chunks; chunks of
    /// snapshot `after` (of the same volume) are known to be stored. Nothing is done if the snapshot exists already.
    indirect case takeSnapshot(pool: String, name: String, store: TenantKey, snapshot: String, after: String?)

    /// A short name for logs and errors.
    public var name: String {
        switch self {
        case .moveDomain: "move domain"
        case .restoreVolume: "restore volume"
        case .takeSnapshot: "take snapshot"
        }
    }
}

/// Work on the region, no node: the state store or the object store.
public enum RegionOperation: Sendable, Codable, Hashable {
    /// Delete a stored snapshot, then the chunks no other snapshot references.
    indirect case deleteSnapshot(store: TenantKey, snapshot: String)
    /// Save a ring's builder state in the state store, before any node gets the new ring file; only if the saved state
    /// is still the one planned from (`previous`: its ring file checksum, nil when none). A kept plan holds the state
    /// deflated (`KeptBytes`).
    indirect case saveRingBuilder(state: KeptBytes, checksum: String, previous: String?)
    /// Create a container in a tenant's account (the account too, when it has none yet), or set its ACLs and versioning.
    indirect case putContainer(account: String, container: String, read: String?, write: String?, versioned: Bool)
    /// Delete a container: found empty when planned (Swift refuses it if it holds objects by then), or, with
    /// `objects`, after deleting every object and old version in it (the plan said so: `--delete-container-objects`).
    case deleteContainer(account: String, container: String, objects: Bool)
    /// Set a tenant account's quotas of bytes and objects (creating the account first when needed).
    case setAccountQuota(account: String, bytes: Int64?, objects: Int64?)

    /// A short name for logs and errors.
    public var name: String {
        switch self {
        case .deleteSnapshot: "delete snapshot"
        case .saveRingBuilder: "save ring builder"
        case .putContainer: "put container"
        case .deleteContainer: "delete container"
        case .setAccountQuota: "set account quota"
        }
    }
}

extension Change {
    /// What a done change means for an instance's recorded placement (every state backend records it the same way).
    public enum PlacementEffect: Sendable, Equatable {
        /// The instance now runs on `node` with `ip` and this spec.
        case place(node: String, ip: String, specHash: String)
        /// The instance no longer runs on `node` (a move deletes on the old node after creating on the new one, so only
        /// a placement on that node is forgotten).
        case forget(node: String)
    }

    /// The placement effect of this change when done; nil for changes that are not about where an instance runs.
    public var placementEffect: PlacementEffect? {
        guard address.kind == .instance, let node = target.node else { return nil }
        if case .node(.deleteDomain) = operation { return .forget(node: node.description) }
        return operation.definedDomain.map { .place(node: $0.node.description, ip: $0.interface.ip.description, specHash: $0.specHash) }
    }
}
