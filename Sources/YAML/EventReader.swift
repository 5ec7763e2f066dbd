/// Pulls events from an `EventParser`, with one event of look-ahead, and expands aliases by replaying the
/// anchored node's events. Every replayed event counts against `aliasBudget`, so an alias bomb
/// ("billion laughs") is refused after a bounded amount of work and memory.
///
/// Every stored property is accessed only by the reader's own methods, each access complete before the next begins
/// (no closure runs inside one), so the runtime's exclusivity checks are left out of these hot paths.
public final class EventReader {
    private let parser: EventParser
    @exclusivity(unchecked) private var peeked: Event?
    /// A stream the block-style scanner took (empty when libyaml parses it), read straight from its array: it has
    /// no aliases or anchors to track.
    private let scanned: ArraySlice<Event>
    private let fromScanner: Bool
    @exclusivity(unchecked) private var scannedIndex: Int
    @exclusivity(unchecked) private var replay: [Event] = []
    @exclusivity(unchecked) private var replayIndex = 0
    private var anchors: [String: [Event]] = [:]
    private var recordings: [(name: String, depth: Int, events: [Event])] = []
    private var depth = 0
    private var replayed = 0
    private var recorded = 0
    /// The most events that alias expansion may add to one stream.
    public let aliasBudget: Int
    /// The most events anchor recordings may hold in one stream (nested anchors record every event once per open
    /// anchor: 3,000 nested anchors in a 1 MiB file would otherwise take gigabytes).
    public var recordingBudget: Int
    /// The deepest nesting of collections accepted (manifests need a handful of levels; libyaml's scanner slows down
    /// quadratically with flow nesting, so a bound here keeps a hostile file cheap).
    public static let maxDepth = 256

    /// Reads from `parser`, allowing at most `aliasBudget` events to be added by alias expansion and ten times that
    /// to be held by anchor recordings.
    public init(parser: EventParser, aliasBudget: Int = 100_000) {
        self.parser = parser
        let taken = parser.takeScanned()
        fromScanner = taken != nil
        scanned = taken ?? []
        scannedIndex = scanned.startIndex
        self.aliasBudget = aliasBudget
        recordingBudget = aliasBudget.multipliedReportingOverflow(by: 10).overflow ? .max : aliasBudget * 10
    }

    /// Convenience: parse `bytes`.
    public convenience init(bytes: some Collection<UInt8>, aliasBudget: Int = 100_000) {
        self.init(parser: EventParser(bytes: bytes), aliasBudget: aliasBudget)
    }

    /// The next event without consuming it.
    public func peek() throws(YAMLError) -> Event {
        if let peeked { return peeked }
        let event = try produce()
        peeked = event
        return event
    }

    /// The next event, consumed.
    public func next() throws(YAMLError) -> Event {
        if fromScanner, peeked == nil, replayIndex == replay.count {
            let event = scanned[scannedIndex]
            if event.kind != .streamEnd { scannedIndex += 1 }
            return event
        }
        if let event = peeked {
            peeked = nil
            return event
        }
        return try produce()
    }

    /// The kind of the next event, without consuming it.
    public func peekKind() throws(YAMLError) -> Event.Kind {
        if fromScanner, peeked == nil, replayIndex == replay.count { return scanned[scannedIndex].kind }
        if let peeked { return peeked.kind }
        let event = try produce()
        peeked = event
        return event.kind
    }

    /// Consumes the node that starts at the next event (a scalar, or a whole collection).
    public func skipNode() throws(YAMLError) {
        let first = try next()
        guard first.opensCollection else { return }
        try skipRest(of: first)
    }

    /// Consumes the rest of a collection whose opening event `start` was already read.
    public func skipRest(of start: Event) throws(YAMLError) {
        guard start.opensCollection else { return }
        var level = 1
        while level > 0 {
            let event = try next()
            if event.opensCollection { level += 1 } else if event.closesCollection { level -= 1 }
            if event.kind == .streamEnd { return }
        }
    }

    /// Consumes the node that starts at the next event and returns its events (aliases already expanded),
    /// to be decoded later with `replay(_:)`.
    public func captureNode() throws(YAMLError) -> [Event] {
        var events = [try next()]
        guard events[0].opensCollection else { return events }
        var level = 1
        while level > 0 {
            let event = try next()
            events.append(event)
            if event.opensCollection { level += 1 } else if event.closesCollection { level -= 1 }
            if event.kind == .streamEnd { break }
        }
        return events
    }

    /// Makes `events` (from `captureNode`) the next events to be read, before the rest of the stream.
    public func replay(_ events: [Event]) {
        var pending = events
        if let peeked {
            pending.append(peeked)
            self.peeked = nil
        }
        if replayIndex < replay.count { pending += replay[replayIndex...] }
        replay = pending
        replayIndex = 0
    }

    private func produce() throws(YAMLError) -> Event {
        if fromScanner, replayIndex == replay.count {
            let event = scanned[scannedIndex]
            if event.kind != .streamEnd { scannedIndex += 1 }
            return event
        }
        let event: Event
        let replaying = replayIndex < replay.count
        if replaying {
            event = replay[replayIndex]
            replayIndex += 1
        } else {
            let parsed = try parser.next()
            if parsed.kind == .alias {
                guard let events = anchors[parsed.value] else {
                    throw YAMLError(message: "alias '*\(parsed.value)' refers to no anchor defined before it",
                                    mark: parsed.mark, hint: "define '&\(parsed.value)' earlier in the same document")
                }
                replayed += events.count
                guard replayed <= aliasBudget else {
                    throw YAMLError(
                        message: "aliases expand to more than \(aliasBudget) YAML events",
                        mark: parsed.mark,
                        hint: "this looks like an alias bomb; write the values out instead of nesting aliases")
                }
                replay = events
                replayIndex = 0
                return try produce()
            }
            if parsed.kind == .documentStart { anchors.removeAll(keepingCapacity: true) }
            event = parsed
        }
        record(event, replayed: replaying)
        if depth > Self.maxDepth {
            throw YAMLError(message: "collections nest deeper than \(Self.maxDepth) levels", mark: event.mark,
                            hint: "manifests need only a few levels of nesting; flatten this structure")
        }
        if recorded > recordingBudget {
            throw YAMLError(message: "anchors hold more than \(recordingBudget) YAML events", mark: event.mark,
                            hint: "this looks like nested anchors built to exhaust memory; write the values out instead")
        }
        return event
    }

    /// Appends `event` to every open anchor recording; anchors inside replayed events were registered
    /// when they were first parsed, so replays only feed the recordings that enclose them.
    private func record(_ event: Event, replayed: Bool) {
        for index in recordings.indices { recordings[index].events.append(event) }
        recorded += recordings.count
        if event.opensCollection {
            if let anchor = event.anchor, !replayed {
                recordings.append((anchor, depth, [event]))
            }
            depth += 1
        } else if event.closesCollection {
            depth -= 1
            while let last = recordings.last, last.depth == depth {
                anchors[last.name] = last.events
                recordings.removeLast()
            }
        } else if event.kind == .scalar, let anchor = event.anchor, !replayed {
            anchors[anchor] = [event]
        }
    }
}
