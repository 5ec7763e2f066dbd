internal import CLibvirt
#if canImport(Glibc)
import Glibc
#endif

/// A volume's bytes read through a libvirt stream (`virStorageVolDownload`): the file as it lies in the pool (a qcow2
/// volume's qcow2 file, not the guest's view). Aborted unless read to its end.
///
/// `@unchecked Sendable`: one copy reads it on one thread; libvirt streams are safe to hand between threads.
public final class VolumeReader: @unchecked Sendable {
    private let stream: OpaquePointer
    private let volume: StorageVolume
    private var finished = false

    init(volume: StorageVolume) throws(LibvirtError) {
        guard let stream = virStreamNew(volume.pool.connection.handle, 0) else { throw LibvirtError.last("open a stream to read volume \(volume.name)") }
        guard virStorageVolDownload(volume.handle, stream, 0, 0, 0) == 0 else {
            let error = LibvirtError.last("read volume \(volume.name)")
            virStreamFree(stream)
            throw error
        }
        self.stream = stream
        self.volume = volume
    }

    deinit {
        if !finished { virStreamAbort(stream) }
        virStreamFree(stream)
    }

    /// Fills `buffer` from the front; 0 at the end of the volume (the stream is then finished).
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(LibvirtError) -> Int {
        guard let base = buffer.baseAddress, !finished else { return 0 }
        let count = virStreamRecv(stream, base.assumingMemoryBound(to: CChar.self), buffer.count)
        if count < 0 { throw LibvirtError.last("read volume \(volume.name)") }
        if count == 0 {
            guard virStreamFinish(stream) == 0 else { throw LibvirtError.last("finish reading volume \(volume.name)") }
            finished = true
        }
        return Int(count)
    }
}

extension StorageVolume {
    /// Opens a stream of its bytes.
    public func reader() throws(LibvirtError) -> VolumeReader {
        try VolumeReader(volume: self)
    }

    /// Replaces its bytes with what `fill` produces (`virStorageVolUpload`), until `fill` returns 0. A failure of `fill`
    /// aborts the stream and is rethrown as it was.
    public func upload(_ fill: (UnsafeMutableRawBufferPointer) throws -> Int) throws {
        guard let stream = virStreamNew(pool.connection.handle, 0) else { throw LibvirtError.last("open a stream to write volume \(name)") }
        defer { virStreamFree(stream) }
        guard virStorageVolUpload(handle, stream, 0, 0, 0) == 0 else { throw LibvirtError.last("write volume \(name)") }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { buffer.deallocate() }
        do {
            while true {
                let count = try fill(buffer)
                guard count > 0 else { break }
                var sent = 0
                while sent < count {
                    let wrote = virStreamSend(stream, buffer.baseAddress!.advanced(by: sent).assumingMemoryBound(to: CChar.self), count - sent)
                    guard wrote > 0 else { throw LibvirtError.last("write volume \(name)") }
                    sent += Int(wrote)
                }
            }
        } catch {
            virStreamAbort(stream)
            throw error
        }
        guard virStreamFinish(stream) == 0 else { throw LibvirtError.last("finish writing volume \(name)") }
    }

    /// The file (or device) that holds it on its node.
    public func path() throws(LibvirtError) -> String {
        guard let path = virStorageVolGetPath(handle) else { throw LibvirtError.last("read the path of volume \(name)") }
        defer { free(path) }
        return String(cString: path)
    }

    /// Bytes it takes on its node's disk (`virStorageVolGetInfo`'s allocation).
    public func allocation() throws(LibvirtError) -> UInt64 {
        var info = virStorageVolInfo()
        guard virStorageVolGetInfo(handle, &info) == 0 else { throw LibvirtError.last("read info of volume \(name)") }
        return UInt64(info.allocation)
    }
}
