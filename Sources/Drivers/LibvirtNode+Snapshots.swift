import Foundation
import Libvirt
import Manifests
import Planning
import SSH

/// Tenant volumes in and out of snapshots: an independent copy of a volume read out (a running guest is paused only
/// while its node copies the file), and a new volume written from a snapshot's bytes. A simulated node's volumes hold
/// no data: its copies are empty and restores write nothing.
extension LibvirtNode {
    public func exportVolume(pool poolName: String, name: String, chunkSize: Int, _ consume: (_ capacity: UInt64, _ read: () throws -> Data?) throws -> Void) throws(DriverError) {
        lock.lock()
        defer { lock.unlock() }
        let (volume, capacity) = try libvirt { () throws(LibvirtError) -> (StorageVolume, UInt64) in
            let pool = try self.pool(named: poolName)
            guard let volume = try pool.volumes().first(where: { $0.name == name }) else {
                throw LibvirtError(operation: "snapshot volume \(name)", code: -1, message: "the volume is not on \(address.name): plan again")
            }
            return (volume, try volume.capacity())
        }
        guard kind != .test else {
            try run({ try consume(capacity, $0) }, with: { nil })
            return
        }
        let copy = try independentCopy(of: volume, in: poolName)
        defer { try? libvirt { () throws(LibvirtError) in try copy.delete() } }
        let reader = try libvirt { () throws(LibvirtError) in try copy.reader() }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSize, alignment: 16)
        defer { buffer.deallocate() }
        try run({ try consume(capacity, $0) }, with: { () throws -> Data? in
            var filled = 0
            while filled < chunkSize {
                let count = try reader.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[filled...]))
                if count == 0 { break }
                filled += count
            }
            return filled == 0 ? nil : Data(buffer[..<filled])
        })
    }

    /// A copy of `volume` beside it (`<name>.snapshot`), made on the node with `cp` (sparse, reflinked where the file
    /// system can). A running domain that uses it is paused for the copy: pausing flushes QEMU's caches to the file, so
    /// the copy is what the guest had written at that instant.
    private func independentCopy(of volume: StorageVolume, in poolName: String) throws(DriverError) -> StorageVolume {
        let (path, users) = try libvirt { () throws(LibvirtError) -> (String, [Domain]) in
            let path = try volume.path()
            var users: [Domain] = []
            for domain in try connection.domains() where try domain.info().state == .running {
                // A disk names it by pool and volume (as StackLab defines them) or by its file.
                let xml = try domain.liveXML()
                if xml.contains("volume='\(XMLText.escape(volume.name))'") || xml.contains("'\(XMLText.escape(path))'") { users.append(domain) }
            }
            return (path, users)
        }
        try libvirt { () throws(LibvirtError) in for domain in users { try domain.suspend() } }
        let copied: Result<String, DriverError>
        do {
            copied = .success(try runOnHost("cp --sparse=always --reflink=auto -- \(Session.quote(path)) \(Session.quote(path + ".snapshot")) && echo ok"))
        } catch {
            copied = .failure(error)
        }
        try libvirt { () throws(LibvirtError) in for domain in users { try domain.resume() } }
        _ = try copied.get()
        return try libvirt { () throws(LibvirtError) -> StorageVolume in
            let pool = try self.pool(named: poolName)
            try pool.refresh()
            guard let copy = try pool.volumes().first(where: { $0.name == volume.name + ".snapshot" }) else {
                throw LibvirtError(operation: "snapshot volume \(volume.name)", code: -1, message: "its copy did not appear in pool \(poolName)")
            }
            return copy
        }
    }

    public func importVolume(pool poolName: String, name: String, bytes: UInt64, _ produce: (_ write: (Data) throws -> Void) throws -> Void) throws(DriverError) {
        lock.lock()
        defer { lock.unlock() }
        try changing(domain: "", volumePrefixes: [name]) { () throws(DriverError) in try restore(pool: poolName, name: name, bytes: bytes, produce) }
    }

    private func restore(pool poolName: String, name: String, bytes: UInt64, _ produce: (_ write: (Data) throws -> Void) throws -> Void) throws(DriverError) {
        let pool = try libvirt { () throws(LibvirtError) -> StoragePool in
            let pool = try self.pool(named: poolName)
            // A restore interrupted half-way is started over.
            if let stale = try pool.volumes().first(where: { $0.name == name }) { try stale.delete() }
            return pool
        }
        if kind == .test {
            try libvirt { () throws(LibvirtError) in _ = try pool.createVolume(xml: StorageXML.volume(name: name, bytes: bytes, backingFile: nil)) }
            return
        }
        let (target, writer) = try libvirt { () throws(LibvirtError) -> (StorageVolume, VolumeWriter) in
            let target = try pool.createVolume(xml: StorageXML.emptyVolume(name: name))
            return (target, try target.writer())
        }
        var written: UInt64 = 0
        try run(produce, with: { (data: Data) throws in
            try data.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) throws -> Void in try writer.write(bytes) }
            written += UInt64(data.count)
        })
        try libvirt { () throws(LibvirtError) in
            try writer.finish()
            guard written > 0 else {
                // An empty snapshot (taken on a simulated node): a fresh empty volume.
                try target.delete()
                _ = try pool.createVolume(xml: StorageXML.volume(name: name, bytes: bytes, backingFile: nil))
                return
            }
            try pool.refresh()  // the written file is probed again: a qcow2 volume is known as one
            guard let restored = try pool.volumes().first(where: { $0.name == name }) else {
                throw LibvirtError(operation: "restore volume \(name)", code: -1, message: "it did not appear in pool \(poolName)")
            }
            if try restored.capacity() < bytes { try grow(restored, in: pool, to: bytes, backing: nil) }
        }
    }

    /// Runs a consumer or producer handed in by the caller, its failures as the node's.
    private func run<Argument>(_ body: (Argument) throws -> Void, with argument: Argument) throws(DriverError) {
        do {
            try body(argument)
        } catch let error as DriverError {
            throw error
        } catch let error as LibvirtError {
            throw DriverError(node: address, message: error.description, isTransient: error.isTransient)
        } catch {
            throw DriverError(node: address, message: "\(error)", isTransient: true)
        }
    }
}
