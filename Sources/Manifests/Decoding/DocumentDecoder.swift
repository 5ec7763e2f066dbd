import YAML

/// Decodes every document of one file (`kind`, `name`, `region`, `tenant`, `spec`) into a partial model.
struct DocumentDecoder {
    let decoder: ManifestDecoder
    /// The region implied by the file's place (`regions/<name>/…`), if any.
    let implicitRegion: String?
    /// Whether the file is under `ci/`, where pipeline documents of any shape are tolerated.
    let isPipelineFile: Bool

    private static let topLevelFields = ["kind", "name", "region", "tenant", "spec"]

    /// Decodes the whole stream into `model`. Syntax errors end the file with one diagnostic; returns false then.
    @discardableResult
    func decodeStream(into model: inout DesiredModel) -> Bool {
        do {
            let reader = decoder.reader
            _ = try reader.next()  // stream start
            while true {
                let event = try reader.next()
                if event.kind == .streamEnd { break }
                guard event.kind == .documentStart else { continue }
                try decodeDocument(startingAt: event.mark, into: &model)
                _ = try reader.next()  // document end
            }
            return true
        } catch {
            decoder.error(error.message, at: error.mark, hint: error.hint)
            return false
        }
    }

    private func decodeDocument(startingAt mark: Mark, into model: inout DesiredModel) throws(YAMLError) {
        let d = decoder
        let root = try d.reader.peek()
        if ManifestDecoder.isNull(root) {
            _ = try d.reader.next()
            return
        }
        if isPipelineFile, root.kind == .mappingStart {
            // Pipelines are interpreted by the pipelines module; here any shape is accepted.
            let events = try d.reader.captureNode()
            let kind = Self.topLevelValue(of: "kind", in: events)
            if kind == nil || kind?.value == Kind.pipeline.rawValue {
                recordPipeline(events, kind: kind, into: &model)
                return
            }
            d.reader.replay(events)
        }
        var kindText: Located<String>?
        var name: Located<String>?, region: Located<String>?, tenant: Located<String>?
        var spec: [Event]?
        guard let mapping = try d.mapping("a manifest document", { key throws(YAMLError) in
            switch key.value {
            case "kind": kindText = try d.string("kind")
            case "name": name = try d.name("name")
            case "region": region = try d.name("region")
            case "tenant": tenant = try d.name("tenant")
            case "spec": spec = try d.reader.captureNode()
            default: try d.unknownField(key, in: "a manifest document", known: Self.topLevelFields)
            }
        }) else { return }
        guard let kindText else {
            if mapping.keys.contains("kind") { return }
            d.error("document has no 'kind'", at: mapping.mark, hint: "start it with e.g. 'kind: Instance'")
            return
        }
        guard let kind = Kind(rawValue: kindText.value) else {
            let names = Kind.allCases.map(\.rawValue)
            let hint = ManifestDecoder.closest(to: kindText.value, in: names).map { "did you mean '\($0)'?" }
                ?? "kinds are: \(names.joined(separator: ", "))"
            d.report(.error("unknown kind '\(kindText.value)'", at: kindText.location, hint: hint))
            return
        }
        d.require(["name"], in: mapping, what: "\(kind.rawValue) document")
        guard let name else { return }
        let what = "\(kind.addressName) '\(name.value)'"
        guard let meta = scope(kind: kind, name: name, region: region, tenant: tenant, mapping: mapping, what: what) else { return }
        guard let spec else {
            // Kinds whose every field is optional may leave out `spec`.
            if [.region, .tenant, .floatingIP, .securityGroup, .pipeline].contains(kind) {
                d.reader.replay([Event(kind: .scalar, mark: mapping.mark, value: "")])
                try append(kind: kind, meta: meta, what: what, into: &model)
            } else {
                d.error("\(what) is missing required field 'spec'", at: mapping.mark)
            }
            return
        }
        d.reader.replay(spec)
        try append(kind: kind, meta: meta, what: what, into: &model)
    }

