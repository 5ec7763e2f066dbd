import Foundation
import Manifests

/// What an instance learns about itself from its node's metadata service (169.254.169.254, EC2 and OpenStack
/// paths alike): written by StackLab as `/etc/stacklab/metadata/<fixed-ip>.json` on the node that hosts it, and
/// served to the client whose source address is that IP.
public struct InstanceMetadata: Sendable, Codable, Hashable {
    /// The instance's UUID (its domain's, `DesiredDomain.uuid(for:)`, unless it was made with another) and address.
    public var uuid: String {
        get { otherUUID?.value ?? DesiredDomain.uuid(for: address) }
        set { otherUUID = newValue == DesiredDomain.uuid(for: address) ? nil : Boxed(newValue) }
    }
    public var address: Address {
        didSet {
            guard address != oldValue else { return }
            let kept = otherUUID?.value ?? DesiredDomain.uuid(for: oldValue)
            otherUUID = kept == DesiredDomain.uuid(for: address) ? nil : Boxed(kept)
        }
    }
    public var hostname: String
    public var localIPv4: IPv4Address
    public var publicIPv4: IPv4Address?
    public var availabilityZone: String
    /// The keypair's name and OpenSSH public key, when the instance names one.
    public var keyName: String?
    public var publicKey: String?
    public var userData: String?
    /// Its public domain and port (`kzm07fi6p4.lb.sina.stacklab.org:11000`), when its region gives it one.
    public var publicDomain: String?
    /// The UUID when it is not the domain's (nil exactly when it is, so equal metadata hold equal fields). A plan kept for later holds the metadata of every instance waiting to be
    /// created: the domain's UUID is derived from the address when read, not held (36 bytes on the heap each).
    private var otherUUID: Boxed<String>?

    /// The metadata of the instance at `address`, whose UUID is its domain's.
    public init(address: Address, hostname: String, localIPv4: IPv4Address, publicIPv4: IPv4Address?, availabilityZone: String,
                keyName: String?, publicKey: String?, userData: String?) {
        self.address = address
        self.hostname = hostname
        self.localIPv4 = localIPv4
        self.publicIPv4 = publicIPv4
        self.availabilityZone = availabilityZone
        self.keyName = keyName
        self.publicKey = publicKey
        self.userData = userData
    }

    public init(uuid: String, address: Address, hostname: String, localIPv4: IPv4Address, publicIPv4: IPv4Address?, availabilityZone: String,
                keyName: String?, publicKey: String?, userData: String?) {
        self.init(address: address, hostname: hostname, localIPv4: localIPv4, publicIPv4: publicIPv4, availabilityZone: availabilityZone,
                  keyName: keyName, publicKey: publicKey, userData: userData)
        self.uuid = uuid
    }

    private enum CodingKeys: String, CodingKey {
        case uuid, address, hostname, localIPv4, publicIPv4, availabilityZone, keyName, publicKey, userData, publicDomain
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(uuid: try container.decode(String.self, forKey: .uuid), address: try container.decode(Address.self, forKey: .address),
                  hostname: try container.decode(String.self, forKey: .hostname), localIPv4: try container.decode(IPv4Address.self, forKey: .localIPv4),
                  publicIPv4: try container.decodeIfPresent(IPv4Address.self, forKey: .publicIPv4),
                  availabilityZone: try container.decode(String.self, forKey: .availabilityZone),
                  keyName: try container.decodeIfPresent(String.self, forKey: .keyName), publicKey: try container.decodeIfPresent(String.self, forKey: .publicKey),
                  userData: try container.decodeIfPresent(String.self, forKey: .userData))
        publicDomain = try container.decodeIfPresent(String.self, forKey: .publicDomain)
    }

