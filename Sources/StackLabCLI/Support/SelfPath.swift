import Foundation

/// This executable's path (what a hook runs again, what a benchmark times).
public enum SelfPath {
    public static var current: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    /// The `stacklab` program beside this one (`stacklab-bench` times it), or `$STACKLAB_BINARY`.
    public static var stacklab: String {
        if let path = ProcessEnvironment.values["STACKLAB_BINARY"] { return path }
        return ((current as NSString).deletingLastPathComponent as NSString).appendingPathComponent("stacklab")
    }
}
