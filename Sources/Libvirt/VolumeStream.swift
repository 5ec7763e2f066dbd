internal import CLibvirt
#if canImport(Glibc)
import Glibc
#endif

/// A libvirt stream bound to one volume: freed when released, aborted first unless it was finished.
final class VolumeStreamHandle: @unchecked Sendable {
    let stream: OpaquePointer
    let volume: StorageVolume
    private(set) var finished = false

    /// Opens a stream and binds it with `start` (download or upload), `what` naming the action in errors.
    init(volume: StorageVolume, what: String, start: (OpaquePointer, OpaquePointer) -> Int32) throws(LibvirtError) {
        guard let stream = virStreamNew(volume.pool.connection.handle, 0) else { throw LibvirtError.last("open a stream to \(what) volume \(volume.name)") }
        guard start(volume.handle, stream) == 0 else {
            let error = LibvirtError.last("\(what) volume \(volume.name)")
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

    /// Completes the transfer.
    func finish(_ what: String) throws(LibvirtError) {
        guard !finished else { return }
        guard virStreamFinish(stream) == 0 else { throw LibvirtError.last("finish \(what) volume \(volume.name)") }
        finished = true
    }
}

/// A volume's bytes read through a libvirt stream (`virStorageVolDownload`): the file as it lies in the pool (a qcow2
/// volume's qcow2 file, not the guest's view). Aborted unless read to its end.
///
/// `@unchecked Sendable`: one copy reads it on one thread; libvirt streams are safe to hand between threads.
public final class VolumeReader: @unchecked Sendable {
    private let handle: VolumeStreamHandle

    init(volume: StorageVolume) throws(LibvirtError) {
        handle = try VolumeStreamHandle(volume: volume, what: "read") { virStorageVolDownload($0, $1, 0, 0, 0) }
    }

    /// Fills `buffer` from the front; 0 at the end of the volume (the stream is then finished).
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(LibvirtError) -> Int {
        guard let base = buffer.baseAddress, !handle.finished else { return 0 }
        let count = virStreamRecv(handle.stream, base.assumingMemoryBound(to: CChar.self), buffer.count)
        if count < 0 { throw LibvirtError.last("read volume \(handle.volume.name)") }
        if count == 0 { try handle.finish("reading") }
        return Int(count)
    }
}

/// A volume's bytes written through a libvirt stream (`virStorageVolUpload`), piece by piece; aborted unless finished.
///
/// `@unchecked Sendable`: one copy writes it on one thread.
public final class VolumeWriter: @unchecked Sendable {
    private let handle: VolumeStreamHandle

    init(volume: StorageVolume) throws(LibvirtError) {
        handle = try VolumeStreamHandle(volume: volume, what: "write") { virStorageVolUpload($0, $1, 0, 0, 0) }
    }

    /// Sends all of `bytes`.
    public func write(_ bytes: UnsafeRawBufferPointer) throws(LibvirtError) {
        guard let base = bytes.baseAddress else { return }
        var sent = 0
        while sent < bytes.count {
            let wrote = virStreamSend(handle.stream, base.advanced(by: sent).assumingMemoryBound(to: CChar.self), bytes.count - sent)
            guard wrote > 0 else { throw LibvirtError.last("write volume \(handle.volume.name)") }
            sent += Int(wrote)
        }
    }

    /// Completes the upload (the volume holds what was sent).
    public func finish() throws(LibvirtError) {
        try handle.finish("writing")
    }
}

extension StorageVolume {
    /// Opens a stream that replaces its bytes.
    public func writer() throws(LibvirtError) -> VolumeWriter {
        try VolumeWriter(volume: self)
    }

    /// Opens a stream of its bytes.
    public func reader() throws(LibvirtError) -> VolumeReader {
        try VolumeReader(volume: self)
    }

    /// Replaces its bytes with what `fill` produces (`virStorageVolUpload`), until `fill` returns 0. A failure of `fill`
    /// aborts the stream and is rethrown as it was.
    public func upload(_ fill: (UnsafeMutableRawBufferPointer) throws -> Int) throws {
        let writer = try writer()
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            let count = try fill(buffer)
            guard count > 0 else { break }
            try writer.write(UnsafeRawBufferPointer(rebasing: buffer[..<count]))
        }
        try writer.finish()
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
