import Foundation
import Processes
import Testing
import SSH
import TestSupport

@Suite(.serialized) struct SessionTests {
    @Test func handshakeAuthenticateAndRunACommand() throws {
        let server = try LoopbackSSHD()
        let session = try Session(host: "127.0.0.1", port: server.port)
        #expect(try session.hostKeyFingerprint() == server.hostKeyFingerprint())
        try session.authenticate(user: server.user, privateKey: "\(server.directory)/user_key",
                                 publicKey: "\(server.directory)/user_key.pub")
        let result = try session.run("echo hello; echo oops >&2; exit 3")
        #expect(result == CommandResult(exitStatus: 3, stdout: "hello\n", stderr: "oops\n"))
    }

    @Test func aWrongKeyIsRefusedWithLibssh2sMessage() throws {
        let server = try LoopbackSSHD()
        try Command.check(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", "\(server.directory)/stranger"])
        let session = try Session(host: "127.0.0.1", port: server.port)
        #expect(throws: SSHError.self) {
            try session.authenticate(user: server.user, privateKey: "\(server.directory)/stranger", publicKey: "\(server.directory)/stranger.pub")
        }
    }

    @Test func connectingToAClosedPortFails() throws {
        let port = try LoopbackSSHD.freePort()
        do {
            _ = try Session(host: "127.0.0.1", port: port)
            Issue.record("expected a connection error")
        } catch {
            #expect(error.description.contains("127.0.0.1:\(port)"))
        }
    }

