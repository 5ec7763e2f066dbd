import Dispatch
import Foundation
import Parallel
import YAML

/// The result of loading a revision: the model, the files it came from, and every problem found.
public struct LoadResult: Sendable {
    /// The desired model (resources with errors in their own documents are left out).
    public var model: DesiredModel
    /// The files read, for rendering diagnostics.
    public var files: SourceFiles
    /// Every problem, sorted by place.
    public var diagnostics: [Diagnostic]
    /// The commit, for git sources.
    public var revision: String?
    /// `model.planDigests`, added up from each file's (kept with its decode, so an incremental load does not walk
    /// the whole model for them).
    public var planDigests: (catalog: UInt64, regions: [String: UInt64]) = (0, [:])
    /// Each region's instances, as their positions in `model.instances` in declaration order, as validation found them
    /// (nil when the load was not validated): a region's instances without a pass over every instance.
    public var instancesByRegion: [String: [Int]]?
    /// Seconds spent in each phase: read, decode, validate.
    public var timings = Timings()

    /// Where a load spent its time.
    public struct Timings: Sendable {
        /// Reading files (from disk or git objects).
        public var read = 0.0
        /// Decoding YAML events into the typed model.
        public var decode = 0.0
        /// Cross-document validation.
        public var validate = 0.0

        /// `read 0.123s, decode 0.456s, validate 0.078s` (reading alone: `read` above counts the whole load).
        public var phases: String {
            String(format: "read %.3fs, decode %.3fs, validate %.3fs", read - decode - validate, decode, validate)
        }
    }

    /// Whether any diagnostic is an error.
    public var hasErrors: Bool { diagnostics.contains { $0.severity == .error } }
}

/// Reads a source, decodes every file in parallel, and validates the whole model.
public struct Loader: Sendable {
    /// Bounds for hostile input.
    public var limits: LoadLimits
    /// Whether to run cross-document validation (off only to measure decoding alone).
    public var validate: Bool

    /// Creates a loader.
    public init(limits: LoadLimits = LoadLimits(), validate: Bool = true) {
        self.limits = limits
        self.validate = validate
    }

    /// Loads and validates everything `source` yields.
    public func load(_ source: some ManifestSource) throws(SourceError) -> LoadResult {
        let start = Clock.now
        let snapshot = try source.read(limits: limits)
        var result = load(snapshot)
        result.timings.read = Clock.seconds(since: start)
        return result
    }

    /// Loads and validates a snapshot already read.
    public func load(_ snapshot: SourceSnapshot) -> LoadResult {
        var files = SourceFiles()
        var diagnostics: [Diagnostic] = []
        var parseable: [(id: FileID, path: String)] = []
        for input in snapshot.inputs {
            switch input.content {
            case .success(let bytes):
                let id = files.add(SourceFile(path: input.path, bytes: bytes, digest: input.digest))
                parseable.append((id, input.path))
            case .failure(let refusal):
                let id = files.add(SourceFile(path: input.path, bytes: []))
                diagnostics.append(Self.diagnostic(for: refusal.refusal, at: SourceLocation(file: id, line: 1, column: 1)))
            }
        }
        let decodeStart = Clock.now
        let parsed = parseAll(parseable, files: files)
        var result = finish(files: files, order: parseable, results: parsed, diagnostics: diagnostics,
                            decodeSeconds: Clock.seconds(since: decodeStart), rank: nil, validation: nil)
        result.revision = snapshot.revision
        return result
    }

