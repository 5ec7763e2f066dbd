/// A builder recovered from a ring file, the way `swift-ring-builder … write_builder` does: when the builder was lost,
/// the installed ring is the truth, and rebuilding from scratch would move most replicas at once.
extension RingBuilder {
    /// A builder whose devices and assignments are `ring`'s. Every partition counts as moved at `hour`, so the adopted
    /// ring rests for `minPartHours` before anything moves again.
    public init(adopting ring: RingData, minPartHours: Int, hour: Int32) throws(Failure) {
        guard (1...32).contains(ring.partPower) else { throw Failure(description: "the ring file's part power \(ring.partPower) is out of range") }
        guard let first = ring.assignments.first, first.count == ring.partitionCount,
              ring.assignments.allSatisfy({ $0.count <= ring.partitionCount })
        else { throw Failure(description: "the ring file's assignment table does not match its part power \(ring.partPower)") }
        let whole = ring.assignments.filter { $0.count == ring.partitionCount }.count
        let fraction = ring.assignments.count > whole ? Double(ring.assignments.last!.count) / Double(ring.partitionCount) : 0
        try self.init(partPower: ring.partPower, replicas: Double(whole) + fraction, minPartHours: minPartHours)
        devices = ring.devices.map { device in
            device.map { BuilderDevice(region: $0.region, zone: $0.zone, ip: $0.ip, port: $0.port, device: $0.device, weight: $0.weight, meta: $0.meta) }
        }
        for index in devices.indices { devices[index]?.id = index }
        rows = try ring.assignments.map { row throws(Failure) in
            try row.map { id throws(Failure) in
                guard Int(id) < devices.count, devices[Int(id)] != nil else {
                    throw Failure(description: "the ring file assigns a partition to device \(id), which it does not list")
                }
                devices[Int(id)]!.parts += 1
                return Int32(id)
            }
        }
        lastMoved = Array(repeating: hour, count: partitionCount)
        version = ring.version ?? 0
    }
}
