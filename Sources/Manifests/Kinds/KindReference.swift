/// What the manifest reference says about each kind: where its documents live, what it is, and every field of its
/// spec (in the order the decoder knows them). `docs/reference/manifests.md` is generated from this table
/// (`stacklab docs`), and `fieldsWithoutDocs` ties it to the decoders: a field added to a spec without a line here
/// fails the reference test.
public struct KindReference: Sendable {
    /// One field of a spec.
    public struct Field: Sendable {
        public var name: String
        public var type: String
        /// The default, "required", or empty when absent means nothing is done.
        public var byDefault: String
        public var meaning: String
    }

    public var kind: Kind
    /// Where its documents live.
    public var lives: String
    public var summary: String
    public var fields: [Field]
    /// What the table cannot say (rules across fields, examples).
    public var notes: [String]

    /// Every manifest kind, in declaration order.
    public static let all: [KindReference] = Kind.manifestKinds.map(reference)

    /// Fields a spec's decoder accepts that the table does not document, and documented fields it does not accept
    /// (`kind.field`); empty when the table is complete.
    public static var fieldsWithoutDocs: [String] {
        all.flatMap { reference in
            let decoded = Self.decodedFields(reference.kind), documented = reference.fields.map(\.name)
            return decoded.filter { !documented.contains($0) }.map { "\(reference.kind.rawValue).\($0) (not documented)" }
                + documented.filter { !decoded.contains($0) }.map { "\(reference.kind.rawValue).\($0) (documented, not decoded)" }
        }
    }

    /// The fields the decoder of `kind`'s spec accepts, in its order.
    static func decodedFields(_ kind: Kind) -> [String] {
        switch kind {
        case .region: RegionSpec.fields
        case .node: NodeSpec.fields
        case .network: NetworkSpec.fields
        case .filter: FilterSpec.fields
        case .ring: RingSpec.fields
        case .flavor: FlavorSpec.fields
        case .image: ImageSpec.fields
        case .priceList: PriceListSpec.fields
        case .tenant: TenantSpec.fields
        case .instance: InstanceSpec.fields
        case .volume: VolumeSpec.fields
        case .floatingIP: FloatingIPSpec.fields
        case .securityGroup: SecurityGroupSpec.fields
        case .keypair: KeypairSpec.fields
        case .loadBalancer: LoadBalancerSpec.fields
        case .alarm: AlarmSpec.fields
        case .container: ContainerSpec.fields
        case .pipeline: PipelineSpec.fields
        case .firewall, .dhcp, .haproxy, .snapshot: []
        }
    }

    private static func field(_ name: String, _ type: String, _ byDefault: String, _ meaning: String) -> Field {
        Field(name: name, type: type, byDefault: byDefault, meaning: meaning)
    }