    /// Loads and validates a snapshot, decoding only the files whose digest differs from the one `cache` holds for
    /// their path (and reading from `cache` the bytes of inputs the source left out). The result is the one a full
    /// load of the same snapshot gives; `cache` is updated to this snapshot.
    public func load(_ snapshot: SourceSnapshot, cache: DecodeCache) -> LoadResult {
        cache.last = nil
        var diagnostics: [Diagnostic] = []
        var order: [(id: FileID, path: String)] = []
        var results: [FileResult?] = []
        var toParse: [(id: FileID, path: String)] = []
        var slotOf: [Int] = []
        // A left-out file's bytes: those its own path had (the common case), else those of the file that has its digest
        // (a link to it). A source leaves out only a blob some path of this snapshot has unchanged (`DecodeCache.known`),
        // so that file keeps its digest while this loop rewrites files, and the map can be made when first needed.
        var byDigest: [String: FileID]?
        for input in snapshot.inputs {
            let id = cache.id(for: input.path)
            switch input.content {
            case .success(var bytes):
                // Left out as unchanged (its path kept that blob): the file is kept as it is, bytes and all.
                let unchanged = input.omitted && input.digest != nil && cache.files[id].digest == input.digest
                if input.omitted && !unchanged {
                    if byDigest == nil { byDigest = cache.idsByDigest() }
                    guard let digest = input.digest, let holder = byDigest?[digest] else {
                        cache.files[id] = SourceFile(path: input.path, bytes: [])
                        cache.setEntry(nil, for: id)
                        diagnostics.append(Self.diagnostic(for: .unreadable(reason: "its bytes were left out but are not cached"),
                                                           at: SourceLocation(file: id, line: 1, column: 1)))
                        continue
                    }
                    bytes = cache.files[holder].bytes
                }
                if !unchanged { cache.files[id] = SourceFile(path: input.path, bytes: bytes, digest: input.digest) }
                order.append((id, input.path))
                if let digest = input.digest, let entry = cache.entries[Int(id.index)], entry.digest == digest {
                    results.append(entry.result)
                } else {
                    results.append(nil)
                    slotOf.append(results.count - 1)
                    toParse.append((id, input.path))
                }
            case .failure(let refusal):
                cache.files[id] = SourceFile(path: input.path, bytes: [])
                cache.setEntry(nil, for: id)
                diagnostics.append(Self.diagnostic(for: refusal.refusal, at: SourceLocation(file: id, line: 1, column: 1)))
            }
        }
        // When every path the cache knows came again (a snapshot's paths are unique), none is gone.
        if snapshot.inputs.count != cache.idByPath.count {
            let present = Set(snapshot.inputs.map(\.path))
            for (path, id) in cache.idByPath where !present.contains(path) {
                cache.files[id] = SourceFile(path: path, bytes: [])  // gone from this revision: its id stays reserved
                cache.setEntry(nil, for: id)
            }
        }
        let decodeStart = Clock.now
        let parsed = decode(toParse, cache: cache)
        for (slot, result) in zip(slotOf, parsed.results) { results[slot] = result }
        cache.lastDecoded = toParse.count
        cache.lastReused = order.count - toParse.count
        let decoded = results.map { $0! }
        let flagged = Set(decoded.indices.filter { decoded[$0].isFlagged })
        return conclude(order: order, results: decoded, replaced: slotOf, refusals: diagnostics, flagged: flagged, revision: snapshot.revision,
                        tree: snapshot.tree, everyFileKept: parsed.everyFileKept, decodeStart: decodeStart, cache: cache)
    }

    /// Applies `changes` to the load `cache` made last, when that was of `changes.base`, decoding only the changed
    /// files; nil (and `cache` untouched) when it was not, or a path came or went, or a changed file was refused or
    /// was not in that load: then `load(_:cache:)` of the whole snapshot. The result is the one a full load of the
    /// same tree gives.
    public func load(_ changes: SourceChanges, cache: DecodeCache) -> LoadResult? {
        guard changes.removed.isEmpty, cache.last?.tree == changes.base, cache.hasMerged else { return nil }
        var slots: [Int] = []
        for input in changes.changed {
            guard case .success = input.content, !input.omitted, input.digest != nil,
                  let id = cache.existingID(for: input.path), let slot = cache.last?.slot(of: id) else { return nil }
            slots.append(slot)
        }
        // Taken out of the cache, so its arrays are this load's alone and change in place.
        guard var last = cache.last else { return nil }
        cache.last = nil
        var results = last.results
        var flagged = last.flagged
        last.results = []
        last.flagged = []
        var toParse: [(id: FileID, path: String)] = []
        var slotOf: [Int] = []
        for (input, slot) in zip(changes.changed, slots) {
            let id = last.order[slot].id
            cache.files[id] = SourceFile(path: input.path, bytes: (try? input.content.get()) ?? [], digest: input.digest)
            if let entry = cache.entries[Int(id.index)], entry.digest == input.digest { continue }  // as the last load had it
            toParse.append((id, input.path))
            slotOf.append(slot)
        }
        let decodeStart = Clock.now
        let parsed = decode(toParse, cache: cache)
        for (slot, result) in zip(slotOf, parsed.results) {
            results[slot] = result
            if result.isFlagged { flagged.insert(slot) } else { flagged.remove(slot) }
        }
        cache.lastDecoded = toParse.count
        cache.lastReused = results.count - toParse.count
        return conclude(order: last.order, results: results, replaced: slotOf, refusals: last.refusals, flagged: flagged,
                        revision: changes.revision, tree: changes.tree, everyFileKept: parsed.everyFileKept, decodeStart: decodeStart,
                        pathsUnchanged: true, cache: cache)
    }

