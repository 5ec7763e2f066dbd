/// Renders the storage objects StackLab creates on a node: its instance pool and the volumes in it.
public enum StorageXML {
    /// The name of the pool that holds instance disks on every node.
    public static let instancePool = "stacklab-instances"

    /// A `dir` pool at `path` (pools carry no metadata in libvirt: StackLab owns those named `stacklab-…`).
    public static func pool(name: String, path: String) -> String {
        """
        <pool type='dir'>
          <name>\(XMLText.escape(name))</name>
          <target>
            <path>\(XMLText.escape(path))</path>
          </target>
        </pool>

        """
    }

    /// An empty file, to be filled by an upload (a volume copied from another node, whose format its bytes carry).
    public static func emptyVolume(name: String) -> String {
        """
        <volume type='file'>
          <name>\(XMLText.escape(name))</name>
          <capacity unit='bytes'>0</capacity>
          <target>
            <format type='raw'/>
          </target>
        </volume>

        """
    }

    /// A qcow2 volume of `bytes`, optionally backed by an image file.
    public static func volume(name: String, bytes: UInt64, backingFile: String?) -> String {
        var xml = """
            <volume type='file'>
              <name>\(XMLText.escape(name))</name>
              <capacity unit='bytes'>\(bytes)</capacity>
              <allocation unit='bytes'>0</allocation>
              <target>
                <format type='qcow2'/>
              </target>

            """
        if let backingFile {
            xml += """
                  <backingStore>
                    <path>\(XMLText.escape(backingFile))</path>
                    <format type='qcow2'/>
                  </backingStore>

                """
        }
        return xml + "</volume>\n"
    }
}

/// Renders a region network as a libvirt network over the node's Linux bridge (FlatDHCP: StackLab's own IPAM
/// hands out addresses, so libvirt does no DHCP).
public enum NetworkXML {
    /// The libvirt network name for a manifest network.
    public static func name(for network: String) -> String { "stacklab-\(network)" }

    /// A bridged network using the existing bridge `bridge`.
    public static func render(network: String, bridge: String) -> String {
        """
        <network>
          <name>\(XMLText.escape(name(for: network)))</name>
          <forward mode='bridge'/>
          <bridge name='\(XMLText.escape(bridge))'/>
        </network>

        """
    }
}
