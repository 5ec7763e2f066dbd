import Drivers
import Foundation
import Manifests
import Planning

/// A driver that hands everything to a real node it wraps; conformers change only what they must (a fault to
/// inject, a count to keep).
public protocol WrappingNode: NodeDriver {
    var inner: any NodeDriver { get }
}

extension WrappingNode {
    public var address: Address { inner.address }
    public func disconnect() { inner.disconnect() }
    public func observe() throws(DriverError) -> ObservedNode { try inner.observe() }
    public func usage() throws(DriverError) -> [InstanceUsage] { try inner.usage() }
    public func trafficReading() throws(DriverError) -> TrafficReading? { try inner.trafficReading() }
    public func deleteTrafficCounters(_ names: [String]) throws(DriverError) { try inner.deleteTrafficCounters(names) }
    public func readRing(_ file: String) throws(DriverError) -> Data { try inner.readRing(file) }
    public func receive(_ domain: DesiredDomain, from source: any NodeDriver, sourceDomain: String) throws(DriverError) {
        try inner.receive(domain, from: (source as? any WrappingNode)?.inner ?? source, sourceDomain: sourceDomain)
    }
    public func exportVolume(pool: String, name: String, chunkSize: Int, _ consume: (UInt64, () throws -> Data?) throws -> Void) throws(DriverError) {
        try inner.exportVolume(pool: pool, name: name, chunkSize: chunkSize, consume)
    }
    public func importVolume(pool: String, name: String, bytes: UInt64, _ produce: ((Data) throws -> Void) throws -> Void) throws(DriverError) {
        try inner.importVolume(pool: pool, name: name, bytes: bytes, produce)
    }
}

/// Wraps a real node and fails some operations (one network's changes, by default) with a transient error (a fault
/// the test driver cannot produce).
public struct FailingNode: WrappingNode {
    public let inner: any NodeDriver
    let fails: @Sendable (NodeOperation) -> Bool

    public init(wrapping inner: any NodeDriver, failing network: String) {
        self.init(wrapping: inner) { operation in
            if case .ensureNetwork(let name, _) = operation { name == network } else { false }
        }
    }

    public init(wrapping inner: any NodeDriver, fails: @escaping @Sendable (NodeOperation) -> Bool) {
        self.inner = inner
        self.fails = fails
    }

    public func apply(_ operation: NodeOperation) throws(DriverError) {
        if fails(operation) { throw DriverError(node: address, message: "injected failure", isTransient: true) }
        try inner.apply(operation)
    }
}
