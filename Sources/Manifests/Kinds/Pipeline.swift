import YAML

/// A CI pipeline from `ci/`: what triggers it, then its steps in order.
public struct PipelineSpec: ResourceSpec, DecodableSpec {
    public static let kind = Kind.pipeline
    static let fields = ["trigger", "steps"]

    /// What starts a pipeline.
    public enum Event: String, Sendable, CaseIterable, Codable {
        case changeProposed = "change-proposed", changeApproved = "change-approved", push
    }

    /// What a `check` step expects of a region.
    public enum Expectation: String, Sendable, CaseIterable, Codable {
        case noDrift = "no-drift", running, reachable, ringsBalanced = "rings-balanced"
    }

    /// One step.
    public enum Step: Sendable, Encodable {
        /// Validate the manifests.
        case validate
        /// Plan the regions named (every region when nil); touches nothing.
        case plan(regions: [Located<String>]?)
        /// Apply one region.
        case apply(region: Located<String>)
        /// Check a region: each expectation must hold.
        case check(region: Located<String>, expect: [Located<Expectation>])
        /// Let a region soak for a while before going on.
        case wait(minutes: Located<Int>)
        /// Wait for a person's approval.
        case approve

        static let names = ["validate", "plan", "apply", "check", "wait", "approve"]

        /// The region a step acts on, if one.
        public var region: Located<String>? {
            switch self {
            case .apply(let region), .check(let region, _): region
            case .validate, .plan, .wait, .approve: nil
            }
        }
    }

    /// The trigger's event, and the branch for `push`.
    public var event: Located<Event>?
    public var branch: Located<String>?
    /// The steps, in order.
    public var steps: Located<[Located<Step>]>

    static func decode(from d: ManifestDecoder, what: @autoclosure () -> String) throws(YAMLError) -> PipelineSpec? {
        var event: Located<Event>?, branch: Located<String>?, steps: Located<[Located<Step>]>?
        guard try d.mapping(what(), required: ["trigger", "steps"], { key throws(YAMLError) in
            switch key.value {
            case "trigger":
                try d.mapping("the trigger", required: ["event"]) { field throws(YAMLError) in
                    switch field.value {
                    case "event": event = try d.choice("event", Event.self)
                    case "branch": branch = try d.string("branch")
                    default: try d.unknownField(field, in: "the trigger", known: ["event", "branch"])
                    }
                }
            case "steps": steps = try d.list("steps") { () throws(YAMLError) in try decodeStep(d) }
            default: try d.unknownField(key, in: what(), known: fields)
            }
        }) != nil, let steps else { return nil }
        return PipelineSpec(event: event, branch: branch, steps: steps)
    }

    /// A step: a bare word (`validate`, `approve`) or a one-key mapping (`apply: {region: sina}`).
    private static func decodeStep(_ d: ManifestDecoder) throws(YAMLError) -> Located<Step>? {
        if try d.reader.peekKind() == .scalar {
            guard let word = try d.string("a step") else { return nil }
            switch word.value {
            case "validate": return Located(.validate, at: word.location)
            case "approve": return Located(.approve, at: word.location)
            case "plan": return Located(.plan(regions: nil), at: word.location)
            default:
                d.diagnostics.append(.error("'\(word.value)' is not a step that stands alone", at: word.location,
                                            hint: Step.names.contains(word.value) ? "'\(word.value)' takes settings, e.g. \(word.value): {region: staging}"
                                                : "steps are: \(Step.names.joined(separator: ", "))"))
                return nil
            }
        }
        var step: Located<Step>?
        var count = 0
        guard let mapping = try d.mapping("a step", { key throws(YAMLError) in
            count += 1
            switch key.value {
            case "plan": step = try decodePlan(d).map { Located($0, at: key.location) }
            case "validate", "approve":
                try d.mapping("a \(key.value) step") { field throws(YAMLError) in try d.unknownField(field, in: "a \(key.value) step", known: []) }
                step = Located(key.value == "validate" ? .validate : .approve, at: key.location)
            case "apply":
                var region: Located<String>?
                try d.mapping("an apply step", required: ["region"]) { field throws(YAMLError) in
                    if field.value == "region" { region = try d.name("region") } else { try d.unknownField(field, in: "an apply step", known: ["region"]) }
                }
                step = region.map { Located(.apply(region: $0), at: key.location) }
            case "check":
                var region: Located<String>?, expect: [Located<Expectation>] = []
                try d.mapping("a check step", required: ["region"]) { field throws(YAMLError) in
                    switch field.value {
                    case "region": region = try d.name("region")
                    case "expect":
                        if try d.reader.peekKind() == .scalar {
                            if let one = try d.choice("expect", Expectation.self) { expect = [one] }
                        } else {
                            expect = try d.list("expect") { () throws(YAMLError) in try d.choice("expect", Expectation.self) }?.value ?? []
                        }
                    default: try d.unknownField(field, in: "a check step", known: ["region", "expect"])
                    }
                }
                step = region.map { Located(.check(region: $0, expect: expect), at: key.location) }
            case "wait":
                var minutes: Located<Int>?
                try d.mapping("a wait step", required: ["minutes"]) { field throws(YAMLError) in
                    if field.value == "minutes" { minutes = try d.int("minutes", in: 1...10_080) } else { try d.unknownField(field, in: "a wait step", known: ["minutes"]) }
                }
                step = minutes.map { Located(.wait(minutes: $0), at: key.location) }
            default: try d.unknownField(key, in: "a step", known: Step.names)
            }
        }) else { return nil }
        if count > 1 {
            d.error("a step has one kind; this one has \(count)", at: mapping.mark, hint: "write each step as its own list item")
            return nil
        }
        return step
    }

    private static func decodePlan(_ d: ManifestDecoder) throws(YAMLError) -> Step? {
        var regions: [Located<String>]?
        try d.mapping("a plan step") { field throws(YAMLError) in
            guard field.value == "regions" else { return try d.unknownField(field, in: "a plan step", known: ["regions"]) }
            if try d.reader.peekKind() == .scalar {
                guard let all = try d.string("regions") else { return }
                if all.value == "all" { regions = nil } else { regions = [all] }
            } else {
                regions = try d.list("regions") { () throws(YAMLError) in try d.name("regions") }?.value
            }
        }
        return .plan(regions: regions)
    }
}
