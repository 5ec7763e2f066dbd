import Foundation
import Manifests

/// What a node looked like when it was observed.
public struct ObservedNode: Sendable, Codable, Hashable {
    /// The node's address.
    public var address: Address
    /// The domains on it.
    public var domains: [ObservedDomain]
    /// StackLab's libvirt networks on it (`stacklab-<network>`), by manifest network name.
    public var networks: [String]
    /// The host's CPU threads and memory as the hypervisor reports them.
    public var cpus = 0
    public var memoryKiB: UInt64 = 0
    /// Volumes in StackLab's instance pool, by name: capacity in bytes.
    public var volumes: [String: UInt64] = [:]
    /// Bytes each volume takes on the node's disk (what moving it copies); nil for a simulated node, whose volumes hold
    /// no data.
    public var allocations: [String: UInt64]?
    /// Installed Swift ring files (`object.ring.gz`) → sha256.
    public var rings: [String: String] = [:]
    /// StackLab's DHCP configuration on the node (its gateway and host entries per network), nil when it has none.
    public var dhcp: NodeDHCP?
    /// StackLab's installed ruleset, nil when it has none.
    public var firewall: Ruleset?
    /// Why the live ruleset is not the one installed (changed by hand, or gone), nil when it is.
    public var firewallDrift: String?
    /// StackLab's installed HAProxy configuration (a load-balancer node), nil when it has none.
    public var proxy: String?
    /// Why HAProxy is not running the installed configuration (the file edited by hand, the process gone), nil when it is.
    public var proxyDrift: String?

    /// Creates an observation.
    public init(address: Address, domains: [ObservedDomain], networks: [String]) {
        self.address = address
        self.domains = domains
        self.networks = networks
    }

    /// A digest of the whole observation (its sorted JSON): apply refuses a plan made against another state. Derived
    /// from the encoded value, so a field added to the observation can never be left out. Remembered for observations
    /// seen before (equal values): a plan and its verification fingerprint the same unchanged nodes again and again.
    public var fingerprint: String {
        if let known = FingerprintMemo.shared.fingerprint(of: self) { return known }
        let value = encodedFingerprint
        FingerprintMemo.shared.keep(value, for: self)
        return value
    }

    private var encodedFingerprint: String {
        guard let data = try? Self.fingerprintEncoder.encode(self) else { return "unencodable" }
        return Self.fingerprint(ofEncoded: data)
    }

    /// The encoding a fingerprint digests: JSON with sorted keys.
    public static var fingerprintEncoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }

    /// The fingerprint of an observation whose `fingerprintEncoder` encoding is `data`.
    public static func fingerprint(ofEncoded data: Data) -> String {
        var hasher = StableHasher()
        data.withUnsafeBytes { hasher.combine(bytes: $0.bindMemory(to: UInt8.self)[...]) }
        return hasher.hex
    }

    /// Remembers `fingerprint` as this observation's (computed from its encoding when it was saved), so that it is not
    /// encoded again.
    public func remember(fingerprint: String) {
        FingerprintMemo.shared.keep(fingerprint, for: self)
    }
}

/// One libvirt domain as observed.
public struct ObservedDomain: Sendable, Codable, Hashable {
    /// Power state, simplified.
    public enum State: String, Sendable, Codable {
        case running, paused, shutoff, crashed, other
    }

    /// libvirt name.
    public var name: String
    /// The owning resource, from StackLab's metadata; nil for an unmanaged domain.
    public var address: Address?
    /// The spec hash recorded when StackLab defined it, and the hash of the part of it that cannot change live.
    public var specHash: String?
    public var shapeHash: String?
    /// The fixed IP, the MAC and the port (tap device name) recorded in its metadata; no port for a domain defined
    /// before ports were named.
    public var ip: IPv4Address?
    public var mac: String?
    public var port: String?
    /// Power state.
    public var state: State
    /// Virtual CPUs: plugged in now (running), or at the next start (shut off).
    public var vcpus: Int
    /// Memory in KiB: the balloon's target now (running), or at the next start (shut off).
    public var memoryKiB: UInt64
    /// How far it can grow without a restart: maximum vCPUs and memory (KiB).
    public var maxVcpus: Int
    public var maxMemoryKiB: UInt64
    /// Flavor and image recorded in its metadata.
    public var flavor: String?
    public var image: String?
    /// The node it was copied from by a move (its metadata), nil otherwise.
    public var origin: Address?

    /// Creates an observation.
    public init(name: String, address: Address?, specHash: String?, ip: IPv4Address?, state: State, vcpus: Int, memoryKiB: UInt64,
                maxVcpus: Int? = nil, maxMemoryKiB: UInt64? = nil, shapeHash: String? = nil, mac: String? = nil, flavor: String? = nil, image: String? = nil) {
        self.mac = mac
        self.shapeHash = shapeHash
        self.maxVcpus = maxVcpus ?? vcpus
        self.maxMemoryKiB = maxMemoryKiB ?? memoryKiB
        self.flavor = flavor
        self.image = image
        self.name = name
        self.address = address
        self.specHash = specHash
        self.ip = ip
        self.state = state
        self.vcpus = vcpus
        self.memoryKiB = memoryKiB
    }
}

/// A snapshot in a region's object store, as its listing shows it.
public struct ObservedSnapshot: Sendable, Codable, Hashable {
    /// The volume (by tenant and name) and the snapshot's name.
    public var volume: TenantKey
    public var name: String
    /// The volume's capacity when it was taken, the chunks it has, and how many of them it uploaded (the others were
    /// stored by earlier snapshots).
    public var capacity: UInt64
    public var chunks: Int
    public var uploaded = 0
    /// When it was taken (seconds since the epoch).
    public var created: Int64

    /// Creates an observation.
    public init(volume: TenantKey, name: String, capacity: UInt64, chunks: Int, created: Int64) {
        self.volume = volume
        self.name = name
        self.capacity = capacity
        self.chunks = chunks
        self.created = created
    }
}

/// Fingerprints of observations seen before, by value (an equal observation has the same fingerprint): looking one up
/// hashes the value, which costs far less than encoding it. Keyed by two 64-bit hashes of the value, not the value
/// itself: a plan over 10,000 nodes must not hold every observation it fingerprinted (a collision of both among the
/// 20,000 kept is about 1 in 10^29). Bounded: emptied when it holds more observations than a large cloud has nodes.
final class FingerprintMemo: @unchecked Sendable {
    static let shared = FingerprintMemo()
    private let lock = NSLock()
    private var known: [Key: String] = [:]
    private let capacity = 20_000

    private struct Key: Hashable {
        var first: Int
        var second: Int

        init(_ node: ObservedNode) {
            var hasher = Hasher()
            node.hash(into: &hasher)
            first = hasher.finalize()
            var salted = Hasher()
            salted.combine(0x5354_4143_4B4C_4142)
            node.hash(into: &salted)
            second = salted.finalize()
        }
    }

    func fingerprint(of node: ObservedNode) -> String? {
        let key = Key(node)
        return lock.withLock { known[key] }
    }

    func keep(_ fingerprint: String, for node: ObservedNode) {
        let key = Key(node)
        lock.withLock {
            if known.count >= capacity { known.removeAll(keepingCapacity: true) }
            known[key] = fingerprint
        }
    }
}
