import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Manifests
import Planning

/// An instance's graphs (Sina's console: CPU utilization, disk read and write, network in and out over a time range),
/// drawn by StackLab as SVG from the recorded series a real Prometheus keeps (`stacklab monitoring config`).
struct InstanceGraphs {
    /// A time range a page shows: its name, length and step (120 points).
    enum Range: String, CaseIterable {
        case fiveMinutes = "5m", hour = "1h", day = "24h", week = "7d"

        var seconds: Int {
            switch self {
            case .fiveMinutes: 300
            case .hour: 3_600
            case .day: 86_400
            case .week: 604_800
            }
        }
        var step: Int { seconds / 120 }
    }

    /// One graph: what was asked of Prometheus, and the points it answered.
    struct Graph {
        var title: String
        var unit: String
        var query: String
        var start: Int
        var end: Int
        var step: Int
        var points: [(time: Int, value: Double)]
    }

    /// The graphs of `instance` over `range` ending at `end`, each from one `query_range` (5 s deadline each).
    static func graphs(of instance: Address, range: Range, end: Int, prometheus: String) throws -> [Graph] {
        let selector = "{region=\(MonitoringConfig.quote(instance.region ?? "")),tenant=\(MonitoringConfig.quote(instance.tenant ?? "")),server=\(MonitoringConfig.quote(instance.name))}"
        let start = end - range.seconds
        return try [(AlarmMetric.cpu, "CPU", "%"), (.diskRead, "Disk read", "B/s"), (.diskWrite, "Disk write", "B/s"),
                    (.networkIn, "Network in", "B/s"), (.networkOut, "Network out", "B/s")].map { metric, title, unit in
            let query = MonitoringConfig.series(metric).record + selector
            return Graph(title: title, unit: unit, query: query, start: start, end: end, step: range.step,
                         points: try queryRange(prometheus, query: query, start: start, end: end, step: range.step))
        }
    }

    /// `GET /api/v1/query_range`: the first series' points (none when no series matches).
    static func queryRange(_ prometheus: String, query: String, start: Int, end: Int, step: Int) throws -> [(time: Int, value: Double)] {
        let data = try get(prometheus, path: "/api/v1/query_range", query: [("query", query), ("start", "\(start)"), ("end", "\(end)"), ("step", "\(step)")])
        return try points(data)
    }

    /// A GET of Prometheus's API with a 5 s deadline: the body.
    static func get(_ prometheus: String, path: String, query: [(String, String)]) throws -> Data {
        var components = URLComponents(string: (prometheus.hasSuffix("/") ? String(prometheus.dropLast()) : prometheus) + path)
        if !query.isEmpty { components?.queryItems = query.map { URLQueryItem(name: $0.0, value: $0.1) } }
        // `+` is a space in a query string: PromQL's own plus signs must stay plus signs.
        let encoded = components?.percentEncodedQuery?.replacingOccurrences(of: "+", with: "%2B")
        components?.percentEncodedQuery = encoded
        guard let url = components?.url else { throw GraphError(message: "'\(prometheus)' is not a URL") }
        final class Box: @unchecked Sendable { var data: Data?; var status = 0; var error: (any Error)? }  // written before `done` is signalled
        let box = Box()
        let done = DispatchSemaphore(value: 0)
        URLSession.shared.dataTask(with: URLRequest(url: url, timeoutInterval: 5)) { data, response, error in
            box.data = data
            box.status = (response as? HTTPURLResponse)?.statusCode ?? 0
            box.error = error
            done.signal()
        }.resume()
        guard done.wait(timeout: .now() + 6) == .success else { throw GraphError(message: "Prometheus did not answer within 5 s") }
        if let error = box.error { throw GraphError(message: "cannot reach Prometheus: \(error.localizedDescription)") }
        guard let data = box.data else { throw GraphError(message: "Prometheus answered \(box.status) with nothing") }
        return data
    }