    /// Decodes `toParse` (files of `cache`), keeps each result under its file's digest and the file's bytes deflated.
    private func decode(_ toParse: [(id: FileID, path: String)], cache: DecodeCache) -> (results: [FileResult], everyFileKept: Bool) {
        let parsed = parseAll(toParse, files: cache.files, kept: true)
        // Decoded, a file's bytes are read again only for a diagnostic's lines or for another path with the same blob:
        // the cache keeps them deflated.
        let compacted = ResultSlots<SourceFile>(count: toParse.count)
        ParallelWork.forEach(count: toParse.count, workers: ParallelWork.coreCount) { [files = cache.files, toParse] index in
            compacted[index] = files[toParse[index].id].compacted()
        }
        for (input, file) in zip(toParse, compacted.values) { cache.files[input.id] = file }
        var everyFileKept = true
        for (input, result) in zip(toParse, parsed) {
            if let digest = cache.files[input.id].digest {
                cache.setEntry(.init(digest: digest, result: result), for: input.id)
            } else {
                cache.setEntry(nil, for: input.id)
                everyFileKept = false
            }
        }
        return (parsed, everyFileKept)
    }

    /// The load of `results` (one per file of `order`, those at `replaced` decoded anew): the last load's model with
    /// only the replaced files' runs replaced when it was merged from the same paths (else merged anew), validated, and
    /// kept in `cache` for the next load. `flagged` are the results with diagnostics or lost names, or that stopped early;
    /// `pathsUnchanged` when `order` is known to be the kept model's.
    private func conclude(order: [(id: FileID, path: String)], results: [FileResult], replaced slotOf: [Int], refusals: [Diagnostic],
                          flagged: Set<Int>, revision: String?, tree: String?, everyFileKept: Bool, decodeStart: UInt64,
                          pathsUnchanged: Bool = false, cache: DecodeCache) -> LoadResult {
        // Ids are stable per path, not in path order: diagnostics are ordered by path.
        let rank = cache.rank()
        cache.validation.reset()
        // The same files in the same order as the model kept: only the runs of the files decoded again are replaced.
        var model: DesiredModel?
        var counts: [[Int]]
        var paths: [String]
        var changedInstances: [Range<Int>]?
        var replacedInstances: [Resource<InstanceSpec>] = []
        if var kept = cache.takeMerged(), pathsUnchanged || (kept.paths.count == order.count && zip(kept.paths, order).allSatisfy { $0 == $1.path }) {
            changedInstances = Self.instanceRanges(of: slotOf, counts: kept.counts, decoded: results)
            replacedInstances = changedInstances.map { $0.joined().map { kept.model.instances[$0] } } ?? []
            kept.model.splice(slotOf.map { (index: $0, part: results[$0].model) }, counts: kept.counts)
            for slot in slotOf { kept.counts[slot] = results[slot].model.kindCounts }
            model = kept.model
            counts = kept.counts
            paths = kept.paths
            cache.lastSpliced = true
        } else {
            cache.lastSpliced = false
            counts = results.map(\.model.kindCounts)
            paths = order.map(\.path)
        }
        cache.validation.beginLoad(changed: changedInstances, replaced: replacedInstances)
        // Every file's decode kept: the digests are the kept running sum, updated by the files that changed.
        var result = finish(files: cache.files, order: order, results: results, inspected: flagged.sorted(), diagnostics: refusals,
                            decodeSeconds: Clock.seconds(since: decodeStart), rank: rank, validation: cache.validation,
                            digests: everyFileKept ? cache.digests : nil, model: model)
        result.revision = revision
        cache.keepMerged(result.model, paths: paths, counts: counts)
        if let tree {
            cache.last = DecodeCache.Last(tree: tree, order: order, results: results, refusals: refusals, flagged: flagged)
        }
        return result
    }

