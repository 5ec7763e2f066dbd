import Foundation

/// This executable's path, for benchmarks that time whole stacklab processes.
enum SelfPath {
    static var current: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }
}
