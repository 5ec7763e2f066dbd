import Foundation
import Processes

/// The `stacklab` executable that `swift test` builds next to the test bundle, for end-to-end tests.
public enum StackLabBinary {
    /// Its path.
    public static var path: String {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var directory = URL(fileURLWithPath: exe).deletingLastPathComponent()
        // The test bundle may be a directory (…/StackLabPackageTests.xctest/…) or a file beside the executable.
        while directory.path != "/" {
            let candidate = directory.appendingPathComponent("stacklab").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            directory = directory.deletingLastPathComponent()
        }
        return "stacklab"
    }

    /// `stacklab-faults`, built beside it: `stacklab` with the faults its `STACKLAB_FAULT_*` environment asks for
    /// injected into its node drivers (the shipped program reads none).
    public static var faults: String {
        ((path as NSString).deletingLastPathComponent as NSString).appendingPathComponent("stacklab-faults")
    }

    /// Runs stacklab with `arguments` and returns its exit status and output.
    public static func run(_ arguments: [String]) throws -> Command.Result {
        try Command.run([path] + arguments)
    }
}