    /// Merges per-file results in path order, validates, and sorts the diagnostics (by file id, or by `rank[id]`).
    /// `inspected` are the results that may have diagnostics or lost names, or have stopped early (nil: any of them).
    private func finish(files: SourceFiles, order: [(id: FileID, path: String)], results: [FileResult], inspected: [Int]? = nil,
                        diagnostics: [Diagnostic], decodeSeconds: Double, rank: [Int]?, validation: ValidationCache?,
                        digests summed: PlanDigests? = nil, model merged: DesiredModel? = nil) -> LoadResult {
        var diagnostics = diagnostics
        let model = merged ?? DesiredModel.merged(results.map(\.model))
        let inspected = inspected ?? Array(results.indices)
        for i in inspected { diagnostics += results[i].diagnostics }
        let validateStart = Clock.now
        var instancesByRegion: [String: [Int]]?
        if validate {
            // A region whose own files did not parse is not reported as undeclared by everything that names it.
            let unreadableRegions = Set(inspected.compactMap { i in
                results[i].stoppedEarly ? ManifestLayout.implicitRegion(of: order[i].path) : nil
            })
            var lostNames = Set(inspected.flatMap { results[$0].lostNames })
            for i in inspected where results[i].stoppedEarly { lostNames.formUnion(Self.declaredNames(in: files[order[i].id].bytes)) }
            let validated = Validator(model: model, files: files, unreadableRegions: unreadableRegions, lostNames: lostNames,
                                      cache: validation).run(cache: validation)
            diagnostics += validated.diagnostics
            instancesByRegion = validated.instancesByRegion
        }
        if let rank {
            diagnostics.sort { a, b in Self.order(a, b) { rank[Int($0.index)] } }
        } else {
            diagnostics.sort { a, b in Self.order(a, b) { Int($0.index) } }
        }
        var result = LoadResult(model: model, files: files, diagnostics: diagnostics, revision: nil)
        result.instancesByRegion = instancesByRegion
        var digests = PlanDigests()
        if let summed {
            digests = summed
        } else {
            for part in results { digests.add(part.planDigests) }
        }
        result.planDigests = (digests.catalog, digests.regions)
        result.timings.decode = decodeSeconds
        result.timings.validate = Clock.seconds(since: validateStart)
        return result
    }