    /// The first series' points of a `query_range` answer.
    static func points(_ data: Data) throws -> [(time: Int, value: Double)] {
        struct Answer: Decodable {
            struct Payload: Decodable {
                struct Series: Decodable { var values: [[Value]] }
                var result: [Series]
            }
            enum Value: Decodable {
                case number(Double), text(String)
                init(from decoder: any Decoder) throws {
                    let container = try decoder.singleValueContainer()
                    if let number = try? container.decode(Double.self) { self = .number(number) } else { self = .text(try container.decode(String.self)) }
                }
            }
            var status: String
            var data: Payload?
            var error: String?
        }
        guard let answer = try? JSONDecoder().decode(Answer.self, from: data) else {
            throw GraphError(message: "Prometheus answered with no query result")
        }
        guard answer.status == "success", let series = answer.data?.result.first else {
            if let error = answer.error { throw GraphError(message: "Prometheus refused the query: \(error)") }
            return []
        }
        return series.values.compactMap { pair in
            guard pair.count == 2, case .number(let time) = pair[0], case .text(let text) = pair[1], let value = Double(text), value.isFinite else { return nil }
            return (Int(time), value)
        }
    }

    struct GraphError: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }

    /// One graph as SVG: a polyline over the range (time left to right, 0 to the largest value bottom to top), the
    /// query and every point kept in data attributes (what a test compares with Prometheus's own answer).
    static func svg(_ graph: Graph) -> String {
        let width = 600.0, height = 150.0
        let top = max(graph.points.map(\.value).max() ?? 0, graph.unit == "%" ? 100 : 1)
        let span = Double(max(1, graph.end - graph.start))
        let coordinates = graph.points.map { point in
            String(format: "%.1f,%.1f", Double(point.time - graph.start) / span * width, height - point.value / top * height)
        }.joined(separator: " ")
        let values = graph.points.map { "\($0.time):\($0.value)" }.joined(separator: " ")
        let latest = graph.points.last.map { String(format: "%.1f", $0.value) + " " + graph.unit } ?? "no data"
        return """
            <figure class="graph"><figcaption>\(escape(graph.title)) (\(escape(graph.unit))): \(escape(latest))</figcaption>
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))" \
            data-query="\(escape(graph.query))" data-start="\(graph.start)" data-end="\(graph.end)" data-step="\(graph.step)" data-values="\(values)">
            <rect width="100%" height="100%" fill="#f7f7f7"/><polyline fill="none" stroke="#2a6" stroke-width="2" points="\(coordinates)"/></svg></figure>

            """
    }

    static func escape(_ text: String) -> String { Dashboard.escapeHTML(text) }
}

/// The state of each tenant alarm from Prometheus's `/api/v1/alerts` (Sina's console: "Alarm: 3 of 3 in OK"): per
/// instance it watches, `firing`, `pending`, or `ok` when Prometheus has no alert for it.
public struct AlarmState: Sendable, Codable, Equatable {
    public var alarm: String
    /// Instance name → `ok`, `pending` or `firing`.
    public var instances: [String: String]

    /// "2 of 2 OK", "1 of 2 firing".
    public var summary: String {
        let firing = instances.values.count { $0 == "firing" }, pending = instances.values.count { $0 == "pending" }
        if firing > 0 { return "\(firing) of \(instances.count) firing" }
        if pending > 0 { return "\(pending) of \(instances.count) pending" }
        return "\(instances.count) of \(instances.count) OK"
    }

    /// Every alarm of `alarms`, from the alerts `prometheus` has now.
    public static func read(_ alarms: [Resource<AlarmSpec>], prometheus: String) throws -> [AlarmState] {
        struct Answer: Decodable {
            struct Payload: Decodable { var alerts: [Alert] }
            struct Alert: Decodable { var labels: [String: String]; var state: String }
            var status: String
            var data: Payload?
        }
        let data = try InstanceGraphs.get(prometheus, path: "/api/v1/alerts", query: [])
        guard let answer = try? JSONDecoder().decode(Answer.self, from: data), answer.status == "success" else {
            throw InstanceGraphs.GraphError(message: "Prometheus answered /api/v1/alerts with no alert list")
        }
        var states: [String: [String: String]] = [:]
        for alert in answer.data?.alerts ?? [] where alert.labels["alertname"] == "StackLabAlarm" {
            guard let alarm = alert.labels["alarm"], let server = alert.labels["server"] else { continue }
            if states[alarm]?[server] != "firing" { states[alarm, default: [:]][server] = alert.state }
        }
        return alarms.sorted { $0.address < $1.address }.map { alarm in
            let name = "\(alarm.tenant ?? "")/\(alarm.name)"
            let found = states[name] ?? [:]
            return AlarmState(alarm: alarm.address.description,
                              instances: Dictionary(uniqueKeysWithValues: alarm.spec.instances.value.map { ($0.value, found[$0.value] ?? "ok") }))
        }
    }
}
