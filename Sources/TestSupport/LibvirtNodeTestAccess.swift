import Foundation
import SimulatedNodes
import Drivers
import Libvirt
import Manifests

/// Changes a simulated node through libvirt directly, the way an operator (or a fault) would behind StackLab's back.
public enum LibvirtNodeTestAccess {
    /// Pauses `domain` on the simulated node and saves the node's state.
    public static func pause(domain name: String, stateDirectory: String, node: Address) -> Bool {
        let path = SimulatedNode.hostFile(stateDirectory: stateDirectory, node: node)
        guard let connection = try? Connection(uri: "test://\(path)"), let domain = try? connection.domain(named: name) else { return false }
        guard (try? domain.suspend()) != nil,
              let xml = try? SimulatedHost.snapshot(of: connection, cpus: 16, memoryKiB: 64 << 20),
              (try? SimulatedHost.write(xml, to: path)) != nil
        else { return false }
        return true
    }

    /// Defines a copy of `domain` of one simulated node on another (shut off), as a stray copy left behind would be.
    public static func copy(domain name: String, stateDirectory: String, from source: Address, to target: Address) -> Bool {
        let from = SimulatedNode.hostFile(stateDirectory: stateDirectory, node: source), to = SimulatedNode.hostFile(stateDirectory: stateDirectory, node: target)
        guard let origin = try? Connection(uri: "test://\(from)"), let domain = try? origin.domain(named: name), let xml = try? domain.persistentXML(),
              let destination = try? Connection(uri: "test://\(to)"), (try? destination.defineDomain(xml: xml)) != nil,
              let snapshot = try? SimulatedHost.snapshot(of: destination, cpus: 16, memoryKiB: 64 << 20),
              (try? SimulatedHost.write(snapshot, to: to)) != nil
        else { return false }
        return true
    }

    /// Deletes `domain` from the simulated node (as an operator running virsh undefine would) and saves the node.
    public static func delete(domain name: String, stateDirectory: String, node: Address) -> Bool {
        let path = SimulatedNode.hostFile(stateDirectory: stateDirectory, node: node)
        guard let connection = try? Connection(uri: "test://\(path)"), let domain = try? connection.domain(named: name) else { return false }
        if (try? domain.isActive()) == true { _ = try? domain.destroy() }
        guard (try? domain.undefine()) != nil,
              let xml = try? SimulatedHost.snapshot(of: connection, cpus: 16, memoryKiB: 64 << 20),
              (try? SimulatedHost.write(xml, to: path)) != nil
        else { return false }
        return true
    }
}
