import Foundation
import Manifests

/// What an executor does for a change: one case per thing StackLab can do to a node or a region. Executors switch
/// over it exhaustively and throw for a case they do not handle; nothing succeeds by default. Cases with a large
/// payload (a domain, a node's DHCP or ruleset) are boxed: a plan of 139,000 changes is copied as it is combined
/// and memoised, and a boxed payload is one reference, not hundreds of bytes.
extension Change {
public enum Operation: Sendable, Codable, Hashable {
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
    /// Make the domain on this node from the one on `from` (an instance moving): stop the old domain, copy its
    /// volumes here (checked by sha256), then define `domain` (which records `from` as its origin). The old domain is
    /// deleted by a change that waits for this one.
    indirect case moveDomain(DesiredDomain, from: Address, domain: String)
    /// Create a tenant volume that no instance uses (an empty qcow2 of `bytes` in pool `pool`), or grow it.
    case ensureVolume(pool: String, name: String, bytes: UInt64)
    /// Delete a tenant volume (its instance no longer uses it, or it was copied to the instance's new node).
    case deleteVolume(pool: String, name: String)
    /// Create tenant volume `name` from a stored snapshot (`store`: the volume's `tenant/volume` key in the region's
    /// object store; its content, checked by sha256), then grow it to `bytes`. A half-written one is written again.
    case restoreVolume(pool: String, name: String, bytes: UInt64, store: String, snapshot: String)
    /// Snapshot tenant volume `name` into the region's object store as `store`/`snapshot`: an independent copy of it
    /// (a running guest is paused while the copy is made on its node), uploaded as content-addressed chunks; chunks of
    /// snapshot `after` (of the same volume) are known to be stored. Nothing is done if the snapshot exists already.
    case takeSnapshot(pool: String, name: String, store: String, snapshot: String, after: String?)
    /// Delete a stored snapshot, then the chunks no other snapshot references (region-wide: the object store).
    case deleteSnapshot(store: String, snapshot: String)
    /// Start or stop a domain.
    case setPower(domain: String, running: Bool)
    /// Stop a domain, delete its volumes (those of `instance`), undefine it.
    case deleteDomain(domain: String, instance: Address)
    /// Write the node's DHCP configuration (one dnsmasq configuration and hosts file per network; none removes them)
    /// and give the bridge its gateway address.
    indirect case configureDHCP(NodeDHCP)
    /// Load the node's nftables ruleset atomically (no rules: remove StackLab's table).
    indirect case loadFirewall(Ruleset)
    /// Install a Swift ring file (in the node's ring directory), checked against its sha256 afterwards.
    case installRing(file: String, content: Data, sha256: String)
    /// Save a ring's builder state in the state store (region-wide), before any node gets the new ring file; only
    /// if the saved state is still the one planned from (`previous`: its ring file checksum, nil when none).
    case saveRingBuilder(state: Data, checksum: String, previous: String?)

    /// A short name for logs and errors.
    public var name: String {
        switch self {
        case .ensureNetwork: "ensure network"
        case .deleteNetwork: "delete network"
        case .defineDomain: "define domain"
        case .replaceDomain: "replace domain"
        case .moveDomain: "move domain"
        case .ensureVolume: "ensure volume"
        case .deleteVolume: "delete volume"
        case .restoreVolume: "restore volume"
        case .takeSnapshot: "take snapshot"
        case .deleteSnapshot: "delete snapshot"
        case .setPower: "set power"
        case .deleteDomain: "delete domain"
        case .configureDHCP: "configure DHCP"
        case .loadFirewall: "load firewall"
        case .installRing: "install ring"
        case .saveRingBuilder: "save ring builder"
        }
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
        switch operation {
        case .deleteDomain:
            return .forget(node: node.description)
        case .defineDomain(let domain, _), .replaceDomain(let domain), .moveDomain(let domain, _, _):
            return .place(node: domain.node.description, ip: domain.interface.ip.description, specHash: domain.specHash)
        case .ensureNetwork, .deleteNetwork, .setPower, .installRing, .saveRingBuilder, .configureDHCP, .loadFirewall, .ensureVolume, .deleteVolume,
             .restoreVolume, .takeSnapshot, .deleteSnapshot:
            return nil
        }
    }
}
