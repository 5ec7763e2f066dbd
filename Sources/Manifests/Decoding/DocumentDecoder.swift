import YAML

/// Decodes every document of one file (`kind`, `name`, `region`, `tenant`, `spec`) into a partial model.
struct DocumentDecoder {
    let decoder: ManifestDecoder
    /// The region implied by the file's place (`regions/<name>/…`), if any.
    let implicitRegion: String?

    private static let topLevelFields = ["kind", "name", "region", "tenant", "spec"]

    /// Decodes the whole stream into `model`. Syntax errors end the file with one diagnostic; returns false then.
    @discardableResult
    func decodeStream(into model: inout DesiredModel) -> Bool {
        // A document cut short by a syntax error says nothing reliable: only the syntax error is reported for it.
        var diagnosticsBeforeDocument = 0
        do {
            let reader = decoder.reader
            _ = try reader.next()  // stream start
            while true {
                let event = try reader.next()
                if event.kind == .streamEnd { break }
                guard event.kind == .documentStart else { continue }
                diagnosticsBeforeDocument = decoder.diagnostics.count
                try decodeDocument(startingAt: event.mark, into: &model)
                _ = try reader.next()  // document end
            }
            return true
        } catch {
            decoder.discardDiagnostics(after: diagnosticsBeforeDocument)
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
        var kindText: Located<String>?
        var name: Located<String>?, region: Located<String>?, tenant: Located<String>?
        var captured: [Event]?
        var pending: PendingResource?
        var specDecoded = false
        var sawKind = false, sawName = false
        guard let mapping = try d.mapping("a manifest document", { key throws(YAMLError) in
            sawKind = sawKind || key.value == "kind"
            sawName = sawName || key.value == "name"
            switch key.value {
            case "kind": kindText = try d.string("kind")
            case "name": name = try d.name("name")
            case "region": region = try d.name("region")
            case "tenant": tenant = try d.name("tenant")
            case "spec":
                // The usual order (kind, name, …, spec) decodes in one pass; a spec written before its kind
                // or name is captured and decoded once the document's mapping is complete.
                if let kindText, let kind = Kind(rawValue: kindText.value), let name {
                    pending = try decodeSpec(kind, what: "\(kind.addressName) '\(name.value)'")
                    specDecoded = true
                } else {
                    captured = try d.reader.captureNode()
                }
            default: try d.unknownField(key, in: "a manifest document", known: Self.topLevelFields)
            }
        }) else { return }
        guard let kindText else {
            if !sawKind {
                d.error("document has no 'kind'", at: mapping.mark, hint: "start it with e.g. 'kind: Instance'")
            }
            return
        }
        guard let kind = Kind(rawValue: kindText.value), !kind.isDerived else {
            let names = Kind.manifestKinds.map(\.rawValue)
            let hint = ManifestDecoder.closest(to: kindText.value, in: names).map { "did you mean '\($0)'?" }
                ?? "kinds are: \(names.joined(separator: ", "))"
            d.report(.error("unknown kind '\(kindText.value)'", at: kindText.location, hint: hint))
            return
        }
        guard let name else {
            if !sawName { d.error("\(kind.rawValue) document is missing required field 'name'", at: mapping.mark) }
            return
        }
        let what = { "\(kind.addressName) '\(name.value)'" }
        let meta = scope(kind: kind, name: name, region: region, tenant: tenant, mapping: mapping, what: what())
        if !specDecoded {
            if let captured {
                d.reader.replay(captured)
            } else if [.region, .tenant, .floatingIP, .securityGroup, .pipeline].contains(kind) {
                // Kinds whose every field is optional may leave out `spec`.
                d.reader.replay([Event(kind: .scalar, mark: mapping.mark, value: "")])
            } else {
                d.error("\(what()) is missing required field 'spec'", at: mapping.mark)
                d.lostNames.append(name.value)
                return
            }
            pending = try decodeSpec(kind, what: what())
        }
        if let meta, let pending {
            pending(meta, &model)
        } else {
            d.lostNames.append(name.value)
        }
    }

    /// A decoded spec waiting for its identity, which is complete only at the end of the document.
    private typealias PendingResource = (ObjectMeta, inout DesiredModel) -> Void

    private func decodeSpec(_ kind: Kind, what: @autoclosure () -> String) throws(YAMLError) -> PendingResource? {
        switch kind {
        case .region: try pending(RegionSpec.self, \.regions, what())
        case .node: try pending(NodeSpec.self, \.nodes, what())
        case .network: try pending(NetworkSpec.self, \.networks, what())
        case .filter: try pending(FilterSpec.self, \.filters, what())
        case .ring: try pending(RingSpec.self, \.rings, what())
        case .flavor: try pending(FlavorSpec.self, \.flavors, what())
        case .image: try pending(ImageSpec.self, \.images, what())
        case .priceList: try pending(PriceListSpec.self, \.priceLists, what())
        case .tenant: try pending(TenantSpec.self, \.tenants, what())
        case .instance: try pending(InstanceSpec.self, \.instances, what())
        case .volume: try pending(VolumeSpec.self, \.volumes, what())
        case .floatingIP: try pending(FloatingIPSpec.self, \.floatingIPs, what())
        case .securityGroup: try pending(SecurityGroupSpec.self, \.securityGroups, what())
        case .keypair: try pending(KeypairSpec.self, \.keypairs, what())
        case .loadBalancer: try pending(LoadBalancerSpec.self, \.loadBalancers, what())
        case .alarm: try pending(AlarmSpec.self, \.alarms, what())
        case .container: try pending(ContainerSpec.self, \.containers, what())
        case .pipeline: try pending(PipelineSpec.self, \.pipelines, what())
        case .firewall, .dhcp, .haproxy, .snapshot: nil  // refused before: never a manifest's kind
        }
    }

    private func pending<S: DecodableSpec>(_ type: S.Type, _ list: WritableKeyPath<DesiredModel, [Resource<S>]>,
                                           _ what: @autoclosure () -> String) throws(YAMLError) -> PendingResource? {
        guard let spec = try S.decode(from: decoder, what: "the spec of \(what())") else { return nil }
        return { meta, model in model[keyPath: list].append(Resource(meta: meta, spec: spec)) }
    }

    /// Checks `region`/`tenant` against the kind's scope and the file's place.
    private func scope(kind: Kind, name: Located<String>, region: Located<String>?, tenant: Located<String>?,
                       mapping: ManifestDecoder.Mapping, what: @autoclosure () -> String) -> ObjectMeta? {
        let d = decoder
        var region = region
        var ok = true
        if let implicitRegion, let given = region, given.value != implicitRegion {
            d.report(.error("\(what()) says region '\(given.value)' but lives under regions/\(implicitRegion)/", at: given.location,
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
                d.error("\(what()) needs a 'region'", at: mapping.mark, hint: "add 'region: <name>', or put the document under regions/<name>/")
                ok = false
            }
        case .optionalRegion, .tenantOptionalRegion:
            break
        }
        switch kind.scope {
        case .tenantRegional, .tenantOptionalRegion:
            if tenant == nil {
                d.error("\(what()) needs a 'tenant'", at: mapping.mark, hint: "add 'tenant: <name>' naming the owning tenant")
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
}
