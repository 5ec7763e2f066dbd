extension Validator {
    /// Alarms watch the tenant's own instances in their region, and notify only a webhook host the region allows
    /// that is not in the provider's internal ranges (the provider's Alertmanager must not post into its network).
    mutating func checkAlarms() {
        for alarm in model.alarms {
            let region = alarm.region!, tenant = alarm.tenant!
            let what = "alarm '\(alarm.name)'"
            checkInstances(alarm.spec.instances, of: what, noun: "instance", region: region, tenant: tenant,
                           none: ("\(what) watches no instances", "list the instances it watches"))
            guard let regionResource = index.regions[region], let host = AlarmSpec.host(of: alarm.spec.notify.value) else { continue }
            let name = String(host.prefix { $0 != ":" })
            if let ip = IPv4Address(parsing: name), regionResource.spec.effectiveInternalRanges.contains(where: { $0.contains(ip) }) || name.hasPrefix("127.") {
                error("\(what) notifies \(host), an address in the provider's internal ranges", at: alarm.spec.notify.location,
                      hint: "a tenant's webhook must be outside the provider's network")
                continue
            }
            let allowed = regionResource.spec.alarmWebhooks?.value.map(\.value) ?? []
            if !allowed.contains(host) && !allowed.contains(name) {
                error("\(what) notifies \(host), which region '\(region)' does not allow", at: alarm.spec.notify.location,
                      hint: allowed.isEmpty ? "the operator lists allowed webhook hosts in region '\(region)''s alarmWebhooks (\(place(regionResource.meta.location)))"
                          : "allowed: \(allowed.joined(separator: ", "))")
            }
        }
    }
}
