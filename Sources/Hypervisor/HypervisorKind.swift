/// Which libvirt driver a node's objects are written for.
public enum HypervisorKind: Sendable, Equatable {
    /// Production: QEMU/KVM over `qemu+ssh://`.
    case kvm
    /// Simulated nodes: libvirt's test driver.
    case test

    /// The kind for a node's libvirt URI (`simulated` runs on the test driver).
    public init(uri: String) {
        self = uri == "simulated" ? .test : .kvm
    }
}
