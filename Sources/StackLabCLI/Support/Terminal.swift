#if canImport(Glibc)
import Glibc
#endif

/// Standard output and error, with a check for whether they are terminals (for colour).
public struct Terminal: Sendable {
    let descriptor: Int32

    public static let standardOutput = Terminal(descriptor: 1)
    public static let standardError = Terminal(descriptor: 2)

    /// Whether the stream is a terminal and colour is not disabled by `NO_COLOR`.
    public var wantsColor: Bool { isatty(descriptor) == 1 && ProcessEnvironment.values["NO_COLOR"] == nil }

    /// Writes text unbuffered.
    public func write(_ text: String) {
        // With --format json, standard output is the one document `Answer` writes at the end.
        if descriptor == 1, Answer.shared.hold(text) { return }
        raw(text)
    }

    /// Writes text unbuffered, whatever the output mode.
    func raw(_ text: String) {
        var bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeMutableBytes { Glibc.write(descriptor, $0.baseAddress! + offset, $0.count - offset) }
            if written <= 0 { return }
            offset += written
        }
    }
}