    /// What a file that failed to parse appears to declare: the values of its `name:` lines, read as plain text.
    static func declaredNames(in bytes: [UInt8]) -> Set<String> {
        var names = Set<String>()
        for line in bytes.split(separator: UInt8(ascii: "\n")) {
            guard let text = String(validating: line, as: UTF8.self) else { continue }
            let trimmed = text.drop { $0 == " " || $0 == "-" }
            guard trimmed.hasPrefix("name:") else { continue }
            let value = trimmed.dropFirst(5).trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "'\""))
            if !value.isEmpty { names.insert(value) }
        }
        return names
    }

    /// One file's decode. A class: a load passes every file's result along (kept, then merged), and a copy is then
    /// one reference, not a model's columns each.
    final class FileResult: Sendable {
        let model: DesiredModel
        let diagnostics: [Diagnostic]
        /// Whether a syntax error or limit ended decoding before the end of the file.
        let stoppedEarly: Bool
        /// Documents left out for their errors (`ManifestDecoder.lostNames`).
        let lostNames: [String]
        /// The file's share of `LoadResult.planDigests`.
        let planDigests: (catalog: UInt64, regions: [String: UInt64])

        /// Whether `finish` must look at it: it has diagnostics or lost names, or stopped early.
        var isFlagged: Bool { !diagnostics.isEmpty || stoppedEarly || !lostNames.isEmpty }

        init(model: DesiredModel, diagnostics: [Diagnostic], stoppedEarly: Bool, lostNames: [String], planDigests: (catalog: UInt64, regions: [String: UInt64])) {
            self.model = model
            self.diagnostics = diagnostics
            self.stoppedEarly = stoppedEarly
            self.lostNames = lostNames
            self.planDigests = planDigests
        }
    }

    /// Decodes files on `parallelism` threads; results come back in file order, so output is deterministic.
    /// Decodes `inputs` in parallel; `kept` when the cache keeps each file's part (then cut to fit, `fitted()`).
    private func parseAll(_ inputs: [(id: FileID, path: String)], files: SourceFiles, kept: Bool = false) -> [FileResult] {
        let workers = max(1, min(limits.parallelism > 0 ? limits.parallelism : ParallelWork.coreCount, inputs.count))
        let results = ResultSlots<FileResult>(count: inputs.count)
        let aliasBudget = limits.aliasBudget
        // Largest files first: the last file a thread takes is then a small one.
        let bySize = inputs.indices.sorted { files[inputs[$0].id].size > files[inputs[$1].id].size }
        ParallelWork.forEach(count: inputs.count, workers: workers) { position in
            let index = bySize[position]
            let input = inputs[index]
            let bytes = files[input.id].bytes
            let decoder = ManifestDecoder(reader: EventReader(bytes: bytes, aliasBudget: aliasBudget), file: input.id)
            let documents = DocumentDecoder(
                decoder: decoder, implicitRegion: ManifestLayout.implicitRegion(of: input.path))
            var model = DesiredModel()
            let complete = documents.decodeStream(into: &model)
            model.stampDigests(path: input.path, bytes: bytes)
            if kept { model = model.fitted() }
            results[index] = FileResult(model: model, diagnostics: decoder.diagnostics, stoppedEarly: !complete, lostNames: decoder.lostNames,
                                        planDigests: model.planDigests)
        }
        return results.values
    }

    static func diagnostic(for refusal: SourceInput.Refusal, at location: SourceLocation) -> Diagnostic {
        switch refusal {
        case .tooLarge(let size, let limit):
            return .error("file is \(Self.mebibytes(size)) MiB, larger than the \(Self.mebibytes(limit)) MiB limit for one manifest",
                          at: location, hint: "split it into several files (or raise --max-file-size if it is really meant)")
        case .symlinkOutside(let target):
            return .error("symbolic link to '\(target)' points outside the manifest directories (manifests/, regions/, ci/)", at: location,
                          hint: "manifests must live in the repository; copy the file in instead of linking to it")
        case .symlinkDangling(let target):
            return .error("symbolic link to '\(target)' points to no file", at: location, hint: "fix or remove the link")
        case .unreadable(let reason):
            return .error("cannot read file: \(reason)", at: location)
        }
    }

    private static func mebibytes(_ bytes: Int) -> String {
        let tenths = (bytes.multipliedReportingOverflow(by: 10).partialValue.saturatingAdd(1 << 19)) >> 20
        return "\(tenths / 10).\(tenths % 10)"
    }

    static func order(_ a: Diagnostic, _ b: Diagnostic, fileRank: (FileID) -> Int) -> Bool {
        switch (a.location, b.location) {
        case (nil, nil): return a.message < b.message
        case (nil, _): return true
        case (_, nil): return false
        case (let x?, let y?):
            guard x != y else { return a.message < b.message }
            return (fileRank(x.file), x.line, x.column) < (fileRank(y.file), y.line, y.column)
        }
    }
}

extension Loader {
    /// The instance positions of the files at `replaced` (ascending) in a model merged from files with `counts`, when each
    /// of them holds as many instances in `decoded` as before (then no other instance moved); nil otherwise.
    static func instanceRanges(of replaced: [Int], counts: [[Int]], decoded: [FileResult]) -> [Range<Int>]? {
        let kind = DesiredModel.instanceKind
        var ranges: [Range<Int>] = []
        var offset = 0, next = 0
        for file in replaced {
            while next < file {
                offset += counts[next][kind]
                next += 1
            }
            guard decoded[file].model.instances.count == counts[file][kind] else { return nil }
            ranges.append(offset..<(offset + counts[file][kind]))
        }
        return ranges
    }
}

/// What an incremental load keeps between revisions: every file's bytes under an id that never changes for its
/// path, each file's decode result with the digest it was decoded from, and each region's instance findings.
public final class DecodeCache {
    struct Entry {
        var digest: String
        var result: Loader.FileResult
    }

