import Foundation
import Manifests
import Planning

/// A simulated node's last observation, saved beside its host file (`<name>.observed`) under the generation it was
/// made at and the build that made it. A new process (a `plan --refresh`, the next apply) then has libvirt's test driver
/// parse only the hosts whose files changed since: parsing a host is most of observing it, and the saved observation
/// is what that parse would give while every file it reads keeps its stamp.
///
/// The file is a header line (JSON: build, generation, fingerprint) and the observation as `fingerprintEncoder` encodes
/// it. Anything unexpected (another build, another generation, a torn or edited file) reads as no saved observation.
enum SavedObservation {
    private struct Header: Codable {
        var build: String
        var generation: String
        var fingerprint: String
    }

    /// The observation saved at `path` if it was made at `generation` by this build.
    static func read(_ path: String, generation: String) -> ObservedNode? {
        guard let data = FileManager.default.contents(atPath: path), let newline = data.firstIndex(of: UInt8(ascii: "\n")),
              let header = try? JSONDecoder().decode(Header.self, from: data[..<newline]),
              header.generation == generation, header.build == BuildIdentity.current,
              ObservedNode.fingerprint(ofEncoded: data[data.index(after: newline)...]) == header.fingerprint,
              let node = try? JSONDecoder().decode(ObservedNode.self, from: data[data.index(after: newline)...])
        else { return nil }
        node.remember(fingerprint: header.fingerprint)
        return node
    }

    /// Saves `node`, observed at `generation`, to `path` (written aside and renamed). A state directory this process may
    /// not write keeps no saved observation: the next process parses the host again.
    static func write(_ node: ObservedNode, generation: String, to path: String) {
        guard let body = try? ObservedNode.fingerprintEncoder.encode(node) else { return }
        let fingerprint = ObservedNode.fingerprint(ofEncoded: body)
        guard var data = try? JSONEncoder().encode(Header(build: BuildIdentity.current, generation: generation, fingerprint: fingerprint)) else { return }
        node.remember(fingerprint: fingerprint)
        data.append(UInt8(ascii: "\n"))
        data.append(body)
        // One temporary per node, not per process: a process killed while saving leaves at most that one file, which the
        // next save of the node replaces (a process that only plans leaves no run for the sweep of crashed writes to
        // follow). Two processes saving one node at once may mix their bytes: the reader checks the body against the
        // header's fingerprint, so such a file is never believed.
        try? SimulatedHost.write(data, to: path, temporary: path + ".tmp")
    }
}
