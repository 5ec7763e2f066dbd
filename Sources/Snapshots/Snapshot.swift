import Crypto
import Foundation

/// Volume snapshots in Swift, Island-style: a volume's bytes cut into fixed-size chunks stored once each under their
/// sha256 (content-addressed: a later snapshot uploads only the chunks that changed, yet every snapshot is whole on its
/// own), and a manifest object listing them.
public struct SnapshotStore: Sendable {
    public var client: SwiftClient
    /// Containers for chunks and manifests.
    public var chunks = "stacklab-chunks"
    public var manifests = "stacklab-snapshots"
    /// Bytes per chunk (1 MiB).
    public var chunkSize = 1 << 20
    /// Chunks sent at once.
    public var parallelism = 8

    public init(client: SwiftClient) {
        self.client = client
    }

    /// A snapshot as stored: what restores it.
    public struct Manifest: Codable, Sendable, Equatable {
        public var volume: String
        public var name: String
        public var bytes: UInt64
        public var chunkSize: Int
        /// The chunks in order, by sha256.
        public var chunks: [String]
        /// sha256 of the whole volume.
        public var sha256: String
    }

    /// What an upload did.
    public struct Report: Sendable {
        public var manifest: Manifest
        public var chunksUploaded: Int
        public var bytesSent: UInt64
    }

    /// Snapshots the file at `path` (an independent copy of the volume) as `volume`/`name`. Chunks of `previous` (an
    /// earlier snapshot still stored: its chunks are never deleted while it exists) are known to be there and are not
    /// even asked for, so an incremental snapshot costs requests only for what changed.
    public func upload(volume: String, name: String, from path: String, after previous: Manifest? = nil) async throws -> Report {
        try await client.ensureContainer(chunks)
        try await client.ensureContainer(manifests)
        guard let handle = FileHandle(forReadingAtPath: path) else { throw SwiftClient.Failure(request: "read \(path)", status: nil, message: "cannot open") }
        defer { try? handle.close() }
        var whole = SHA256()
        var hashes: [String] = []
        var uploaded = 0
        var sent: UInt64 = 0
        var total: UInt64 = 0
        var seen = Set(previous?.chunks ?? [])
        let client = self.client, container = chunks
        // Chunks are read in order and sent `parallelism` at a time (each asked for first: one already stored is skipped).
        try await withThrowingTaskGroup(of: UInt64.self) { group in
            var inFlight = 0
            func collect() async throws {
                if let bytes = try await group.next() {
                    inFlight -= 1
                    if bytes > 0 { uploaded += 1; sent += bytes }
                }
            }
            while let chunk = try handle.read(upToCount: chunkSize), !chunk.isEmpty {
                whole.update(data: chunk)
                total += UInt64(chunk.count)
                let hash = Self.hex(SHA256.hash(data: chunk))
                hashes.append(hash)
                guard seen.insert(hash).inserted else { continue }
                if inFlight >= parallelism { try await collect() }
                inFlight += 1
                group.addTask {
                    guard try await !client.exists(container, hash) else { return 0 }
                    try await client.put(container, hash, chunk)
                    return UInt64(chunk.count)
                }
            }
            while inFlight > 0 { try await collect() }
        }
        let manifest = Manifest(volume: volume, name: name, bytes: total, chunkSize: chunkSize, chunks: hashes, sha256: Self.hex(whole.finalize()))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try await client.put(manifests, "\(volume)/\(name).json", try encoder.encode(manifest))
        return Report(manifest: manifest, chunksUploaded: uploaded, bytesSent: sent)
    }

    /// Writes snapshot `volume`/`name` to `path`, checking every chunk and the whole against their sha256.
    @discardableResult
    public func restore(volume: String, name: String, to path: String) async throws -> Manifest {
        let manifest = try JSONDecoder().decode(Manifest.self, from: try await client.get(manifests, "\(volume)/\(name).json"))
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        guard let handle = FileHandle(forWritingAtPath: path) else { throw SwiftClient.Failure(request: "write \(path)", status: nil, message: "cannot open") }
        defer { try? handle.close() }
        var whole = SHA256()
        for hash in manifest.chunks {
            let chunk = try await client.get(chunks, hash)
            guard Self.hex(SHA256.hash(data: chunk)) == hash else {
                throw SwiftClient.Failure(request: "GET chunk \(hash)", status: nil, message: "its content does not match its sha256")
            }
            whole.update(data: chunk)
            try handle.write(contentsOf: chunk)
        }
        guard Self.hex(whole.finalize()) == manifest.sha256 else {
            throw SwiftClient.Failure(request: "restore \(volume)/\(name)", status: nil, message: "the restored volume does not match the snapshot's sha256")
        }
        return manifest
    }

    static func hex<D: Sequence>(_ digest: D) -> String where D.Element == UInt8 {
        digest.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }
}