    /// The files of the last load (paths gone since keep their id, with no bytes).
    public internal(set) var files = SourceFiles()
    private(set) var idByPath: [String: FileID] = [:]
    /// Each file's kept decode, by id (`FileID.index`).
    private(set) var entries: [Entry?] = []
    /// The plan digests of every entry, added up, and how many entries add to each region's.
    private(set) var digests = PlanDigests()
    private var regionEntries: [String: Int] = [:]
    /// Files decoded and reused by the last load.
    public internal(set) var lastDecoded = 0
    public internal(set) var lastReused = 0
    /// Whether the last load's model was the one before with the changed files' runs replaced (the same files in the
    /// same order), not merged anew from every file.
    public internal(set) var lastSpliced = false
    /// Each region's instance findings (validation), kept while the region's instances and everything else
    /// are unchanged.
    public let validation = ValidationCache()

    /// An empty cache.
    public init() {}

    /// Blob ids held, by path: what a `GitSource` may leave out.
    public private(set) var known: [String: String] = [:]

    /// The last load, as one that applies `SourceChanges` to it needs it: the tree it was, every file's path and
    /// result in path order, the refusals, and which results `finish` must look at.
    struct Last {
        var tree: String
        var order: [(id: FileID, path: String)]
        var results: [Loader.FileResult]
        var refusals: [Diagnostic]
        var flagged: Set<Int>
        /// Each file id's place in `order` (-1: none).
        private var slots: [Int32]

        init(tree: String, order: [(id: FileID, path: String)], results: [Loader.FileResult], refusals: [Diagnostic], flagged: Set<Int>) {
            self.tree = tree
            self.order = order
            self.results = results
            self.refusals = refusals
            self.flagged = flagged
            slots = [Int32](repeating: -1, count: Int(order.map(\.id.index).max() ?? 0) + 1)
            for (slot, entry) in order.enumerated() { slots[Int(entry.id.index)] = Int32(slot) }
        }

        func slot(of id: FileID) -> Int? {
            let index = Int(id.index)
            return index < slots.count && slots[index] >= 0 ? Int(slots[index]) : nil
        }
    }
    var last: Last?

    /// Whether a model is kept (`takeMerged`).
    var hasMerged: Bool { merged != nil }

    /// The id of `path`, when it has one.
    func existingID(for path: String) -> FileID? { idByPath[path] }

    func id(for path: String) -> FileID {
        if let id = idByPath[path] { return id }
        let id = files.add(SourceFile(path: path, bytes: []))
        idByPath[path] = id
        while entries.count < files.count { entries.append(nil) }
        return id
    }

    /// The last load's model, the paths it was merged from in order, and each one's `kindCounts`: the next load
    /// replaces only the runs of the files that changed (`DesiredModel.splice`).
    private var merged: (model: DesiredModel, paths: [String], counts: [[Int]])?

    /// The kept model, no longer kept: once the caller let go of the last load's, its columns are this one's alone and
    /// are spliced in place.
    func takeMerged() -> (model: DesiredModel, paths: [String], counts: [[Int]])? {
        defer { merged = nil }
        return merged
    }

    func keepMerged(_ model: DesiredModel, paths: [String], counts: [[Int]]) {
        merged = (model, paths, counts)
    }

    /// Sets (or with nil removes) the decode kept for file `id`, keeping `digests` their sum.
    func setEntry(_ entry: Entry?, for id: FileID) {
        if let old = entries[Int(id.index)] { digests.subtract(old.result.planDigests, counts: &regionEntries) }
        if let entry { digests.add(entry.result.planDigests, counts: &regionEntries) }
        entries[Int(id.index)] = entry
        known[files[id].path] = entry?.digest
    }

    /// Each id's position in path order (diagnostics are ordered by path), made again only when a path got an id.
    func rank() -> [Int] {
        if let ranked, ranked.count == files.count { return ranked }
        var rank = [Int](repeating: 0, count: files.count)
        for (position, id) in idByPath.sorted(by: { $0.key < $1.key }).map(\.value).enumerated() { rank[Int(id.index)] = position }
        ranked = rank
        return rank
    }
    private var ranked: [Int]?

    func idsByDigest() -> [String: FileID] {
        var ids: [String: FileID] = [:]
        for file in idByPath.values { if let digest = files[file].digest { ids[digest] = file } }
        return ids
    }
}
