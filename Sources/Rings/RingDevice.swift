/// One device (disk) of a Swift ring, as ring files record it.
public struct RingDevice: Sendable, Hashable {
    /// Index in the ring's device list.
    public var id: Int
    public var region: Int
    public var zone: Int
    public var ip: String
    public var port: Int
    public var replicationIP: String
    public var replicationPort: Int
    /// Device name on the server (`sdb`).
    public var device: String
    public var weight: Double
    public var meta: String

    /// Creates a device; replication address defaults to the service address.
    public init(id: Int, region: Int, zone: Int, ip: String, port: Int, device: String, weight: Double, meta: String = "",
                replicationIP: String? = nil, replicationPort: Int? = nil) {
        self.id = id
        self.region = region
        self.zone = zone
        self.ip = ip
        self.port = port
        self.device = device
        self.weight = weight
        self.meta = meta
        self.replicationIP = replicationIP ?? ip
        self.replicationPort = replicationPort ?? port
    }

    /// The device as the JSON object Swift writes (keys sorted, as `json.dumps(sort_keys=True)` does).
    var json: PythonJSON {
        .object([
            ("device", .string(device)), ("id", .int(id)), ("ip", .string(ip)), ("meta", .string(meta)), ("port", .int(port)),
            ("region", .int(region)), ("replication_ip", .string(replicationIP)), ("replication_port", .int(replicationPort)),
            ("weight", .double(weight)), ("zone", .int(zone)),
        ])
    }
}