    /// Written as its ten fields (the UUID whether held or derived).
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(uuid, forKey: .uuid)
        try container.encode(address, forKey: .address)
        try container.encode(hostname, forKey: .hostname)
        try container.encode(localIPv4, forKey: .localIPv4)
        try container.encodeIfPresent(publicIPv4, forKey: .publicIPv4)
        try container.encode(availabilityZone, forKey: .availabilityZone)
        try container.encodeIfPresent(keyName, forKey: .keyName)
        try container.encodeIfPresent(publicKey, forKey: .publicKey)
        try container.encodeIfPresent(userData, forKey: .userData)
        try container.encodeIfPresent(publicDomain, forKey: .publicDomain)
    }

    public static func == (lhs: InstanceMetadata, rhs: InstanceMetadata) -> Bool {
        lhs.address == rhs.address && lhs.otherUUID == rhs.otherUUID && lhs.hostname == rhs.hostname && lhs.localIPv4 == rhs.localIPv4
            && lhs.publicIPv4 == rhs.publicIPv4 && lhs.availabilityZone == rhs.availabilityZone && lhs.keyName == rhs.keyName
            && lhs.publicKey == rhs.publicKey && lhs.userData == rhs.userData && lhs.publicDomain == rhs.publicDomain
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(address)
        hasher.combine(otherUUID)
        hasher.combine(hostname)
        hasher.combine(localIPv4)
        hasher.combine(publicIPv4)
        hasher.combine(availabilityZone)
        hasher.combine(keyName)
        hasher.combine(publicKey)
        hasher.combine(userData)
        hasher.combine(publicDomain)
    }

    /// The answer to a GET of `path`: its body, or nil for "not found" (an absent item is a 404, as EC2's service does).
    public func answer(_ path: String) -> String? {
        let trimmed = path.split(separator: "?").first.map(String.init) ?? path
        switch trimmed {
        case "/", "/latest", "/latest/": return "meta-data/\nuser-data\n"
        case "/latest/meta-data", "/latest/meta-data/":
            var items = ["ami-launch-index", "hostname", "instance-id", "local-hostname", "local-ipv4", "placement/"]
            if publicIPv4 != nil { items.append("public-ipv4") }
            if publicDomain != nil { items += ["public-hostname", "public-port"] }
            if publicKey != nil { items.append("public-keys/") }
            return items.sorted().joined(separator: "\n") + "\n"
        case "/latest/meta-data/ami-launch-index": return "0"
        case "/latest/meta-data/instance-id": return uuid
        case "/latest/meta-data/hostname", "/latest/meta-data/local-hostname": return hostname
        case "/latest/meta-data/local-ipv4": return localIPv4.description
        case "/latest/meta-data/public-ipv4": return publicIPv4?.description
        case "/latest/meta-data/public-hostname": return publicDomain.map { String($0.prefix { $0 != ":" }) }
        case "/latest/meta-data/public-port": return publicDomain.flatMap { $0.split(separator: ":").last.map(String.init) }
        case "/latest/meta-data/placement", "/latest/meta-data/placement/": return "availability-zone\n"
        case "/latest/meta-data/placement/availability-zone": return availabilityZone
        case "/latest/meta-data/public-keys", "/latest/meta-data/public-keys/": return keyName.map { "0=\($0)\n" }
        case "/latest/meta-data/public-keys/0", "/latest/meta-data/public-keys/0/": return publicKey == nil ? nil : "openssh-key\n"
        case "/latest/meta-data/public-keys/0/openssh-key": return publicKey.map { $0 + "\n" }
        case "/latest/user-data", "/openstack/latest/user_data": return userData
        case "/openstack", "/openstack/", "/openstack/latest", "/openstack/latest/": return "meta_data.json\nuser_data\n"
        case "/openstack/latest/meta_data.json": return openStackJSON
        default: return nil
        }
    }

    /// OpenStack's `meta_data.json`.
    var openStackJSON: String {
        struct Document: Encodable {
            var uuid: String
            var name: String
            var hostname: String
            var availability_zone: String
            var project_id: String
            var public_keys: [String: String]
        }
        let document = Document(uuid: uuid, name: address.name, hostname: hostname, availability_zone: availabilityZone,
                                project_id: address.tenant ?? "", public_keys: keyName.flatMap { name in publicKey.map { [name: $0] } } ?? [:])
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? String(decoding: encoder.encode(document), as: UTF8.self)) ?? "{}"
    }
}