    /// Checks `region`/`tenant` against the kind's scope and the file's place.
    private func scope(kind: Kind, name: Located<String>, region: Located<String>?, tenant: Located<String>?,
                       mapping: ManifestDecoder.Mapping, what: String) -> ObjectMeta? {
        let d = decoder
        var region = region
        var ok = true
        if let implicitRegion, let given = region, given.value != implicitRegion {
            d.report(.error("\(what) says region '\(given.value)' but lives under regions/\(implicitRegion)/", at: given.location,
                            hint: "move the document to regions/\(given.value)/, or write region: \(implicitRegion)"))
            ok = false
        }
        switch kind.scope {
        case .global:
            if let region {
                d.report(.error("\(kind.rawValue) is cloud-wide and takes no 'region'", at: region.location, hint: "remove 'region'"))
                ok = false
            }
        case .regional, .tenantRegional:
            if region == nil, let implicitRegion {
                region = Located(implicitRegion, at: d.location(mapping.mark))
            }
            if region == nil {
                d.error("\(what) needs a 'region'", at: mapping.mark, hint: "add 'region: <name>', or put the document under regions/<name>/")
                ok = false
            }
        case .optionalRegion, .tenantOptionalRegion:
            break
        }
        switch kind.scope {
        case .tenantRegional, .tenantOptionalRegion:
            if tenant == nil {
                d.error("\(what) needs a 'tenant'", at: mapping.mark, hint: "add 'tenant: <name>' naming the owning tenant")
                ok = false
            }
        case .global, .regional, .optionalRegion:
            if let tenant {
                d.report(.error("\(kind.rawValue) does not belong to a tenant and takes no 'tenant'", at: tenant.location, hint: "remove 'tenant'"))
                ok = false
            }
        }
        guard ok else { return nil }
        return ObjectMeta(kind: kind, name: name, region: region, tenant: tenant, location: d.location(mapping.mark))
    }

    private func append(kind: Kind, meta: ObjectMeta, what: String, into model: inout DesiredModel) throws(YAMLError) {
        switch kind {
        case .region: if let r = try resource(RegionSpec.self, meta, what) { model.regions.append(r) }
        case .node: if let r = try resource(NodeSpec.self, meta, what) { model.nodes.append(r) }
        case .network: if let r = try resource(NetworkSpec.self, meta, what) { model.networks.append(r) }
        case .filter: if let r = try resource(FilterSpec.self, meta, what) { model.filters.append(r) }
        case .ring: if let r = try resource(RingSpec.self, meta, what) { model.rings.append(r) }
        case .flavor: if let r = try resource(FlavorSpec.self, meta, what) { model.flavors.append(r) }
        case .image: if let r = try resource(ImageSpec.self, meta, what) { model.images.append(r) }
        case .priceList: if let r = try resource(PriceListSpec.self, meta, what) { model.priceLists.append(r) }
        case .tenant: if let r = try resource(TenantSpec.self, meta, what) { model.tenants.append(r) }
        case .instance: if let r = try resource(InstanceSpec.self, meta, what) { model.instances.append(r) }
        case .volume: if let r = try resource(VolumeSpec.self, meta, what) { model.volumes.append(r) }
        case .floatingIP: if let r = try resource(FloatingIPSpec.self, meta, what) { model.floatingIPs.append(r) }
        case .securityGroup: if let r = try resource(SecurityGroupSpec.self, meta, what) { model.securityGroups.append(r) }
        case .keypair: if let r = try resource(KeypairSpec.self, meta, what) { model.keypairs.append(r) }
        case .pipeline: if let r = try resource(PipelineSpec.self, meta, what) { model.pipelines.append(r) }
        }
    }

    private func resource<S: DecodableSpec>(_ type: S.Type, _ meta: ObjectMeta, _ what: String) throws(YAMLError) -> Resource<S>? {
        try S.decode(from: decoder, what: "the spec of \(what)").map { Resource(meta: meta, spec: $0) }
    }

    /// Records a pipeline document by name (when it has a valid one) without interpreting it.
    private func recordPipeline(_ events: [Event], kind: Event?, into model: inout DesiredModel) {
        guard let kind, let name = Self.topLevelValue(of: "name", in: events), name.kind == .scalar,
              ManifestDecoder.isValidName(name.value) else { return }
        let meta = ObjectMeta(kind: .pipeline, name: Located(name.value, at: decoder.location(name.mark)),
                              region: nil, tenant: nil, location: decoder.location(kind.mark))
        model.pipelines.append(Resource(meta: meta, spec: PipelineSpec()))
    }

    /// The value event of `key` in the top-level mapping that `events` hold (nil if absent).
    private static func topLevelValue(of key: String, in events: [Event]) -> Event? {
        var index = 1  // after mappingStart
        while index + 1 < events.count, events[index].kind != .mappingEnd {
            let keyEvent = events[index]
            let value = events[index + 1]
            if keyEvent.kind == .scalar, keyEvent.value == key { return value }
            index += 1
            var level = 0
            repeat {
                if events[index].opensCollection { level += 1 } else if events[index].closesCollection { level -= 1 }
                index += 1
            } while level > 0 && index < events.count
        }
        return nil
    }
}
