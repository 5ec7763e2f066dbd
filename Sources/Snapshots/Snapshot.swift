import Crypto
import Dispatch
import Foundation

/// Volume snapshots in Swift, Island-style: a volume's bytes cut into fixed-size chunks stored once each under their
/// sha256 (content-addressed: a later snapshot uploads only the chunks that changed, yet every snapshot is whole on its
/// own), and a manifest object listing them. Calls block their thread (see `SwiftClient`).
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

    /// A stored snapshot as a listing shows it (from its manifest object's metadata: no manifest is read).
    public struct Summary: Sendable, Codable, Hashable {
        public var volume: String
        public var name: String
        /// The volume's bytes (its file), its capacity, its chunks, and how many of them this snapshot uploaded (the
        /// others were stored already).
        public var bytes: UInt64
        public var capacity: UInt64
        public var chunks: Int
        public var uploaded: Int
        /// When it was taken (seconds since the epoch).
        public var created: Int64
    }

    /// The manifest object of `volume`/`name`.
    public func key(volume: String, name: String) -> String { "\(volume)/\(name).json" }

    /// Snapshots `volume` as `name` from `read`, which hands out its bytes in order (nil at the end; each piece at most
    /// `chunkSize`, and exactly that except the last). Chunks of `previous` (an earlier snapshot still stored: its
    /// chunks are never deleted while it exists) are known to be there and are not even asked for, so an incremental
    /// snapshot costs requests only for what changed. The manifest goes last: a snapshot exists once it is whole.
    public func upload(volume: String, name: String, capacity: UInt64? = nil, after previous: Manifest? = nil, read: () throws -> Data?) throws -> Report {
        try client.ensureContainer(chunks)
        try client.ensureContainer(manifests)
        var whole = SHA256()
        var hashes: [String] = []
        var total: UInt64 = 0
        var seen = Set(previous?.chunks ?? [])
        let sender = ChunkSender(client: client, container: chunks, parallelism: parallelism)
        while let chunk = try read(), !chunk.isEmpty {
            whole.update(data: chunk)
            total += UInt64(chunk.count)
            let hash = Self.hex(SHA256.hash(data: chunk))
            hashes.append(hash)
            guard seen.insert(hash).inserted else { continue }
            try sender.send(hash, chunk)
        }
        let (uploaded, sent) = try sender.finish()
        let manifest = Manifest(volume: volume, name: name, bytes: total, chunkSize: chunkSize, chunks: hashes, sha256: Self.hex(whole.finalize()))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try client.put(manifests, key(volume: volume, name: name), try encoder.encode(manifest),
                       metadata: ["bytes": "\(total)", "capacity": "\(capacity ?? total)", "chunks": "\(hashes.count)", "uploaded": "\(uploaded)", "created": "\(Int64(Date().timeIntervalSince1970))"])
        return Report(manifest: manifest, chunksUploaded: uploaded, bytesSent: sent)
    }

    /// Snapshots the file at `path` (an independent copy of the volume).
    public func upload(volume: String, name: String, from path: String, after previous: Manifest? = nil) throws -> Report {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw SwiftClient.Failure(request: "read \(path)", status: nil, message: "cannot open") }
        defer { try? handle.close() }
        return try upload(volume: volume, name: name, after: previous) { try handle.read(upToCount: chunkSize) }
    }

    /// The manifest of `volume`/`name`, nil when there is no such snapshot.
    public func manifest(volume: String, name: String) throws -> Manifest? {
        guard try client.exists(manifests, key(volume: volume, name: name)) else { return nil }
        let data = try client.get(manifests, key(volume: volume, name: name))
        do {
            return try JSONDecoder().decode(Manifest.self, from: data)
        } catch {
            throw SwiftClient.Failure(request: "GET \(manifests)/\(key(volume: volume, name: name))", status: nil, message: "unreadable manifest: \(error)")
        }
    }

    /// Hands snapshot `volume`/`name` to `write` chunk by chunk, checking every chunk and the whole against their
    /// sha256 (a mismatch throws before the last chunk is written). Chunks are fetched `parallelism` ahead.
    @discardableResult
    public func restore(volume: String, name: String, write: (Data) throws -> Void) throws -> Manifest {
        guard let manifest = try manifest(volume: volume, name: name) else {
            throw SwiftClient.Failure(request: "restore \(volume)/\(name)", status: 404, message: "no such snapshot")
        }
        var whole = SHA256()
        let fetcher = ChunkFetcher(client: client, container: chunks, hashes: manifest.chunks, window: parallelism)
        for (index, hash) in manifest.chunks.enumerated() {
            let chunk = try fetcher.chunk(index)
            guard Self.hex(SHA256.hash(data: chunk)) == hash else {
                throw SwiftClient.Failure(request: "GET chunk \(hash)", status: nil, message: "its content does not match its sha256")
            }
            whole.update(data: chunk)
            if index == manifest.chunks.count - 1, Self.hex(whole.finalize()) != manifest.sha256 {
                throw SwiftClient.Failure(request: "restore \(volume)/\(name)", status: nil, message: "the restored volume does not match the snapshot's sha256")
            }
            try write(chunk)
        }
        return manifest
    }

    /// Writes snapshot `volume`/`name` to the file at `path`.
    @discardableResult
    public func restore(volume: String, name: String, to path: String) throws -> Manifest {
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        guard let handle = FileHandle(forWritingAtPath: path) else { throw SwiftClient.Failure(request: "write \(path)", status: nil, message: "cannot open") }
        defer { try? handle.close() }
        return try restore(volume: volume, name: name) { try handle.write(contentsOf: $0) }
    }

    /// The snapshots stored under `prefix` (a volume's `tenant/volume/`, or all), from their manifests' metadata.
    public func list(prefix: String = "") throws -> [Summary] {
        let listed = try client.list(manifests, prefix: prefix).filter { $0.name.hasSuffix(".json") }
        let summaries = ResultBox<Summary>(count: listed.count)
        let client = self.client, container = manifests
        DispatchQueue.concurrentPerform(iterations: listed.count) { index in
            let object = listed[index].name
            summaries.set(index, Result {
                let metadata = try client.head(container, object) ?? [:]
                let path = object.dropLast(".json".count)
                let slash = path.lastIndex(of: "/") ?? path.startIndex
                return Summary(volume: String(path[..<slash]), name: String(path[path.index(after: slash)...]),
                               bytes: UInt64(metadata["bytes"] ?? "") ?? 0, capacity: UInt64(metadata["capacity"] ?? "") ?? 0, chunks: Int(metadata["chunks"] ?? "") ?? 0,
                               uploaded: Int(metadata["uploaded"] ?? "") ?? 0, created: Int64(metadata["created"] ?? "") ?? 0)
            })
        }
        return try summaries.values().filter { !$0.volume.isEmpty }
    }

    /// What deleting a snapshot removed.
    public struct Deletion: Sendable {
        /// Chunks no remaining snapshot referenced, deleted.
        public var chunksDeleted: Int
        /// Chunks kept because another snapshot still uses them.
        public var chunksKept: Int
    }

    /// Deletes snapshot `volume`/`name` (its manifest first), then every chunk no remaining snapshot references. A
    /// chunk still referenced is never deleted. Runs under the region's lease (one writer per object store), so no
    /// upload is half-way while chunks are collected.
    public func delete(volume: String, name: String) throws -> Deletion {
        let doomed = try manifest(volume: volume, name: name)
        try client.delete(manifests, key(volume: volume, name: name))
        guard let doomed else { return Deletion(chunksDeleted: 0, chunksKept: 0) }
        var referenced = Set<String>()
        for object in try client.list(manifests) where object.name.hasSuffix(".json") {
            let data = try client.get(manifests, object.name)
            guard let manifest = try? JSONDecoder().decode(Manifest.self, from: data) else {
                throw SwiftClient.Failure(request: "GET \(manifests)/\(object.name)", status: nil, message: "unreadable manifest: no chunk is deleted while a manifest cannot be read")
            }
            referenced.formUnion(manifest.chunks)
        }
        let candidates = Set(doomed.chunks)
        var deleted = 0, kept = 0
        for hash in candidates.sorted() {
            if referenced.contains(hash) { kept += 1; continue }
            try client.delete(chunks, hash)
            deleted += 1
        }
        return Deletion(chunksDeleted: deleted, chunksKept: kept)
    }

    static func hex<D: Sequence>(_ digest: D) -> String where D.Element == UInt8 {
        digest.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }
}

