import Foundation

/// What a reconcile takes from the process environment: the program (the CLI) reads the environment once and hands
/// this down; no library reads it.
public struct RunEnvironment: Sendable {
    /// The SSH key for production nodes when `--identity` names none (`$STACKLAB_SSH_IDENTITY`, else
    /// `~/.ssh/id_ed25519`).
    public var sshIdentity: String?
    /// Where the libvirt daemon's socket is on production nodes, when not the default (`$STACKLAB_LIBVIRT_SOCKET`).
    public var libvirtSocket: String?
    /// The object-store keys the operator allows, by variable (`$STACKLAB_SWIFT_KEY` and the variables
    /// `$STACKLAB_CREDENTIAL_VARIABLES` lists).
    public var credentials: [String: String]

    /// Nothing from an environment: the default SSH key, the default socket, no object-store keys.
    public init(sshIdentity: String? = nil, libvirtSocket: String? = nil, credentials: [String: String] = [:]) {
        self.sshIdentity = sshIdentity
        self.libvirtSocket = libvirtSocket
        self.credentials = credentials
    }

    /// The values `environment` (a process's, read once by the program) gives.
    public init(_ environment: [String: String]) {
        self.init(sshIdentity: environment["STACKLAB_SSH_IDENTITY"] ?? environment["HOME"].map { "\($0)/.ssh/id_ed25519" },
                  libvirtSocket: environment["STACKLAB_LIBVIRT_SOCKET"], credentials: ObjectStores.credentials(in: environment))
    }
}
