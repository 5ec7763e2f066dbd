import ArgumentParser

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
}