/// Results filled in by concurrent workers, read once they are done.
final class ResultBox<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var slots: [Result<Value, any Error>?]

    init(count: Int) { slots = Array(repeating: nil, count: count) }

    func set(_ index: Int, _ result: Result<Value, any Error>) { lock.withLock { slots[index] = result } }

    func values() throws -> [Value] {
        try lock.withLock { slots }.map { slot in
            guard let slot else { throw SwiftClient.Failure(request: "listing", status: nil, message: "a worker did not finish") }
            return try slot.get()
        }
    }
}

/// Sends chunks `parallelism` at a time, each on a thread of its own (each stored only if absent: one already stored is
/// not sent again). Not on Dispatch's global queue: a request blocks its thread until Swift answers, and on Linux
/// that queue's pool adds threads for blocked ones only by polling, so few requests ran at once (a restore left a
/// third of two cores idle).
final class ChunkSender: @unchecked Sendable {
    private let client: SwiftClient
    private let container: String
    private let slots: DispatchSemaphore
    private let group = DispatchGroup()
    private let lock = NSLock()
    private var uploaded = 0
    private var sent: UInt64 = 0
    private var failure: (any Error)?

    init(client: SwiftClient, container: String, parallelism: Int) {
        self.client = client
        self.container = container
        self.slots = DispatchSemaphore(value: max(1, parallelism))
    }

