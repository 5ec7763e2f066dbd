import Dispatch
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
                let id = files.add(SourceFile(path: input.path, bytes: bytes))
                parseable.append((id, input.path))
            case .failure(let refusal):
                let id = files.add(SourceFile(path: input.path, bytes: []))
                diagnostics.append(Self.diagnostic(for: refusal.refusal, at: SourceLocation(file: id, line: 1, column: 1)))
            }
        }
        let decodeStart = Clock.now
        let parsed = parseAll(parseable, files: files)
        var model = DesiredModel()
        for result in parsed {
            model.append(contentsOf: result.model)
            diagnostics += result.diagnostics
        }
        let decodeSeconds = Clock.seconds(since: decodeStart)
        let validateStart = Clock.now
        if validate {
            // A region whose own files did not parse is not reported as undeclared by everything that names it.
            let unreadableRegions = Set(parsed.indices.compactMap { i in
                parsed[i].stoppedEarly ? ManifestLayout.implicitRegion(of: parseable[i].path) : nil
            })
            diagnostics += Validator(model: model, files: files, unreadableRegions: unreadableRegions).run()
        }
        diagnostics.sort(by: Self.order)
        var result = LoadResult(model: model, files: files, diagnostics: diagnostics, revision: snapshot.revision)
        result.timings.decode = decodeSeconds
        result.timings.validate = Clock.seconds(since: validateStart)
        return result
    }

    private struct FileResult: Sendable {
        var model = DesiredModel()
        var diagnostics: [Diagnostic] = []
        /// Whether a syntax error or limit ended decoding before the end of the file.
        var stoppedEarly = false
    }

    /// Decodes files on `parallelism` threads; results come back in file order, so output is deterministic.
    private func parseAll(_ inputs: [(id: FileID, path: String)], files: SourceFiles) -> [FileResult] {
        let workers = max(1, min(limits.parallelism > 0 ? limits.parallelism : System.coreCount, inputs.count))
        let results = ResultSlots<FileResult>(count: inputs.count)
        let aliasBudget = limits.aliasBudget
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            var index = worker
            while index < inputs.count {
                let input = inputs[index]
                let decoder = ManifestDecoder(
                    reader: EventReader(bytes: files[input.id].bytes, aliasBudget: aliasBudget), file: input.id)
                let documents = DocumentDecoder(
                    decoder: decoder, implicitRegion: ManifestLayout.implicitRegion(of: input.path),
                    isPipelineFile: input.path.hasPrefix("ci/"))
                var model = DesiredModel()
                let complete = documents.decodeStream(into: &model)
                results[index] = FileResult(model: model, diagnostics: decoder.diagnostics, stoppedEarly: !complete)
                index += workers
            }
        }
        return results.values
    }

    static func diagnostic(for refusal: SourceInput.Refusal, at location: SourceLocation) -> Diagnostic {
        switch refusal {
        case .tooLarge(let size, let limit):
            return .error("file is \(Self.mebibytes(size)) MiB, larger than the \(Self.mebibytes(limit)) MiB limit for one manifest",
                          at: location, hint: "split it into several files (or raise --max-file-size if it is really meant)")
        case .symlinkOutside(let target):
            return .error("symbolic link to '\(target)' points outside the repository", at: location,
                          hint: "manifests must live in the repository; copy the file in instead of linking to it")
        case .symlinkDangling(let target):
            return .error("symbolic link to '\(target)' points to no file", at: location, hint: "fix or remove the link")
        case .unreadable(let reason):
            return .error("cannot read file: \(reason)", at: location)
        }
    }

    private static func mebibytes(_ bytes: Int) -> String {
        let tenths = (bytes * 10 + (1 << 19)) >> 20
        return "\(tenths / 10).\(tenths % 10)"
    }

    static func order(_ a: Diagnostic, _ b: Diagnostic) -> Bool {
        switch (a.location, b.location) {
        case (nil, nil): return a.message < b.message
        case (nil, _): return true
        case (_, nil): return false
        case (let x?, let y?): return x != y ? x < y : a.message < b.message
        }
    }
}

/// Slots written by parallel workers, each index by exactly one worker, read after they all finish.
///
/// `@unchecked Sendable`: every index is written by one worker only, and reads happen after
/// `concurrentPerform` returns, which orders them after all writes.
public final class ResultSlots<Value>: @unchecked Sendable {
    private var slots: [Value?]

    /// `count` empty slots.
    public init(count: Int) {
        slots = Array(repeating: nil, count: count)
    }

    /// One slot; each index must be written by one worker only.
    public subscript(index: Int) -> Value? {
        get { slots[index] }
        set {
            slots.withUnsafeMutableBufferPointer { $0[index] = newValue }
        }
    }

    /// Every slot's value, once all are written.
    public var values: [Value] { slots.map { $0! } }
}
