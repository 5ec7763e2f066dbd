/// Which libvirt driver a node's objects are written for.
public enum HypervisorKind: Sendable, Equatable {
    /// Production: QEMU over `qemu+ssh://`, accelerated by KVM.
    case kvm
    /// Production without KVM (nested or emulated hosts): QEMU's TCG.
    case qemu
    /// Simulated nodes: libvirt's test driver.
    case test
}
