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
}
