import ArgumentParser
import Foundation

/// What a command prints and how it exits, computed as a value so commands can be tested without a terminal.
struct CommandOutput: Equatable {
    var stdout = ""
    var stderr = ""
    var exitCode: Int32 = 0

    /// Writes the streams and throws the exit code when it is not 0.
    func emit() throws {
        if !stdout.isEmpty { Terminal.standardOutput.write(stdout) }
        if !stderr.isEmpty { Terminal.standardError.write(stderr) }
        if exitCode != 0 { throw ExitCode(exitCode) }
    }

    /// Writes the streams (and, with `--format json`, the one document), then ends the process with the exit code at
    /// once. What `loaded` holds is left to the kernel: a whole model at the large size is 110,000 resources, which
    /// take about 50 ms to release one by one on the way out.
    func emitAndExit(keeping loaded: some Any) -> Never {
        withExtendedLifetime(loaded) {
            if !stdout.isEmpty { Terminal.standardOutput.write(stdout) }
            if !stderr.isEmpty { Terminal.standardError.write(stderr) }
            Answer.shared.finish(exitCode: exitCode)
            exit(exitCode)
        }
    }
}
