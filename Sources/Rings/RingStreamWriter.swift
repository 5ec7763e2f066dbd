internal import CZlib
import Crypto

/// Writes the gzip stream of a ring file exactly as Swift's `RingWriter` does: a gzip header, one raw deflate
/// stream whose compression level changes at full-flush boundaries (level 0 for the magic and the trailer,
/// 9 elsewhere), named sections indexed by compressed and uncompressed offsets with sha256 checksums, and the
/// gzip trailer. Full flushes make every section start a place a reader can seek to.
final class RingStreamWriter {
    private var stream = z_stream()
    private(set) var output: [UInt8] = []
    private var crc: UInt = crc32(0, nil, 0)
    private var uncompressed = 0
    private var flushed = true
    private var section: (name: String, compressedStart: Int, uncompressedStart: Int, hash: SHA256)?
    /// Finished sections: name → [compressed start, uncompressed start, compressed end, uncompressed end, "sha256", hex].
    private(set) var index: [(name: String, entry: [PythonJSON])] = []

    /// Starts a stream; `fileName` is recorded in the gzip header without `.gz`, as Python's gzip module does.
    init(fileName: String, mtime: UInt32) throws(RingFileError) {
        var name = fileName.split(separator: "/").last.map(String.init) ?? fileName
        if name.hasSuffix(".gz") { name.removeLast(3) }
        output = [0x1F, 0x8B, 0x08, name.isEmpty ? 0x00 : 0x08]
        output += withUnsafeBytes(of: mtime.littleEndian, Array.init)
        output += [0x02, 0xFF]  // best compression; unknown OS
        if !name.isEmpty { output += Array(name.utf8) + [0] }
        try start(level: 9)
    }

    deinit {
        deflateEnd(&stream)
    }

    private func start(level: Int32) throws(RingFileError) {
        stream = z_stream()
        guard stacklab_deflate_init(&stream, level) == Z_OK else { throw RingFileError("cannot start zlib deflate") }
    }

    /// Appends uncompressed bytes.
    func write(_ bytes: [UInt8]) throws(RingFileError) {
        guard !bytes.isEmpty else { return }
        flushed = false
        crc = bytes.withUnsafeBufferPointer { crc32(crc, $0.baseAddress, UInt32($0.count)) }
        uncompressed += bytes.count
        section?.hash.update(data: bytes)
        try deflate(bytes, flush: Z_NO_FLUSH)
    }

    private func deflate(_ bytes: [UInt8], flush: Int32) throws(RingFileError) {
        var input = bytes
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        let status: Int32 = input.withUnsafeMutableBufferPointer { inBuffer in
            stream.next_in = inBuffer.baseAddress
            stream.avail_in = UInt32(inBuffer.count)
            while true {
                let result: Int32 = chunk.withUnsafeMutableBufferPointer { outBuffer in
                    stream.next_out = outBuffer.baseAddress
                    stream.avail_out = UInt32(outBuffer.count)
                    return CZlib.deflate(&stream, flush)
                }
                let produced = chunk.count - Int(stream.avail_out)
                output += chunk[0..<produced]
                if result == Z_STREAM_ERROR { return result }
                if stream.avail_out != 0 && stream.avail_in == 0 { return Z_OK }
                if result == Z_STREAM_END { return Z_OK }
            }
        }
        guard status == Z_OK else { throw RingFileError("zlib deflate failed (\(status))") }
    }

    /// A full flush (only when something was written since the last one), so a reader can start here.
    func flush() throws(RingFileError) {
        guard !flushed else { return }
        try deflate([], flush: Z_FULL_FLUSH)
        flushed = true
    }

    /// Switches compression level: finish the current deflate stream at a flush boundary and start another.
    func setLevel(_ level: Int32) throws(RingFileError) {
        try flush()
        deflateEnd(&stream)
        try start(level: level)
    }

    /// Position in the compressed file (after a flush).
    func compressedTell() throws(RingFileError) -> Int {
        try flush()
        return output.count
    }

    /// Position in the uncompressed stream (after a flush).
    func tell() throws(RingFileError) -> Int {
        try flush()
        return uncompressed
    }

    func writeMagic(version: UInt16) throws(RingFileError) {
        try setLevel(0)
        try write(Array("R1NG".utf8) + [UInt8(version >> 8), UInt8(version & 0xFF)])
        try setLevel(9)
    }

    /// `!Q` size.
    func writeSize(_ size: Int) throws(RingFileError) {
        try write(withUnsafeBytes(of: UInt64(size).bigEndian, Array.init))
    }

    /// `!Q` length + bytes.
    func writeBlob(_ bytes: [UInt8]) throws(RingFileError) {
        try writeSize(bytes.count)
        try write(bytes)
    }

    func beginSection(_ name: String) throws(RingFileError) {
        try flush()
        section = (name, try compressedTell(), try tell(), SHA256())
    }

    func endSection() throws(RingFileError) {
        try flush()
        guard let current = section else { return }
        let digest = current.hash.finalize().map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
        index.append((current.name, [.int(current.compressedStart), .int(current.uncompressedStart), .int(try compressedTell()),
                                     .int(try tell()), .string("sha256"), .string(digest)]))
        section = nil
    }

    /// Writes the section index and the two trailing offsets Swift's reader finds 31 bytes before the end.
    func writeIndex() throws(RingFileError) {
        let uncompressedStart = try tell()
        let compressedStart = try compressedTell()
        let entries = PythonJSON.object(index.sorted { $0.name < $1.name }.map { ($0.name, .array($0.entry)) })
        try writeBlob(Array(entries.text.utf8))
        try setLevel(0)
        try writeSize(uncompressedStart)
        try flush()
        try writeSize(compressedStart)
        try flush()
    }

    /// Ends the deflate stream and appends the gzip trailer; returns the file's bytes.
    func finish() throws(RingFileError) -> [UInt8] {
        try deflate([], flush: Z_FINISH)
        output += withUnsafeBytes(of: UInt32(truncatingIfNeeded: crc).littleEndian, Array.init)
        output += withUnsafeBytes(of: UInt32(truncatingIfNeeded: uncompressed).littleEndian, Array.init)
        return output
    }
}

/// A ring file that cannot be written or read.
public struct RingFileError: Error, Sendable, CustomStringConvertible {
    public var description: String

    public init(_ description: String) {
        self.description = description
    }
}
