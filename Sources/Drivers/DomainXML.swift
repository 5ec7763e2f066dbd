import Planning

/// Renders a desired domain as libvirt domain XML (KVM for production nodes, the test driver for simulated ones).
public enum DomainXML {
    /// The domain's persistent definition.
    public static func render(_ domain: DesiredDomain, for kind: HypervisorKind) -> String {
        let type = switch kind {
        case .kvm: "kvm"
        case .qemu: "qemu"
        case .test: "test"
        }
        var xml = """
            <domain type='\(type)'>
              <name>\(XMLText.escape(domain.name))</name>
              <uuid>\(domain.uuid)</uuid>
              <metadata>
                \(Ownership.element(address: domain.address.description, specHash: domain.specHash, extra: [("shape", domain.shapeHash), ("ip", domain.interface.ip.description), ("mac", domain.interface.mac), ("port", DesiredDomain.port(for: domain.address)), ("flavor", domain.flavor), ("image", domain.image)] + (domain.origin.map { [("origin", $0.description)] } ?? [])))
              </metadata>
              <memory unit='KiB'>\(domain.maxMemoryKiB)</memory>
              <currentMemory unit='KiB'>\(domain.memoryKiB)</currentMemory>
              <vcpu placement='static' current='\(domain.vcpus)'>\(domain.maxVcpus)</vcpu>
              <os>
                <type arch='\(kind == .test ? "i686" : "x86_64")'>hvm</type>
                <boot dev='hd'/>
              </os>

            """
        if kind != .test {
            xml += """
                  <features>
                    <acpi/>
                    <apic/>
                  </features>

                """
            // TCG cannot give a guest the host's CPU model; KVM can. Without IA32_ARCH_CAPABILITIES: under nested KVM
            // (a hypervisor in a rented VM) QEMU cannot set that MSR and the guest never starts ("failed to set MSR
            // 0x10a"); a guest without it only assumes it needs every mitigation.
            if kind == .kvm { xml += "  <cpu mode='host-model'>\n    <feature policy='disable' name='arch-capabilities'/>\n  </cpu>\n" }
        }
        xml += """
              <clock offset='utc'/>
              <on_poweroff>destroy</on_poweroff>
              <on_reboot>restart</on_reboot>
              <on_crash>destroy</on_crash>
              <devices>

            """
        for disk in domain.disks {
            xml += """
                    <disk type='volume' device='disk'>
                      <driver name='qemu' type='qcow2' cache='none'/>
                      <source pool='\(XMLText.escape(disk.pool))' volume='\(XMLText.escape(disk.volume))'/>
                      <target dev='\(disk.device)' bus='virtio'/>
                    </disk>

                """
        }
        xml += """
                <interface type='bridge'>
                  <mac address='\(domain.interface.mac)'/>
                  <source bridge='\(XMLText.escape(domain.interface.bridge))'/>
                  <target dev='\(DesiredDomain.port(for: domain.address))'/>
                  <model type='virtio'/>
                </interface>

            """
        if kind != .test {
            xml += """
                    <serial type='pty'/>
                    <console type='pty'/>

                """
        }
        xml += """
              </devices>
            </domain>

            """
        return xml
    }
}