    // swiftlint:disable:next function_body_length
    private static func reference(_ kind: Kind) -> KindReference {
        switch kind {
        case .region:
            KindReference(kind: kind, lives: "cloud-wide; `regions/<name>/region.yaml`", summary: "One sponsor's site: at least three servers, one of them a controller.", fields: [
                field("sponsor", "string", "", "who provides the hardware"),
                field("description", "string", "", "free text"),
                field("environment", "`production` \\| `staging`", "production", "staging is where the CI gate applies changes first"),
                field("cpuAllocationRatio", "number > 0", "16", "vCPUs scheduled per physical CPU thread"),
                field("ramAllocationRatio", "number > 0", "1.5", "RAM scheduled per byte of physical memory"),
                field("maxDeleteShare", "0–1", "0.25", "the largest share of the region's instances a plan may delete without `--allow-mass-delete`"),
                field("internalRanges", "list of CIDR", "10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16", "the provider's internal networks: the SWS egress filter drops new connections from instances to them (their own fixed range aside) unless a Filter opens them"),
                field("objectStore", "`{proxy, user, keyEnv, reseller: {user, keyEnv}}`", "none", "the region's Swift proxy (`http(s)://…`), a tempauth user (`account:user`) and the environment variable holding its key (default `STACKLAB_SWIFT_KEY`; any other must be listed by the operator in `$STACKLAB_CREDENTIAL_VARIABLES`; keys never live in the manifests, and `ci check`/`gate` use the base revision's setting); needed for volume snapshots. `reseller` is the tempauth user with `.reseller_admin` StackLab acts as on the tenants' accounts (key from `STACKLAB_SWIFT_RESELLER_KEY` unless `keyEnv` names another listed variable); needed for Containers"),
                field("creditCheck", "bool", "false", "hold back new instances of tenants whose balance is below zero (a plan note, not an error)"),
                field("alarmWebhooks", "list of host or host:port", "none", "the webhook hosts tenants' Alarms may notify (an allow-list: the provider's Alertmanager posts only there)"),
                field("publicDomains", "`{suffix, ports, instancePort, reuseAfter}`", "none", "every instance whose security groups open `instancePort` (default 22) is reachable as `<label>.lb.<region>.<suffix>:<port>` on the region's `loadbalancer` nodes; `ports` (e.g. `11000-11999`, at least 1024) are handed out to instances and tcp listeners, kept across moves, and a freed one waits `reuseAfter` (default `24h`) before it is handed out again"),
            ], notes: ["A region needs at least **3 nodes**, one with role `controller`."])
        case .node:
            KindReference(kind: kind, lives: "regional; `regions/<region>/nodes.yaml`", summary: "A physical server of the region, identified by region and name (`node/sina/sina-1`).", fields: [
                field("address", "IPv4", "required", "management address; unique in the cloud"),
                field("ssh", "`{user, port, hostKey}`", "root, 22", "how StackLab reaches it; `hostKey` pins the server key (`ssh-ed25519 AAAA…`)"),
                field("libvirt", "URI or `simulated`", "required", "`qemu+ssh://[user@]host[:port]/system` (or `qemu+libssh2://`), or `simulated` for libvirt's test driver; nothing else"),
                field("roles", "list of `controller`, `compute`, `storage`, `volume`, `loadbalancer`", "required", "what runs on it (`loadbalancer`: HAProxy for the region's public domains and load balancers)"),
                field("cpus", "integer", "required", "physical CPU threads"),
                field("memory", "size", "required", "physical memory (at least 1GiB)"),
                field("disks", "list of `{name, size, weight}`", "", "required for `storage` and `volume`; `weight` defaults to the size in GB"),
                field("zone", "name", "the node's name", "availability zone; by default every server is its own zone"),
                field("instanceStorage", "size", "1TiB", "capacity of the pool holding instances' root and ephemeral disks (compute nodes); never overcommitted"),
                field("fileRoot", "absolute path", "`/`", "where `bootstrap` writes the host's files (a test host keeps them under a directory; no services there)"),
            ], notes: ["Two regions may each have a `node-1`."])
        case .network:
            KindReference(kind: kind, lives: "regional; `regions/<region>/network.yaml`", summary: "A nova-network FlatDHCP network: a bridge on every compute node, each routing its own instances (multi-host).", fields: [
                field("mode", "`FlatDHCP`", "FlatDHCP", "network manager"),
                field("multiHost", "bool", "true", "every compute node routes its own instances"),
                field("bridge", "interface name", "required", "Linux bridge on each node (unique per region)"),
                field("fixedRange", "CIDR", "required", "instances' private addresses"),
                field("gateway", "IPv4", "required", "inside `fixedRange`, not its network or broadcast address"),
                field("dns", "list of IPv4", "", "handed out by DHCP"),
                field("floatingRange", "CIDR", "", "public addresses; must not overlap `fixedRange`, nor any floating range in the cloud"),
            ], notes: ["CIDRs must have their host bits clear (`10.0.0.1/8` is refused with the network you probably meant)."])
        case .filter:
            KindReference(kind: kind, lives: "cloud-wide in `manifests/filters.yaml`, or one region with `region:`", summary: "The SWS egress filter: internal segments tenant instances may not reach, and the exceptions.", fields: [
                field("protect", "list of CIDR", "required", "internal segments tenant instances may not reach"),
                field("allow", "list of rules", "", "exceptions: `tenants` (names or `\"*\"`), `to` (CIDRs inside `protect`), `ports` (`22`, `8000-8100`), `protocol` (`tcp` default, `udp`, `icmp`, `any`)"),
            ], notes: ["An exception never opens another tenant's instances or the region's fixed and floating ranges."])
        case .ring:
            KindReference(kind: kind, lives: "regional; `regions/<region>/rings.yaml`", summary: "A Swift object-storage ring, built by StackLab and installed on every storage and controller node.", fields: [
                field("type", "`account` \\| `container` \\| `object`", "the ring's name", "which ring"),
                field("partPower", "1–22", "required", "log2 of the partition count"),
                field("replicas", "number ≥ 1", "required", "fractional allowed (2.5); at most the number of zones the devices span"),
                field("minPartHours", "integer", "1", "hours before a partition may move again"),
                field("overload", "number", "0", "extra share a device may take for better dispersion"),
                field("devices", "`{nodes, disks, port}`", "every storage node, all disks", "device selection; `port` defaults to 6202/6201/6200"),
            ], notes: [])
        case .flavor:
            KindReference(kind: kind, lives: "cloud-wide; `manifests/flavors.yaml`", summary: "An instance size.", fields: [
                field("vcpus", "integer", "required", "virtual CPUs"),
                field("ram", "size", "required", "memory (at least 64MiB)"),
                field("disk", "size", "required", "root disk (at least 1GiB)"),
                field("ephemeral", "size", "", "a second, ephemeral disk"),
                field("diskType", "`hdd` \\| `ssd`", "hdd", "the storage instances of this flavor need"),
            ], notes: [])
        case .image:
            KindReference(kind: kind, lives: "cloud-wide; `manifests/images.yaml`", summary: "A boot image.", fields: [
                field("format", "`qcow2` \\| `raw` \\| `iso`", "required", "disk format"),
                field("source", "path or URL", "required", "where the image store has it"),
                field("checksum", "`sha256:` + 64 hex digits", "", "the image's digest"),
                field("os", "string", "", "free text"),
                field("minDisk", "size", "", "instances need a flavor with at least this root disk"),
                field("minRam", "size", "", "instances need a flavor with at least this memory"),
            ], notes: [])
        case .priceList:
            KindReference(kind: kind, lives: "cloud-wide; `manifests/pricing.yaml`", summary: "What tenants pay: exact decimal money, per flavor and per resource.", fields: [
                field("currency", "three upper-case letters", "required", "e.g. `CNY`"),
                field("flavors", "flavor → `{hourly, monthly}`", "required", "pay-as-you-go per hour; prepaid per month (optional); every flavor should have a price (warning otherwise)"),
                field("floatingIP", "`{daily}`", "", "per floating IP and day"),
                field("loadBalancer", "`{daily}`", "", "per load balancer and day"),
                field("volume", "`{perGBMonth}`", "", "per GB of volume and month"),
                field("bandwidth", "`{perGB}`", "not charged", "per GB (10⁹ bytes) an instance sends across the region's edge (from its floating IP, masqueraded, or through a load balancer), counted on its compute node and metered by `stacklab serve` or `stacklab meter`"),
                field("internalBandwidth", "`{perGB}`", "not charged", "per GB an instance sends inside the provider (other instances, internal ranges)"),
                field("storage", "`{perGBMonth}`", "not charged", "per GB-month (10⁹ bytes for 730 hours) a tenant's account holds in a region's object store, sampled once per hour by `stacklab serve` or `stacklab meter`; a container that left the manifests keeps billing until it is emptied"),
                field("coupons", "list of `{code, percentOff \\| amountOff, expires, tenants}`", "", "discounts; `tenants` limits one to some tenants"),
                field("rounding", "`up` \\| `exact`", "up", "`up` charges a started period whole; `exact` the part used"),
            ], notes: ["```yaml\nspec:\n  currency: CNY\n  flavors:\n    m1.small: {hourly: 0.67, monthly: 400}\n  floatingIP: {daily: 0.5}\n  volume: {perGBMonth: 0.3}\n  bandwidth: {perGB: 0.8}\n  coupons:\n    - {code: WELCOME2026, percentOff: 20, expires: 2026-12-31}\n```"])
        case .tenant:
            KindReference(kind: kind, lives: "cloud-wide; `manifests/tenants/`", summary: "A customer: who is billed, by which price list, within which quotas.", fields: [
                field("displayName", "string", "", "shown on statements"),
                field("contact", "e-mail", "", "who to reach"),
                field("billing", "`payAsYouGo` \\| `prepaid`", "payAsYouGo", "prepaid tenants' instances default to monthly billing"),
                field("priceList", "name", "the only one", "required when there is more than one price list"),
                field("quotas", "`{instances, vcpus, ram, volumes, floatingIPs, loadBalancers, storage, objects}`", "", "checked against what the tenant declares across all regions; `storage` (a size) and `objects` bound the tenant's account in each region's object store, enforced by Swift"),
                field("console", "`{tokens: [{name, sha256}]}`", "no login", "who may log in to the tenant's console on `stacklab serve` (`/console/`): each token by its SHA-256 only (`stacklab tenant token TENANT NAME` makes one and prints the line); a session ends when its token's line leaves the manifests"),
            ], notes: [])
        case .instance:
            KindReference(kind: kind, lives: "tenant, regional (its `region:` says where); `manifests/tenants/`", summary: "A virtual machine: a libvirt domain `<tenant>:<name>` on the compute node the scheduler picks.", fields: [
                field("flavor", "name", "required", "a declared Flavor"),
                field("image", "name", "required", "a declared Image (its `minDisk` must fit the flavor)"),
                field("network", "name", "required", "a Network of the instance's region"),
                field("keypair", "name", "", "a Keypair of the same tenant"),
                field("securityGroups", "list of names", "the tenant's `default`", "SecurityGroups of the same tenant"),
                field("fixedIP", "IPv4", "allocated", "inside the network's fixed range, not in its floating range, not the gateway, not used twice"),
                field("zone", "name", "", "a zone of the region with a compute node"),
                field("node", "name", "", "pin to a compute node of the region"),
                field("state", "`running` \\| `stopped`", "running", "power state"),
                field("billing", "`hourly` \\| `monthly`", "hourly", "how it is charged"),
                field("userData", "string", "", "cloud-init user data, served by the metadata service"),
            ], notes: [])
        case .volume:
            KindReference(kind: kind, lives: "tenant, regional (its `region:` says where); `manifests/tenants/`", summary: "A block device on one of the region's `volume` nodes, attached to an instance or not.", fields: [
                field("size", "size", "required", "capacity; a region's volumes must fit its volume nodes' disks"),
                field("instance", "name", "", "an instance of the same tenant and region"),
                field("device", "`vdb`, `vdc`, …", "next free", "unique per instance"),
                field("type", "`hdd` \\| `ssd`", "hdd", "storage type"),
                field("snapshots", "list of `{name}` or `{name, every, keep}`", "", "a one-off, or a schedule (`every: 6h|24h|7d`, `keep` default 7) in the region's object store"),
                field("from", "`{volume, snapshot}`", "", "create the volume from a stored snapshot of a volume of the same tenant (which may have left the manifests)"),
            ], notes: ["`snapshots` and `from` need the region's `objectStore`."])
        case .floatingIP:
            KindReference(kind: kind, lives: "tenant, regional (its `region:` says where); `manifests/tenants/`", summary: "A public address, DNAT to one instance on its compute node.", fields: [
                field("address", "IPv4", "required", "inside the network's floating range, unique"),
                field("instance", "name", "", "same tenant and region; one floating IP per instance"),
                field("network", "name", "the only one", "needed when the region has several networks with floating ranges"),
            ], notes: [])
        case .securityGroup:
            KindReference(kind: kind, lives: "tenant, cloud-wide or one region with `region:`; `manifests/tenants/`", summary: "Allow-only ingress rules for the instances that name it.", fields: [
                field("description", "string", "", "free text"),
                field("rules", "list of `{direction, protocol, ports, cidr \\| group}`", "", "`direction: ingress|egress`, `protocol: tcp|udp|icmp|any`; `group` (another group of the same tenant) instead of `cidr`"),
            ], notes: ["An egress rule is accepted with a warning and not enforced (the SWS filter governs where instances may go). An instance that names no group gets its tenant's group `default`, if there is one; with none, nothing may open a connection to it."])
        case .keypair:
            KindReference(kind: kind, lives: "tenant, cloud-wide or one region with `region:`; `manifests/tenants/`", summary: "An SSH public key handed to instances by the metadata service.", fields: [
                field("publicKey", "OpenSSH public key line", "required", "`ssh-ed25519 AAAA… comment`, ECDSA, or `ssh-rsa`"),
            ], notes: [])
        case .pipeline:
            KindReference(kind: kind, lives: "`ci/`", summary: "A CI pipeline: what triggers it, then its steps in order.", fields: [
                field("trigger", "`{event, branch}`", "required", "`change-proposed`, `change-approved` or `push` (with `branch`)"),
                field("steps", "list", "required", "`validate`, `plan: {regions}`, `apply: {region}`, `check: {region, expect}` (`no-drift`, `running`, `reachable`, `rings-balanced`), `wait: {minutes}`, `approve`"),
            ], notes: ["Each step is a bare word or a one-key mapping. Every region named must be declared; a region is applied at most once per pipeline and checked only after it was applied."])
        case .loadBalancer:
            KindReference(kind: kind, lives: "tenant, regional (its `region:` says where); `manifests/tenants/`", summary: "A load balancer on HAProxy on the region's `loadbalancer` nodes, in front of some of the tenant's instances.", fields: [
                field("listeners", "list of `{protocol, port}`", "required", "`http` (the region's port 80, routed by Host `<name>.<tenant>.lb.<region>.<suffix>`; at most one) or `tcp` (a port from the region's `publicDomains.ports`; TLS passes through); `port` is the members' port"),
                field("members", "list of names", "required", "instances of the same tenant and region"),
                field("balance", "`roundrobin` \\| `leastconn` \\| `source`", "roundrobin", "how connections are spread"),
                field("healthCheck", "`{type, path, expect, interval, rise, fall}`", "tcp, 2s, rise 2, fall 3", "`type: tcp|http`; an http check sends `GET path` (default `/`) expecting `expect` (default 200); `interval` like `500ms` or `2s`"),
                field("stickiness", "`none` \\| `cookie`", "none", "`cookie`: an http client keeps its member (http listeners only)"),
            ], notes: ["Needs the region's `publicDomains` and a node with role `loadbalancer`. Billed per started day (the price list's `loadBalancer`). Counted against the tenant's `quotas.loadBalancers`."])
        case .alarm:
            KindReference(kind: kind, lives: "tenant, regional (its `region:` says where); `manifests/tenants/`", summary: "A metric over some of the tenant's instances above a threshold for a while, notified to a webhook: a Prometheus alerting rule and an Alertmanager route (`stacklab monitoring config`).", fields: [
                field("instances", "list of names", "required", "instances of the same tenant and region"),
                field("metric", "`cpu` \\| `diskRead` \\| `diskWrite` \\| `networkIn` \\| `networkOut`", "required", "CPU utilization, or bytes per second"),
                field("above", "number or size", "required", "percent of one CPU for `cpu` (two busy vCPUs are 200), a size meaning per second for the others (`10MiB`)"),
                field("for", "duration", "5m", "how long it must stay above (`30s`, `5m`, `1h`; at most `7d`)"),
                field("notify", "http(s) URL", "required", "the webhook Alertmanager posts to; its host must be in the region's `alarmWebhooks`, and not in the provider's internal ranges"),
            ], notes: ["Each instance is one alert (`StackLabAlarm{tenant, region, alarm, server}`), annotated with the alarm's `file:line`."])
        case .container:
            KindReference(kind: kind, lives: "tenant, regional (its `region:` says where); `manifests/tenants/`", summary: "A container in the tenant's account of the region's object store (Swift), with who else may read or write it.", fields: [
                field("public", "`false` \\| `read` \\| `list`", "false", "`read`: anyone may read its objects; `list`: and list them"),
                field("readers", "list of tenants", "", "other tenants that may read and list it"),
                field("writers", "list of tenants", "", "other tenants that may create, replace and delete its objects"),
                field("allowReferrers", "list of hosts", "", "with `public`, only pages of these hosts may read it (`example.org`; `.example.org` for its subdomains): a convenience against hot-linking, not a security boundary, since any client can send any `Referer`"),
                field("versioning", "boolean", "false", "an overwritten or deleted object keeps its old versions"),
            ], notes: ["Needs the region's `objectStore` with a `reseller` credential. Each tenant has its own Swift account (`AUTH_tenant_<tenant>`), apart from the operator's. A container that leaves the manifests is deleted only when it is empty."])
        case .firewall, .dhcp, .haproxy, .snapshot:
            KindReference(kind: kind, lives: "derived", summary: "", fields: [], notes: [])
        }
    }
}
