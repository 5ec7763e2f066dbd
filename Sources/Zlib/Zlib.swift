internal import CZlib

/// Whole-buffer zlib compression: the ring builder's assignment tables as the state store keeps them, gzip ring files,
/// and what a long-running planner keeps but seldom reads (the rules of kept plans, `Ruleset.Rules.compacted()`; the
/// text of decoded manifests, `SourceFile.compact()`). Streams that are read piece by piece, like Git's loose objects
/// and the ring file writer, drive zlib themselves.
package enum Zlib {
    package enum Format {
        /// RFC 1950: a two-byte header and an Adler-32 trailer.
        case zlib
        /// RFC 1952, as `.gz` files are.
        case gzip
    }

    /// `bytes` compressed at `level` (1 fastest … 9 smallest) in the zlib format.
    package static func deflate(_ bytes: UnsafeRawBufferPointer, level: Int32) throws(ZlibError) -> [UInt8] {
        var stream = z_stream()
        guard stacklab_deflate_init_zlib(&stream, level) == Z_OK else { throw ZlibError("cannot start zlib deflate") }
        defer { deflateEnd(&stream) }
        var output = [UInt8](repeating: 0, count: Int(deflateBound(&stream, uLong(bytes.count))))
        let status: Int32 = output.withUnsafeMutableBufferPointer { out in
            stream.next_in = UnsafeMutablePointer(mutating: bytes.bindMemory(to: Bytef.self).baseAddress)
            stream.avail_in = uInt(bytes.count)
            stream.next_out = out.baseAddress
            stream.avail_out = uInt(out.count)
            return CZlib.deflate(&stream, Z_FINISH)  // deflateBound leaves room for all of it in one call
        }
        guard status == Z_STREAM_END else { throw ZlibError("zlib deflate failed (\(status))") }
        // A copy of exactly what was written: the bound is above the input's size, and callers keep the result.
        return Array(output[..<(output.count - Int(stream.avail_out))])
    }

    /// `bytes` inflated. With `expected`, the output must be exactly that many bytes (a damaged or foreign stream
    /// cannot make it allocate much more).
    package static func inflate(_ bytes: UnsafeRawBufferPointer, format: Format, expected: Int? = nil) throws(ZlibError) -> [UInt8] {
        var stream = z_stream()
        let started = format == .gzip ? stacklab_inflate_init_gzip(&stream) : stacklab_inflate_init_zlib(&stream)
        guard started == Z_OK else { throw ZlibError("cannot start zlib inflate") }
        defer { inflateEnd(&stream) }
        stream.next_in = UnsafeMutablePointer(mutating: bytes.bindMemory(to: Bytef.self).baseAddress)
        stream.avail_in = uInt(bytes.count)
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: min(expected.map { $0 + 1 } ?? 1 << 16, 1 << 20))
        output.reserveCapacity(min(expected ?? 0, 64 << 20))
        while true {
            let result: Int32 = chunk.withUnsafeMutableBufferPointer { out in
                stream.next_out = out.baseAddress
                stream.avail_out = uInt(out.count)
                return CZlib.inflate(&stream, Z_NO_FLUSH)
            }
            output += chunk[0..<(chunk.count - Int(stream.avail_out))]
            if let expected, output.count > expected { throw ZlibError("holds more than the \(expected) bytes expected") }
            if result == Z_STREAM_END { break }
            guard result == Z_OK else { throw ZlibError("not a valid \(format) stream (zlib \(result))") }
            if stream.avail_in == 0 && stream.avail_out != 0 { throw ZlibError("the \(format) stream ends early") }
        }
        if let expected, output.count != expected { throw ZlibError("holds \(output.count) bytes, not the \(expected) expected") }
        return output
    }
}

extension Zlib {
    /// `bytes` as kept in memory by a long-running planner: deflated at the fastest level when they are 1 KiB or more
    /// and that makes them smaller; nil when they are better kept as they are.
    package static func kept(_ bytes: [UInt8]) -> [UInt8]? {
        guard bytes.count >= 1024,
              let packed = try? bytes.withUnsafeBytes({ buffer throws(ZlibError) in try deflate(buffer, level: 1) }),
              packed.count < bytes.count else { return nil }
        return packed
    }

    /// The `count` bytes that `kept(_:)` deflated into `bytes`, for `what` (named if it fails). They were deflated from
    /// this process's memory: a stream that does not inflate is memory gone bad, not an input, and stops the process.
    package static func unkept(_ bytes: [UInt8], count: Int, what: @autoclosure () -> String) -> [UInt8] {
        do {
            return try bytes.withUnsafeBytes { buffer throws(ZlibError) in try inflate(buffer, format: .zlib, expected: count) }
        } catch {
            preconditionFailure("\(what()) kept deflated does not inflate: \(error)")
        }
    }
}

/// A zlib failure, with zlib's status.
package struct ZlibError: Error, CustomStringConvertible {
    package var description: String
    package init(_ description: String) { self.description = description }
}
