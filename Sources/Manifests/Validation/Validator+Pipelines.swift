extension Validator {
    /// Pipelines name declared regions; a region is applied once per pipeline and checked only after it was applied;
    /// a push trigger names its branch.
    mutating func checkPipelines() {
        let regions = Set(model.regions.map(\.name))
        for pipeline in model.pipelines {
            var applied: Set<String> = []
            let named = pipeline.spec.steps.value.flatMap { step -> [Located<String>] in
                if case .plan(let list?) = step.value { return list }
                return step.value.region.map { [$0] } ?? []
            }
            for region in named where !regions.contains(region.value) {
                error("pipeline '\(pipeline.name)' names region '\(region.value)', which is not declared", at: region.location,
                      hint: ManifestDecoder.closest(to: region.value, in: regions.sorted()).map { "did you mean '\($0)'?" } ?? "declared regions: \(regions.sorted().joined(separator: ", "))")
            }
            for step in pipeline.spec.steps.value {
                switch step.value {
                case .apply(let region):
                    if !applied.insert(region.value).inserted {
                        error("pipeline '\(pipeline.name)' applies region '\(region.value)' twice", at: region.location)
                    }
                case .check(let region, _) where !applied.contains(region.value):
                    error("pipeline '\(pipeline.name)' checks region '\(region.value)' before applying it", at: region.location,
                          hint: "put 'apply: {region: \(region.value)}' before the check")
                case .check, .validate, .plan, .wait, .approve:
                    continue
                }
            }
            if pipeline.spec.steps.value.isEmpty {
                error("pipeline '\(pipeline.name)' has no steps", at: pipeline.spec.steps.location)
            }
            if pipeline.spec.event?.value == .push && pipeline.spec.branch == nil {
                warning("pipeline '\(pipeline.name)' runs on every push to any branch", at: pipeline.meta.name.location, hint: "name the branch: trigger: {event: push, branch: main}")
            }
        }
    }
}
