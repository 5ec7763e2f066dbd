internal import CZlib
import Foundation

/// Git's loose objects (`objects/ab/cdef…`: zlib of "<type> <size>\0<content>"), read by StackLab itself with bounded
/// work: libgit2 1.5.1 loops forever inflating a truncated loose object, and reads a blob whole before its size can
/// be checked. A loose object is read here, streamed, and refused when damaged; a blob over the limit is measured
/// from its header without being read. Packed objects stay with libgit2.
struct LooseObjects {
    /// The repository's `objects` directory.
    let directory: String

    /// What a loose object holds.
    struct Object {
        var type: String
        var size: Int
        /// The content; nil when `size` is over the limit it was read with.
        var bytes: [UInt8]?
    }

    /// The object `id` (40 hex digits) if it is loose, reading its content only when it is at most `maxBytes`; nil when it
    /// is not a loose object (packed, or absent). A damaged object (truncated, corrupt, size not as declared) throws.
    func read(_ id: String, maxBytes: Int) throws(GitError) -> Object? {
        let path = "\(directory)/\(id.prefix(2))/\(id.dropFirst(2))"
        guard let file = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? file.close() }
        func damaged(_ why: String) -> GitError {
            GitError(operation: "read object \(id)", code: -1,
                     message: "the loose object \(path) is damaged (\(why)); restore it from another clone (git fsck lists damaged objects)")
        }
        var stream = z_stream()
        guard stacklab_inflate_init_zlib(&stream) == Z_OK else { throw damaged("zlib cannot start") }
        defer { inflateEnd(&stream) }

        var header: [UInt8] = []
        var object: Object?
        var content: [UInt8] = []
        var output = [UInt8](repeating: 0, count: 64 << 10)
        var ended = false
        while !ended {
            let chunk = file.readData(ofLength: 64 << 10)
            if chunk.isEmpty { throw damaged("it ends before its zlib stream does") }
            let failure: String? = chunk.withUnsafeBytes { (input: UnsafeRawBufferPointer) -> String? in
                stream.next_in = UnsafeMutablePointer(mutating: input.bindMemory(to: Bytef.self).baseAddress)
                stream.avail_in = uInt(input.count)
                while stream.avail_in > 0 && !ended {
                    let produced: Int
                    let status = output.withUnsafeMutableBufferPointer { buffer in
                        stream.next_out = buffer.baseAddress
                        stream.avail_out = uInt(buffer.count)
                        let status = inflate(&stream, Z_NO_FLUSH)
                        return status
                    }
                    produced = output.count - Int(stream.avail_out)
                    guard status == Z_OK || status == Z_STREAM_END || (status == Z_BUF_ERROR && produced > 0) else {
                        return "zlib says \(status)"
                    }
                    var bytes = output[..<produced]
                    if object == nil {
                        if let zero = bytes.firstIndex(of: 0) {
                            header += bytes[..<zero]
                            bytes = bytes[(zero + 1)...]
                            let parts = String(decoding: header, as: UTF8.self).split(separator: " ")
                            guard parts.count == 2, ["blob", "tree", "commit", "tag"].contains(parts[0]), let size = Int(parts[1]), size >= 0 else {
                                return "its header is not '<type> <size>'"
                            }
                            object = Object(type: String(parts[0]), size: size, bytes: nil)
                            if size > maxBytes {  // measured, not read
                                ended = true
                                return nil
                            }
                            content.reserveCapacity(size)
                        } else {
                            header += bytes
                            guard header.count <= 64 else { return "its header is too long" }
                            bytes = []
                        }
                    }
                    if object != nil {
                        content += bytes
                        guard content.count <= object!.size else { return "it holds more than its declared \(object!.size) bytes" }
                    }
                    if status == Z_STREAM_END { ended = true }
                    if status == Z_BUF_ERROR { break }
                }
                return nil
            }
            if let failure { throw damaged(failure) }
        }
        guard var found = object else { throw damaged("it has no header") }
        if found.size <= maxBytes {
            guard content.count == found.size else { throw damaged("it holds \(content.count) of its declared \(found.size) bytes") }
            found.bytes = content
        }
        return found
    }
}