    /// Queues one chunk, waiting while `parallelism` are in flight; throws the first failure so far.
    func send(_ hash: String, _ chunk: Data) throws {
        slots.wait()
        if let failure = lock.withLock({ failure }) {
            slots.signal()
            throw failure
        }
        group.enter()
        Thread.detachNewThread { [self] in
            defer { slots.signal(); group.leave() }
            do {
                guard try client.putIfAbsent(container, hash, chunk) else { return }
                lock.withLock { uploaded += 1; sent += UInt64(chunk.count) }
            } catch {
                lock.withLock { if failure == nil { failure = error } }
            }
        }
    }

    /// Waits for every chunk; the chunks uploaded and bytes sent, or the first failure.
    func finish() throws -> (Int, UInt64) {
        group.wait()
        return try lock.withLock {
            if let failure { throw failure }
            return (uploaded, sent)
        }
    }
}

/// Fetches a snapshot's chunks in order, keeping up to `window` requests ahead of the reader.
final class ChunkFetcher: @unchecked Sendable {
    private let client: SwiftClient
    private let container: String
    private let hashes: [String]
    private let window: Int
    private let lock = NSCondition()
    private var fetched: [Int: Result<Data, any Error>] = [:]
    private var requested = 0

    init(client: SwiftClient, container: String, hashes: [String], window: Int) {
        self.client = client
        self.container = container
        self.hashes = hashes
        self.window = max(1, window)
    }

    /// Chunk `index` (asked for in order), once it has arrived.
    func chunk(_ index: Int) throws -> Data {
        lock.lock()
        while requested < min(hashes.count, index + window) {
            let next = requested
            requested += 1
            // A thread per request, not Dispatch's global queue (see `ChunkSender`).
            Thread.detachNewThread { [self] in
                let result = Result { try client.get(container, hashes[next]) }
                lock.lock()
                fetched[next] = result
                lock.broadcast()
                lock.unlock()
            }
        }
        while fetched[index] == nil { lock.wait() }
        let result = fetched.removeValue(forKey: index)!
        lock.unlock()
        return try result.get()
    }
}