    @Test func aPinnedHostKeyIsCheckedBeforeAnythingIsSent() throws {
        let server = try LoopbackSSHD(address: "127.0.0.2")
        let session = try Session(host: "127.0.0.2", port: server.port)
        try session.verifyHostKey(pinned: try server.hostKeyLine())
        try Command.check(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", "\(server.directory)/other_host"])
        let other = try String(contentsOfFile: "\(server.directory)/other_host.pub", encoding: .utf8)
        do {
            try session.verifyHostKey(pinned: other)
            Issue.record("a wrong host key was accepted")
        } catch {
            #expect(error.description.contains("HOST KEY MISMATCH"))
            #expect(error.description.contains(try server.hostKeyFingerprint()), "the server's fingerprint is shown")
            #expect(error.description.contains(HostKey(publicKeyLine: other)!.fingerprint), "the pinned one too")
        }
    }

    @Test func anRSAKeyIsRefusedWithTheReason() throws {
        let server = try LoopbackSSHD()
        try Command.check(["ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", "\(server.directory)/rsa"])
        let session = try Session(host: "127.0.0.1", port: server.port)
        do {
            try session.authenticate(user: server.user, privateKey: "\(server.directory)/rsa")
            Issue.record("an RSA key was tried")
        } catch {
            #expect(error.description.contains("RSA key") && error.description.contains("ed25519"), "\(error)")
        }
        // A key given as text (the environment) works like a file.
        try session.authenticate(user: server.user, privateKeyText: try String(contentsOfFile: server.userKey, encoding: .utf8))
        #expect(try session.run("echo ok").stdout == "ok\n")
    }

    @Test func stdoutAndStderrAreReadTogetherAndCommandsHaveADeadline() throws {
        let server = try LoopbackSSHD()
        let session = try Session(host: "127.0.0.1", port: server.port)
        try session.authenticate(user: server.user, privateKey: server.userKey)
        // 3 MB on stderr before anything on stdout: reading stdout first would wait for ever on a full window.
        let noisy = try session.run("head -c 3000000 /dev/zero | tr '\\0' e >&2; echo done")
        #expect(noisy.exitStatus == 0 && noisy.stdout == "done\n" && noisy.stderr.utf8.count == 3_000_000)
        let input = try session.run("wc -c", stdin: Array(repeating: UInt8(ascii: "x"), count: 100_000))
        #expect(input.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "100000")
        do {
            _ = try session.run("sleep 30", timeout: 1)
            Issue.record("a command ran past its deadline")
        } catch {
            #expect(error.description.contains("no end within 1 s"), "\(error)")
        }
    }

    @Test func aKeptShellRunsEachCommandApartAndSurvivesWhatEndsOne() throws {
        let server = try LoopbackSSHD()
        let session = try Session(host: "127.0.0.1", port: server.port)
        try session.authenticate(user: server.user, privateKey: server.userKey)
        // Output with and without a last newline, stderr apart, the exit status.
        #expect(try session.runInShell("echo ok") == CommandResult(exitStatus: 0, stdout: "ok\n", stderr: ""))
        #expect(try session.runInShell("printf 'a\\nb'; printf oops >&2; exit 3") == CommandResult(exitStatus: 3, stdout: "a\nb", stderr: "oops"))
        #expect(try session.runInShell("true").stdout.isEmpty)
        // One shell, one process: the same $$ (the kept shell's) every time; nothing one command sets reaches the next.
        let pid = try session.runInShell("echo $PPID $$").stdout
        #expect(try session.runInShell("echo $PPID $$").stdout == pid)
        _ = try session.runInShell("cd /tmp; X=1; export Y=2; set -e; false")
        #expect(try session.runInShell("pwd; echo \"[$X][$Y]\"").stdout != "/tmp\n[1][2]\n")
        // A syntax error, an exit and a command that reads stdin end only themselves.
        #expect(try session.runInShell("if then fi").exitStatus != 0)
        #expect(try session.runInShell("exec sh -c 'exit 7'").exitStatus == 7)
        #expect(try session.runInShell("cat; echo after").stdout == "after\n", "stdin is /dev/null, not the next command")
        #expect(try session.runInShell("echo still").stdout == "still\n" && session.runInShell("echo $PPID $$").stdout == pid)
        // Megabytes on both streams (stderr first), and quotes of every kind in the command.
        let noisy = try session.runInShell("head -c 3000000 /dev/zero | tr '\\0' e >&2; head -c 2000000 /dev/zero | tr '\\0' o; echo \"it's \\\"done\\\"\"")
        #expect(noisy.exitStatus == 0 && noisy.stdout.utf8.count == 2_000_000 + 12 && noisy.stdout.hasSuffix("it's \"done\"\n") && noisy.stderr.utf8.count == 3_000_000)
        // Past its deadline the shell is let go; the next command gets a new one.
        do {
            _ = try session.runInShell("sleep 30", timeout: 1)
            Issue.record("a command ran past its deadline")
        } catch {
            #expect(error.description.contains("no end within 1 s"), "\(error)")
        }
        #expect(try session.runInShell("echo again").stdout == "again\n")
        #expect(try session.runInShell("echo $PPID $$").stdout != pid, "a new shell")
    }

    /// A process a command leaves behind (HAProxy's master writes a notice on each reload) reaches no later
    /// command's output, and the shell is kept.
    @Test func whatACommandLeavesRunningReachesNoOutputAndTheShellIsKept() throws {
        let server = try LoopbackSSHD()
        let session = try Session(host: "127.0.0.1", port: server.port)
        try session.authenticate(user: server.user, privateKey: server.userKey)
        let pid = try session.runInShell("echo $PPID $$").stdout
        // Writes on both streams without a pause for 2 s, long after the command ended.
        let writer = "( end=$(( $(date +%s) + 2 )); while [ $(date +%s) -lt $end ]; do echo late; echo late >&2; done ) &"
        let started = Date()
        // What the writer sends before the shell prints the command's output is the command's (its child wrote it).
        let first = try session.runInShell(writer + " echo started", timeout: 20)
        let lines = first.stdout.split(separator: "\n")
        #expect(first.exitStatus == 0 && lines.filter { $0 == "started" }.count == 1 && lines.allSatisfy { $0 == "started" || $0 == "late" }, "\(first.stdout.prefix(200))")
        #expect(first.stderr.split(separator: "\n").allSatisfy { $0 == "late" })
        for word in ["one", "two", "three"] {
            #expect(try session.runInShell("echo \(word); echo \(word) >&2", timeout: 20) == CommandResult(exitStatus: 0, stdout: "\(word)\n", stderr: "\(word)\n"))
        }
        #expect(Date().timeIntervalSince(started) < 10)
        #expect(try session.runInShell("echo $PPID $$").stdout == pid, "one shell throughout")
        // No command's output files are left: only this one's own, while it runs.
        let own = try session.runInShell("basename \"$stacklab_o\"").stdout
        let prefix = String(own[..<(own.lastIndex(of: "-") ?? own.startIndex)])
        #expect(prefix.hasPrefix(".stacklab-end-"), "\(own)")
        #expect(try session.runInShell("ls -a \"${TMPDIR:-/tmp}\" | grep -c -F -- \(Session.quote(prefix + "-"))").stdout == "2\n")
    }

    @Test func uploadsReplaceFilesAtomicallyWithTheirMode() throws {
        let server = try LoopbackSSHD()
        let session = try Session(host: "127.0.0.1", port: server.port)
        try session.authenticate(user: server.user, privateKey: server.userKey)
        let path = "\(server.directory)/etc/swift/object.ring.gz"
        _ = try session.run("mkdir -p \(Session.quote(server.directory))/etc/swift")
        let big = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        try session.upload(big, to: path, mode: 0o640)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == Data(big))
        try session.upload(Array("second\n".utf8), to: path, mode: 0o600)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "second\n")
        #expect(try session.run("stat -c %a \(Session.quote(path))").stdout == "600\n")
        #expect(try FileManager.default.contentsOfDirectory(atPath: "\(server.directory)/etc/swift") == ["object.ring.gz"], "no temporary file is left")
    }
}
