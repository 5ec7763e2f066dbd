import Foundation
import Libvirt
import Planning

/// The machine under a `LibvirtNode`: where its libvirt connection goes, and its files beside libvirt (Swift rings,
/// DHCP and metadata files, the ruleset). `RemoteMachine` is a production node over SSH; a simulated node's machine
/// (libvirt's test driver and a file tree under the state directory) lives in SimulatedNodes.
///
/// `LibvirtNode` calls the change hooks under its own lock, around every change it makes.
public protocol NodeMachine: AnyObject, Sendable {
    /// The libvirt URI to connect to.
    var uri: String { get }
    /// Called before a connection is opened (a production node must show an SSH banner first).
    func willConnect() throws(LibvirtError)
    /// Whether the connection opened last still shows the node (false: it is opened again).
    func connectionIsCurrent() -> Bool
    /// A connection was opened.
    func connected()
    /// The node let go of its connection: let go of anything held for it (sessions, held-back changes).
    func disconnect()
    /// Before a change to domain `domain` (`""`: none) and to volumes whose names start with one of `volumePrefixes`;
    /// with `deferring`, the change may be saved only at the next flush.
    func willChange(domain: String, volumePrefixes: [String], deferring: Bool)
    /// After the change announced last: `connection` holds it (a machine that is not durable by itself saves now,
    /// or at the flush when the change was deferred). `succeeded` is false when the change failed part-way.
    func didChange(on connection: Connection, succeeded: Bool) throws(DriverError)
    /// The ring files installed, by name, with their sha256.
    func rings() throws(DriverError) -> [String: String]
    /// An installed ring file's bytes.
    func readRing(_ name: String) throws(DriverError) -> Data
    /// Installs ring file `name` (a checked plain name) and checks it against `sha256`.
    func installRing(_ name: String, content: Data, sha256: String) throws(DriverError)
    /// StackLab's networking files on the node, and its live ruleset when the node's kernel holds one.
    func networkFiles() throws(DriverError) -> NetworkFiles
    /// Writes `files` (paths under `NetworkFiles`' directories), removes the DHCP and metadata files not among them,
    /// and has the node use them (bridge addresses, dnsmasq rereading its hosts) where it owns its machine.
    func writeNetworkFiles(_ files: [(path: String, content: String)], dhcp: NodeDHCP) throws(DriverError)
    /// Installs and loads `ruleset` atomically, or removes StackLab's table and file when it has no rules.
    func loadRuleset(_ ruleset: Ruleset) throws(DriverError)
    /// Checks `config` with `haproxy -c`, installs it atomically and has HAProxy use it without dropping established
    /// connections (starting it when it is not running); with no services, stops HAProxy and removes the file.
    func loadProxy(_ config: ProxyConfig) throws(DriverError)
    /// Each backend server's health from HAProxy's stats socket; nil when the node runs no HAProxy to ask (a simulated
    /// node, or HAProxy stopped).
    func proxyHealth() throws(DriverError) -> [ProxyServerHealth]?
    /// The traffic counters in the node's kernel, with their epoch; nil where the kernel's ruleset is not StackLab's
    /// to read (a simulated node, or a test host with a file root).
    func trafficReading() throws(DriverError) -> TrafficReading?
    /// Deletes counters no rule counts into any more (after the meter has read them one last time).
    func deleteTrafficCounters(_ names: [String]) throws(DriverError)
}

extension NodeMachine {
    public func trafficReading() throws(DriverError) -> TrafficReading? { nil }
    public func deleteTrafficCounters(_ names: [String]) throws(DriverError) {}
}

/// StackLab's networking files as a node has them (path → text), and its live ruleset.
public struct NetworkFiles: Sendable {
    /// DHCP configuration and hosts, one file per network.
    public static let dnsmasqDirectory = "/etc/stacklab/dnsmasq"
    /// One file per instance on the node, named by its fixed IP, served by `stacklab metadata serve`.
    public static let metadataDirectory = "/etc/stacklab/metadata"
    /// The installed ruleset.
    public static let rulesetFile = "/etc/stacklab/firewall/stacklab.nft"
    /// What `nft list table` showed right after StackLab loaded the ruleset: a live ruleset that differs was changed by hand.
    public static let listedFile = "/etc/stacklab/firewall/listed"

    /// Every file found, by absolute path (before any file root); the HAProxy configuration among them.
    public var files: [String: String]
    /// Whether the HAProxy the node runs for StackLab is alive (nil where StackLab runs none: a simulated node).
    public var proxyRunning: Bool?
    /// `nft list table` now, and what it showed when StackLab loaded the ruleset (nil where the node's kernel is not
    /// StackLab's to read: a simulated node, or a test host with a file root).
    public var live: String?
    public var listed: String?

    /// Files and listings.
    public init(files: [String: String], live: String? = nil, listed: String? = nil) {
        self.files = files
        self.live = live
        self.listed = listed
    }
}

/// The Swift ring files a node holds (`/etc/swift/<name>` on a production node).
public enum RingFiles {
    /// Whether `name` is a ring file name StackLab writes (`object.ring.gz`, `object-1.ring.gz`): a plain name, never a
    /// path. Checked before any file is read or written, whatever a (saved, possibly edited) plan says.
    public static func isName(_ name: String) -> Bool {
        guard name.hasSuffix(".ring.gz"), name.utf8.count <= 64 else { return false }
        let stem = name.dropLast(".ring.gz".count)
        return !stem.isEmpty && stem.allSatisfy { $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-") }
    }

    /// The ring files StackLab may install.
    public static let standard = ["account.ring.gz", "container.ring.gz", "object.ring.gz"]
}
