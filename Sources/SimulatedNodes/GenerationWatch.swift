import Drivers
import Foundation
import Manifests
import Parallel
import Planning

/// Node generations for a long-running planner, at a cost that follows what changed: the simulated hosts' directory
/// (`<state>/nodes`) is watched with inotify, and a node's generation is read again (its few stats) only when an
/// event names one of its files, not for all 10,000 nodes every revision.
///
/// Everything is read again the first time, after the kernel dropped events (its queue overflowed), when a watched
/// directory was moved, and on every call when the directory cannot be watched (no `nodes` directory yet, or the
/// inotify watch limit reached): then it costs what `generation()` on every node costs, never a stale answer.
/// Watches are added before the generations they cover are read, so a write that races with a read is seen next time.
///
/// What inotify cannot see is not covered: a change made through a hard link from an unwatched directory, or on
/// another machine sharing the directory over a network file system. The simulated hosts are one machine's files.
public final class GenerationWatch: @unchecked Sendable {
    private let lock = NSLock()
    /// The state directory watched (the first one asked about; another one resets the watch).
    private var stateDirectory: String?
    private var descriptor: Int32 = -1
    /// Watched directories by watch descriptor, relative to `<state>/nodes` ("" is the directory itself), and the same
    /// paths as a set.
    private var directories: [Int32: String] = [:]
    private var watchedPaths: Set<String> = []
    /// Directories (as in `directories`) that were about to be listed when `listing(_:)` named them, and in which no
    /// event happened since: their entries are as then.
    private var listed: Set<String> = []
    /// Generations as last read, each forgotten as soon as an event names one of its node's files (a caller may ask
    /// for some nodes only: the others are read again when next asked for).
    private var known: [Address: String?] = [:]
    /// The drivers of the last call answered with `known` as it is (nothing read again, nothing else known), while no
    /// event has forgotten a generation since: the same drivers then get the same answer without being looked up.
    private var answered: [Address: any NodeDriver]?
    /// Why the directory could not be watched (the watch limit reached): nil while it is watched, and while there is
    /// no `nodes` directory to watch yet (it is looked for again at every call).
    public var failure: String? { lock.withLock { whyUnwatched } }
    private var whyUnwatched: String?
    /// After a failure to watch (the watch limit reached), when to try again: until then every call reads every
    /// generation without walking the directory tree again.
    private var retryAt: DispatchTime?
    /// How long to wait before watching again after a failure.
    static let retryInterval: UInt64 = 600 * 1_000_000_000
    /// Tests only: watches allowed before `inotify_add_watch` is treated as failing with ENOSPC (the kernel's
    /// `fs.inotify.max_user_watches` is machine-wide, so a test cannot lower it).
    var watchLimit: Int?
    /// The nodes whose generations the last call read again.
    public var lastRead: [Address] { lock.withLock { readLast } }
    private var readLast: [Address] = []

    /// A watch that starts at the first call.
    public init() {}

    deinit {
        if descriptor >= 0 { close(descriptor) }
    }

    /// The generation of every node of `drivers` whose simulated host is under `stateDirectory`, reading again only
    /// those whose files changed since the last call.
    public func generations(of drivers: [Address: any NodeDriver], stateDirectory: String) -> [Address: String?] {
        lock.lock()
        defer { lock.unlock() }
        catchUp(stateDirectory: stateDirectory)
        if descriptor >= 0, let answered, answered.sharesStorage(with: drivers) {
            readLast = []
            return known
        }
        answered = nil
        let reread = drivers.keys.filter { known[$0] == nil }.sorted()
        let read = ResultSlots<String?>(count: reread.count)
        DispatchQueue.concurrentPerform(iterations: reread.count) { index in
            read[index] = (drivers[reread[index]] as? any GenerationTracking)?.generation()
        }
        readLast = reread
        // While nothing is watched, nothing read is kept: every call reads everything.
        if descriptor >= 0 {
            for (address, generation) in zip(reread, read.values) { known[address] = .some(generation) }
        }
        // Nothing to read again and nothing known besides these nodes: what is known is the answer, shared, not rebuilt.
        if reread.isEmpty && descriptor >= 0 && known.count == drivers.count {
            answered = drivers
            return known
        }
        var generations: [Address: String?] = [:]
        generations.reserveCapacity(drivers.count)
        for (address, generation) in zip(reread, read.values) { generations[address] = .some(generation) }
        for address in drivers.keys where generations[address] == nil { generations[address] = known[address] ?? nil }
        return generations
    }

    /// The directories under `<state>/nodes` (relative to it, "" for `nodes` itself) whose entries are as they were
    /// when `listing(_:)` last named them: the watch was on throughout and no event happened in them since (any event
    /// counts, even one that changed no entry). Reads the queued events first. Empty while nothing is watched.
    public func unchangedListings(stateDirectory: String) -> Set<String> {
        lock.lock()
        defer { lock.unlock() }
        catchUp(stateDirectory: stateDirectory)
        return descriptor >= 0 ? listed : []
    }

    /// Notes that `paths` (as in `unchangedListings`) are listed now: call it just before listing them, after
    /// `unchangedListings`. An event from now on drops one again; a directory not watched (yet) is not noted.
    public func listing(_ paths: [String]) {
        lock.lock()
        defer { lock.unlock() }
        guard descriptor >= 0 else { return }
        for path in paths where watchedPaths.contains(path) { listed.insert(path) }
    }

