import Billing
import Foundation
import Manifests
import Planning

/// Which pipeline a run was: a change checked, changes gated, or a revision rolled out.
public enum PipelineKind: String, Sendable, Codable {
    case check, gate, deploy
}

/// A pipeline run's verdict: Verified +1, -1, or none yet (a deploy the service is rolling out).
public enum Verdict: Int, Sendable, Codable, Comparable {
    case failed = -1
    case running = 0
    case passed = 1

    /// `+1`, `-1`, or `running`.
    public var label: String {
        switch self {
        case .passed: "+1"
        case .failed: "-1"
        case .running: "running"
        }
    }

    public static func < (lhs: Verdict, rhs: Verdict) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// One step of a pipeline run, as kept.
public struct PipelineStep: Sendable, Codable, Equatable {
    /// The step as written (`apply: {region: staging}`).
    public var name: String
    public var status: Status
    public var seconds: Double
    /// Why it failed (or what it found).
    public var message: String
    /// What it printed.
    public var log: String
    /// When it started (seconds since the epoch), for a step the service runs over several looks (`apply` waiting
    /// for the region's holder, `wait`).
    public var startedAt: Double?
    /// The region an `apply` step releases the revision to (nil for other steps).
    public var region: String?

    /// `pending` and `running` only appear in a deploy the service is rolling out.
    public enum Status: String, Sendable, Codable { case passed, failed, skipped, pending, running }

    public init(name: String, status: Status, seconds: Double, message: String, log: String, startedAt: Double? = nil, region: String? = nil) {
        self.name = name
        self.status = status
        self.seconds = seconds
        self.message = message
        self.log = log
        self.startedAt = startedAt
        self.region = region
    }

    private enum CodingKeys: String, CodingKey { case name, status, seconds, message, log, startedAt, region }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        name = try container.decode(String.self, forKey: .name)
        status = try container.decode(Status.self, forKey: .status)
        seconds = try container.decode(Double.self, forKey: .seconds)
        message = try container.decode(String.self, forKey: .message)
        log = try container.decode(String.self, forKey: .log)
        startedAt = try container.decodeIfPresent(Double.self, forKey: .startedAt)
        region = try container.decodeIfPresent(String.self, forKey: .region) ?? Self.legacyRegion(name)
    }

    /// Rows written before steps carried their region (stores of StackLab before Core v3) name it only in the step's
    /// text, `apply: {region: R}`: read there once, as the row is decoded.
    private static func legacyRegion(_ name: String) -> String? {
        let prefix = "apply: {region: "
        guard name.hasPrefix(prefix), name.hasSuffix("}") else { return nil }
        return String(name.dropFirst(prefix.count).dropLast())
    }
}

/// One pipeline run as kept.
public struct PipelineRunRecord: Sendable, Codable, Equatable {
    public var id: Int64?
    public var kind: PipelineKind
    public var pipeline: String
    /// What was tested or rolled out (a change, a revision), and the commit that ran.
    public var subject: String
    public var commit: String
    public var verdict: Verdict
    public var startedAt: Double
    public var seconds: Double
    public var steps: [PipelineStep]

    public init(id: Int64? = nil, kind: PipelineKind, pipeline: String, subject: String, commit: String, verdict: Verdict, startedAt: Double, seconds: Double,
                steps: [PipelineStep]) {
        self.id = id
        self.kind = kind
        self.pipeline = pipeline
        self.subject = subject
        self.commit = commit
        self.verdict = verdict
        self.startedAt = startedAt
        self.seconds = seconds
        self.steps = steps
    }

    /// The steps as a store keeps them (JSON, keys sorted).
    public var storedSteps: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(steps)).map { String(decoding: $0, as: UTF8.self) } ?? "[]"
    }

    /// A run from a store's columns: throws, naming the column, when one does not read as what StackLab writes there.
    public init(id: Int64?, storedKind: String, pipeline: String, subject: String, commit: String, verdict: Int, startedAt: Double, seconds: Double,
                storedSteps: String) throws(StoredTextError) {
        guard let kind = PipelineKind(rawValue: storedKind) else { throw StoredTextError(table: "pipeline_run", column: "kind", text: storedKind) }
        guard let parsedVerdict = Verdict(rawValue: verdict.signum()) else { throw StoredTextError(table: "pipeline_run", column: "verdict", text: "\(verdict)") }
        guard let steps = try? JSONDecoder().decode([PipelineStep].self, from: Data(storedSteps.utf8)) else {
            throw StoredTextError(table: "pipeline_run", column: "steps", text: String(storedSteps.prefix(80)))
        }
        self.init(id: id, kind: kind, pipeline: pipeline, subject: subject, commit: commit, verdict: parsedVerdict, startedAt: startedAt, seconds: seconds,
                  steps: steps)
    }
}

extension MeterInterval {
    /// An interval from a store's columns: throws, naming the column, when one does not read as what StackLab writes.
    public init(storedAddress: String, tenant: String, storedKind: String, item: String, quantity: Int64, storedPeriod: String, priceList: String,
                start: Int64, stop: Int64?) throws(StoredTextError) {
        guard let address = Address(parsing: storedAddress) else { throw StoredTextError(table: "meter_interval", column: "address", text: storedAddress) }
        guard let kind = MeterKind(rawValue: storedKind) else { throw StoredTextError(table: "meter_interval", column: "kind", text: storedKind) }
        guard let period = ChargePeriod(rawValue: storedPeriod) else { throw StoredTextError(table: "meter_interval", column: "period", text: storedPeriod) }
        self.init(address: address, tenant: tenant, kind: kind, item: item, quantity: quantity, period: period, priceList: priceList, start: start, stop: stop)
    }
}

/// Where an instance was last created: its node and fixed IP.
public struct Placement: Sendable, Hashable {
    public var node: Address
    public var ip: IPv4Address

    public init(node: Address, ip: IPv4Address) {
        self.node = node
        self.ip = ip
    }

    /// Placements from a store's columns (address, node, ip).
    public static func stored(_ rows: [(address: String, node: String, ip: String)]) throws(StoredTextError) -> [Address: Placement] {
        var result: [Address: Placement] = [:]
        for row in rows {
            guard let address = Address(parsing: row.address) else { throw StoredTextError(table: "placement", column: "address", text: row.address) }
            guard let node = Address(parsing: row.node), node.kind == .node else { throw StoredTextError(table: "placement", column: "node", text: row.node) }
            guard let ip = IPv4Address(parsing: row.ip) else { throw StoredTextError(table: "placement", column: "ip", text: row.ip) }
            result[address] = Placement(node: node, ip: ip)
        }
        return result
    }
}
