import Crypto
import Foundation
import Hosts
import Libvirt
import Manifests
import Planning
import SSH

/// Moving an instance between nodes: its volumes are streamed from the old node's libvirt to the new node's (never
/// through a file on the reconciler's machine), each checked by sha256 on the new node before anything is defined
/// there. The old domain is stopped first, so the copy is consistent and two copies never run with one MAC; it is
/// deleted only by a later change, once this one has succeeded.
extension LibvirtNode {
    /// A volume as the old node hands it over.
    struct OutgoingVolume {
        var pool: String
        var name: String
        var capacity: UInt64
        var reader: VolumeReader?
        /// The image it is backed by on the old node (its qcow2 header names that path).
        var backing: String?
    }

    /// Stops `domain` (StackLab's domain of `instance`) and opens a stream of each of its volumes. A simulated node's
    /// volumes hold no data: none are streamed. Returns whether the domain was running, to start it again if the
    /// move fails.
    func handOver(domain name: String, instance: Address, disks: [DesiredDomain.Disk]) throws(DriverError) -> (volumes: [OutgoingVolume], wasRunning: Bool) {
        lock.lock()
        defer { lock.unlock() }
        return try changing(domain: name, volumePrefixes: [DesiredDomain.volumePrefix(for: instance)] + disks.map(\.volume)) { () throws(DriverError) in
        try libvirt { () throws(LibvirtError) -> (volumes: [OutgoingVolume], wasRunning: Bool) in
            guard let domain = try connection.domain(named: name) else {
                throw LibvirtError(operation: "move domain \(name)", code: -1, message: "the domain is no longer on \(address.name): plan again")
            }
            try requireOwned(domain, by: instance)
            let wasRunning = try domain.info().state != .shutoff
            try stopGracefully(domain)
            // Its own disks (instance pool), and the tenant volumes attached to it (volume pool).
            let prefix = DesiredDomain.volumePrefix(for: instance) + "-"
            let attached = Set(disks.filter { $0.pool == DesiredDomain.volumePool }.map(\.volume))
            var outgoing: [OutgoingVolume] = []
            for pool in try connection.pools() where pool.name == StorageXML.instancePool || pool.name == DesiredDomain.volumePool {
                for volume in try pool.volumes() where pool.name == StorageXML.instancePool ? volume.name.hasPrefix(prefix) : attached.contains(volume.name) {
                    let disk = disks.first { $0.volume == volume.name }
                    outgoing.append(OutgoingVolume(pool: pool.name, name: volume.name, capacity: try volume.capacity(),
                                                   reader: kind == .test ? nil : try volume.reader(), backing: disk.flatMap(backingFile)))
                }
            }
            return (outgoing.sorted { $0.name < $1.name }, wasRunning)
        }
        }
    }

    /// Starts the old domain again after a move that failed (best effort: the move's own error is what is reported).
    func takeBack(domain name: String) {
        lock.lock()
        defer { lock.unlock() }
        _ = try? changing(domain: name, volumePrefixes: []) { () throws(DriverError) in
            try libvirt { () throws(LibvirtError) in
                if let domain = try connection.domain(named: name), try domain.info().state == .shutoff { try domain.start() }
            }
        }
    }

    public func receive(_ want: DesiredDomain, from driver: any NodeDriver, sourceDomain name: String) throws(DriverError) {
        guard let source = (driver as? any LibvirtBacked)?.libvirtNode else {
            throw DriverError(node: address, message: "cannot copy volumes from \(driver.address): it is not a libvirt node", isTransient: false)
        }
        let (volumes, wasRunning) = try source.handOver(domain: name, instance: want.address, disks: want.disks)
        do {
            try receive(want, volumes: volumes, from: source)
        } catch {
            if wasRunning { source.takeBack(domain: name) }
            throw error
        }
    }

    private func receive(_ want: DesiredDomain, volumes: [OutgoingVolume], from source: LibvirtNode) throws(DriverError) {
        lock.lock()
        defer { lock.unlock() }
        try changing(domain: want.name, volumePrefixes: [DesiredDomain.volumePrefix(for: want.address)] + want.disks.map(\.volume)) { () throws(DriverError) in
            for volume in volumes {
                guard let reader = volume.reader, kind != .test else { continue }  // a simulated node holds no data
                try copy(volume, from: reader, source: source, backing: want.disks.first { $0.volume == volume.name }.flatMap(backingFile))
            }
            try libvirt { () throws(LibvirtError) in try ensureDomain(want, restart: false) }
        }
    }

    /// Streams one volume in: an empty file first (a copy interrupted earlier is started over), then the old node's
    /// bytes, hashed as they pass; then this node hashes what it wrote and the two must match. A root disk's qcow2
    /// header names its image's path on the old node: it is pointed at the image here when the paths differ.
    private func copy(_ volume: OutgoingVolume, from reader: VolumeReader, source: LibvirtNode, backing: String?) throws(DriverError) {
        let pool = try libvirt { () throws(LibvirtError) -> StoragePool in try self.pool(named: volume.pool) }
        var hash = SHA256()
        var bytes: UInt64 = 0
        let path: String
        do {
            if let stale = try pool.volumes().first(where: { $0.name == volume.name }) { try stale.delete() }
            let target = try pool.createVolume(xml: StorageXML.emptyVolume(name: volume.name))
            try target.upload { buffer in
                let count = try reader.read(into: buffer)
                hash.update(bufferPointer: UnsafeRawBufferPointer(rebasing: buffer[..<count]))
                bytes += UInt64(count)
                return count
            }
            path = try target.path()
        } catch let error as LibvirtError {
            throw DriverError(node: address, message: "copy volume \(volume.name) from \(source.address.name): \(error.description)", isTransient: error.isTransient)
        } catch {
            throw DriverError(node: address, message: "copy volume \(volume.name) from \(source.address.name): \(error)", isTransient: false)
        }
        let expected = hash.finalize().hexDigits
        let sum = try runOnHost("sha256sum -- \(Session.quote(path))")
        guard sum.split(separator: " ").first.map(String.init) == expected else {
            throw DriverError(node: address, message: "volume \(volume.name) arrived damaged: sha256 here \(sum.prefix(64)), sent \(expected) (\(bytes) bytes); the old domain keeps its disks", isTransient: true)
        }
        if let backing, let old = volume.backing, old != backing {
            _ = try runOnHost("qemu-img rebase -u -F qcow2 -b \(Session.quote(backing)) \(Session.quote(path))")
        }
    }
}
