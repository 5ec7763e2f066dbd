import Crypto
import Foundation
import Manifests

/// A plan: typed changes per resource address, in dependency order, with what they were planned against.
/// `Codable` so that `plan --out` saves exactly what `apply` will do; sealed with a digest so that apply refuses a
/// plan that was edited.
public struct Plan: Sendable, Codable {
    /// The manifests revision it was made from (nil for a working tree).
    public var revision: String?
    /// A digest of every manifest document it was made from (`DesiredModel.digest`): apply refuses the plan when
    /// the manifests it loads differ.
    public var manifests: String = ""
    /// The regions it covers (regions that left the manifests but still have StackLab's objects included).
    public var regions: [String]
    /// Fingerprint of every observed node, by node address: apply refuses the plan if any changed.
    public var observed: [Address: String]
    /// Changes, in an order that respects dependencies (a change only depends on earlier ones).
    public var changes: ChangeList
    /// Objects found on nodes that StackLab does not own: reported, never touched.
    public var unmanaged: [Unmanaged]
    /// What could not be planned (an instance with no room, a ring that cannot be built, a name clash): a plan with
    /// errors is never applied.
    public var errors: [Problem]
    /// Changes held back and why (new instances of a tenant whose balance is below zero, in a region with
    /// `creditCheck`): reported, not applied; the rest of the plan applies.
    public var held: [Problem] = []
    /// Orphans kept because of `--keep-orphans`: StackLab's objects on nodes or regions that left the manifests.
    public var orphans: [Orphan] = []
    /// Swift rings rebalanced by this plan: what each rebalance does.
    public var rings: [RingRebalance] = []
    /// Resources found exactly as wanted (counted, not listed: a plan is the difference).
    public var unchanged = 0
    /// The seal: an HMAC-SHA256 of the plan's JSON without this field (`sealed(with:)`).
    public var digest: String?

    /// Whether applying it would do anything.
    public var isEmpty: Bool { changes.isEmpty }

    /// Addresses the plan moves: created anew elsewhere (reason `moved`), so their deletes remove no resource.
    public var moved: Set<Address> { Set(changes.filter { $0.action == .create && $0.reason == .moved }.map(\.address)) }

    /// Creates a plan.
    public init(revision: String?, regions: [String], observed: [Address: String], changes: [Change], unmanaged: [Unmanaged], errors: [Problem]) {
        self.revision = revision
        self.regions = regions
        self.observed = observed
        self.changes = ChangeList(changes)
        self.unmanaged = unmanaged
        self.errors = errors
    }

    /// An unmanaged object on a node.
    public struct Unmanaged: Sendable, Codable, Hashable {
        public var node: Address
        public var kind: String
        public var name: String

        /// Creates a report of an unmanaged object.
        public init(node: Address, kind: String, name: String) {
            self.node = node
            self.kind = kind
            self.name = name
        }
    }

    /// Something that could not be planned, by the resource it concerns.
    public struct Problem: Sendable, Codable, Hashable {
        public var address: Address
        public var message: String

        /// Creates a problem report.
        public init(address: Address, message: String) {
            self.address = address
            self.message = message
        }
    }

    /// One of StackLab's objects left on a node that is no longer in the manifests (kept by `--keep-orphans`).
    public struct Orphan: Sendable, Codable, Hashable {
        public var address: Address
        public var node: Address
    }

    /// The same plan with `digest` set to an HMAC-SHA256 of its content under `key` (kept in the state directory):
    /// someone who can edit a saved plan but not read the key cannot make an edited plan look intact.
    public func sealed(with key: SymmetricKey) -> Plan {
        var plan = self
        plan.digest = nil
        plan.digest = "hmac-sha256:" + Self.hmac(of: plan, key: key)
        return plan
    }

    /// Whether `digest` is the seal `key` gives the plan's content (an unsealed plan, or one sealed with another key,
    /// is not intact).
    public func isIntact(with key: SymmetricKey) -> Bool {
        guard let digest, digest.hasPrefix("hmac-sha256:") else { return false }
        var plan = self
        plan.digest = nil
        return Self.hmac(of: plan, key: key) == digest.dropFirst("hmac-sha256:".count)
    }

    private static func hmac(of plan: Plan, key: SymmetricKey) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = (try? encoder.encode(plan)) ?? Data()
        return HMAC<SHA256>.authenticationCode(for: data, using: key).hexDigits
    }
}