    /// Watches `stateDirectory` (from scratch when it is another one, or when a failed watch is due to be tried again)
    /// and reads the queued events.
    private func catchUp(stateDirectory: String) {
        if self.stateDirectory != stateDirectory {
            self.stateDirectory = stateDirectory
            reset()
        }
        if descriptor >= 0 {
            drain()
        } else if retryAt.map({ DispatchTime.now() >= $0 }) ?? true {
            reset()
        }
    }

    private var root: String { "\(stateDirectory ?? "")/nodes" }

    /// Drops every watch and what was read, and watches the directory again from scratch.
    private func reset() {
        if descriptor >= 0 { close(descriptor) }
        descriptor = -1
        directories = [:]
        watchedPaths = []
        listed = []
        known = [:]
        answered = nil
        descriptor = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        guard descriptor >= 0 else {
            whyUnwatched = "inotify_init1: \(String(cString: strerror(errno)))"
            retryLater()
            return
        }
        whyUnwatched = nil
        let watched = watchTree("")
        guard watched, directories.values.contains("") else {
            close(descriptor)
            descriptor = -1
            directories = [:]
            watchedPaths = []
            // No `nodes` directory yet: try at the next call. Anything else (the watch limit): not for a while.
            if !watched { retryLater() }
            return
        }
        retryAt = nil
    }

    private func retryLater() {
        retryAt = DispatchTime(uptimeNanoseconds: DispatchTime.now().uptimeNanoseconds + Self.retryInterval)
    }

    private static let mask = UInt32(IN_CREATE | IN_DELETE | IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO
                                     | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_DONT_FOLLOW)

    /// Watches `relative` and every directory below it. False when the watch limit is reached (or another error
    /// than the directory having gone meanwhile).
    private func watchTree(_ relative: String) -> Bool {
        var pending = [relative]
        while let next = pending.popLast() {
            let path = next.isEmpty ? root : "\(root)/\(next)"
            let limited = watchLimit.map { directories.count >= $0 } ?? false
            let watch = limited ? -1 : inotify_add_watch(descriptor, path, Self.mask)
            if limited { errno = ENOSPC }
            if watch < 0 {
                if errno == ENOENT || errno == ENOTDIR { continue }  // gone again: its parent's event said so
                whyUnwatched = "inotify_add_watch \(path): \(String(cString: strerror(errno)))"
                    + (errno == ENOSPC ? " (raise fs.inotify.max_user_watches)" : "")
                return false
            }
            directories[watch] = next
            watchedPaths.insert(next)
            // Listed after the watch is added: a directory created meanwhile is either listed or reported.
            guard let directory = opendir(path) else { continue }
            defer { closedir(directory) }
            while let entry = readdir(directory) {
                let name = entry.entryName
                guard name != ".", name != ".." else { continue }
                let child = next.isEmpty ? name : "\(next)/\(name)"
                var isDirectory = entry.entryType == UInt8(DT_DIR)
                if entry.entryType == UInt8(DT_UNKNOWN) {
                    var info = stat()
                    isDirectory = lstat("\(root)/\(child)", &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
                }
                if isDirectory { pending.append(child) }
            }
        }
        return true
    }

    /// Reads every queued event, noting what changed; watches directories that appeared.
    private func drain() {
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while descriptor >= 0 {
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else {
                // EAGAIN: nothing more queued. Anything else (the descriptor gone): events may be lost, start over.
                if errno != EAGAIN { reset() }
                return
            }
            guard count > 0 else { return }
            var offset = 0
            while offset + 16 <= count {
                let (watch, flags, length) = buffer.withUnsafeBytes { bytes in
                    (bytes.loadUnaligned(fromByteOffset: offset, as: Int32.self), bytes.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self),
                     Int(bytes.loadUnaligned(fromByteOffset: offset + 12, as: UInt32.self)))
                }
                let name = String(decoding: buffer[(offset + 16)..<(offset + 16 + length)].prefix { $0 != 0 }, as: UTF8.self)
                offset += 16 + length
                if !note(watch: watch, flags: flags, name: name) {
                    reset()  // events were lost or a path went stale: start over
                    return
                }
            }
        }
    }

    /// Notes one event. False when the watch must start over.
    private func note(watch: Int32, flags: UInt32, name: String) -> Bool {
        if flags & UInt32(IN_Q_OVERFLOW) != 0 { return false }
        guard let directory = directories[watch] else { return true }  // a watch already let go
        if flags & UInt32(IN_IGNORED) != 0 {
            directories[watch] = nil
            watchedPaths.remove(directory)
            listed.remove(directory)
            return true
        }
        if flags & UInt32(IN_MOVE_SELF) != 0 { return false }  // every path below it is stale
        let path = name.isEmpty ? directory : directory.isEmpty ? name : "\(directory)/\(name)"
        if flags & UInt32(IN_ISDIR) != 0, flags & UInt32(IN_CREATE | IN_MOVED_TO) != 0, !watchTree(path) {
            return false
        }
        mark(path)
        return true
    }

    /// Forgets the generations and listings a change at `path` (relative to `nodes`) may have changed.
    private func mark(_ path: String) {
        answered = nil
        let parts = path.split(separator: "/", maxSplits: 2, omittingEmptySubsequences: true)
        guard let region = parts.first.map(String.init) else {
            known = [:]  // the nodes directory itself
            listed = []
            return
        }
        // An event names an entry of a directory, or the directory itself: either listing may differ now.
        listed.remove(path)
        listed.remove(path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "")
        guard parts.count > 1 else {
            known = known.filter { $0.key.region != region }
            return
        }
        if let node = SimulatedNode.generationOwner(region: region, entry: parts[1], inside: parts.count > 2) { known[node] = nil }
    }
}
