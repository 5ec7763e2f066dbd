import YAML

/// What an alarm watches on each of its instances (Sina's console: CPU utilization, disk read and write, network).
public enum AlarmMetric: String, Sendable, CaseIterable, Codable {
    /// CPU utilization in percent of one CPU (a guest using two vCPUs fully is at 200).
    case cpu
    /// Bytes per second read and written by the instance's disks.
    case diskRead, diskWrite
    /// Bytes per second received and sent by the instance's interfaces.
    case networkIn, networkOut

    /// Whether its threshold is a rate of bytes (`10MiB` meaning 10 MiB/s) rather than a percentage.
    public var isByteRate: Bool { self != .cpu }
}

/// A tenant's alarm: a metric over some of its instances above a threshold for a while, notified to a webhook the
/// region allows. Rendered as a Prometheus alerting rule and an Alertmanager route (`stacklab monitoring config`).
public struct AlarmSpec: ResourceSpec, DecodableSpec {
    public static let kind = Kind.alarm
    static let fields = ["instances", "metric", "above", "for", "notify"]

    /// The tenant's instances in the alarm's region it watches, by name.
    public var instances: Located<[Located<String>]>
    public var metric: Located<AlarmMetric>
    /// The threshold: percent for `cpu`, bytes per second for the others.
    public var above: Located<Double>
    /// Seconds the metric must stay above before the alarm fires (default 300).
    public var forSeconds: Located<Int>?
    /// The webhook Alertmanager posts to (its host must be one the region's `alarmWebhooks` allows).
    public var notify: Located<String>

    /// The duration in force.
    public var effectiveForSeconds: Int { forSeconds?.value ?? 300 }

    private enum CodingKeys: String, CodingKey { case instances, metric, above, forSeconds = "for", notify }

    static func decode(from d: ManifestDecoder, what: @autoclosure () -> String) throws(YAMLError) -> AlarmSpec? {
        var instances: Located<[Located<String>]>?, metric: Located<AlarmMetric>?, above: Located<String>?
        var duration: Located<Int>?, notify: Located<String>?
        guard try d.mapping(what(), required: ["instances", "metric", "above", "notify"], { key throws(YAMLError) in
            switch key.value {
            case "instances": instances = try d.list("instances") { () throws(YAMLError) in try d.name("instances") }
            case "metric": metric = try d.choice("metric", AlarmMetric.self)
            case "above": above = try d.string("above")
            case "for":
                duration = try d.parsed("for", expected: "a duration like 30s, 5m or 1h", hint: "write e.g. 5m (at least 1s, at most 7d)") { Self.seconds($0) }
            case "notify":
                notify = try d.parsed("notify", expected: "an http:// or https:// URL", hint: "write e.g. https://hooks.example.org/alerts") { text in
                    AlarmSpec.host(of: text) != nil ? text : nil
                }
            default: try d.unknownField(key, in: what(), known: fields)
            }
        }) != nil, let instances, let metric, let above, let notify else { return nil }
        // The threshold's form depends on the metric: a number (percent) for cpu, a size per second for the others.
        let threshold: Double?
        if metric.value.isByteRate {
            threshold = ByteSize(parsing: above.value).map { Double($0.bytes) }
            if threshold == nil {
                d.report(.error("expected a size per second for 'above' of a \(metric.value.rawValue) alarm, found '\(above.value)'", at: above.location,
                                hint: "write e.g. 10MiB (meaning 10 MiB/s)"))
            }
        } else {
            threshold = Double(above.value).flatMap { $0 > 0 && $0 <= 100_000 ? $0 : nil }
            if threshold == nil {
                d.report(.error("expected a percentage for 'above' of a cpu alarm, found '\(above.value)'", at: above.location,
                                hint: "write e.g. 80 (percent of one CPU; a guest using two vCPUs fully is at 200)"))
            }
        }
        guard let threshold else { return nil }
        return AlarmSpec(instances: instances, metric: metric, above: Located(threshold, at: above.location), forSeconds: duration, notify: notify)
    }

    /// `30s` → 30, `5m` → 300, `1h` → 3600, `1d` → 86400; nil outside 1 s…7 d or for anything else.
    static func seconds(_ text: String) -> Int? {
        guard let unit = text.last, let count = Int(text.dropLast()), count > 0, text.count <= 8 else { return nil }
        let scale: Int
        switch unit {
        case "s": scale = 1
        case "m": scale = 60
        case "h": scale = 3_600
        case "d": scale = 86_400
        default: return nil
        }
        let value = count * scale
        return value <= 7 * 86_400 ? value : nil
    }

    /// The host (and port, when given) of an http(s) URL without credentials or spaces; nil for anything else.
    public static func host(of url: String) -> String? {
        let rest: Substring
        if url.hasPrefix("https://") { rest = url.dropFirst(8) } else if url.hasPrefix("http://") { rest = url.dropFirst(7) } else { return nil }
        let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        guard !authority.isEmpty, !authority.contains("@"), url.utf8.count <= 2048,
              !url.unicodeScalars.contains(where: { $0.value <= 0x20 || $0.value == 0x7F }) else { return nil }
        return authority.lowercased()
    }
}
