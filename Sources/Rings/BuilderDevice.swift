/// A device in a ring builder: the ring file's fields plus what the builder tracks.
public struct BuilderDevice: Sendable, Hashable, Codable {
    public var id: Int
    public var region: Int
    public var zone: Int
    public var ip: String
    public var port: Int
    public var device: String
    public var weight: Double
    public var meta: String
    /// Partition-replicas assigned to it.
    public internal(set) var parts: Int = 0

    /// Creates a device (the builder assigns `id` when it is added).
    public init(region: Int, zone: Int, ip: String, port: Int, device: String, weight: Double, meta: String = "") {
        id = -1
        self.region = region
        self.zone = zone
        self.ip = ip
        self.port = port
        self.device = device
        self.weight = weight
        self.meta = meta
    }

    var ringDevice: RingDevice {
        RingDevice(id: id, region: region, zone: zone, ip: ip, port: port, device: device, weight: weight, meta: meta)
    }
}
