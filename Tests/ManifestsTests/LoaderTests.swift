import Foundation
import ManifestSources
import Manifests
import TestSupport
import Testing

@Suite struct LoaderTests {
    private func load(_ scratch: Scratch, rev: String? = nil, limits: LoadLimits = LoadLimits()) throws -> LoadResult {
        let loader = Loader(limits: limits)
        if let rev { return try loader.load(GitSource(repository: scratch.path, revision: rev)) }
        return try loader.load(DirectorySource(root: scratch.path))
    }

    private func messages(_ result: LoadResult) -> [String] {
        result.diagnostics.map { d in d.location.map { "\(result.files.describe($0)): \(d.message)" } ?? d.message }
    }

    @Test func theBundledDeploymentIsValidFromTheTreeAndFromGit() throws {
        let scratch = try Scratch("reference")
        for root in ManifestLayout.roots {
            try scratch.overlay(from: (Fixtures.packageRoot as NSString).appendingPathComponent(root), into: root)
        }
        let fromTree = try load(scratch)
        #expect(!fromTree.hasErrors, "\(messages(fromTree))")
        try GitCLI.commitAll(in: scratch.path)
        let fromGit = try load(scratch, rev: "main")
        #expect(!fromGit.hasErrors, "\(messages(fromGit))")
        #expect(fromGit.model.regions.map(\.name).sorted() == ["intel", "s2c", "sina", "sjtu", "staging"])
        for region in fromGit.model.regions {
            let nodes = fromGit.model.nodes.filter { $0.region == region.name }
            #expect(nodes.count >= 3)
            #expect(Set(nodes.map { $0.spec.zone?.value ?? $0.name }).count == nodes.count, "every server is its own zone")
            for node in nodes where node.spec.has(.storage) {
                #expect(node.spec.disks?.value.count == 12)
                #expect(node.spec.disks?.value.allSatisfy { $0.size.value == ByteSize(bytes: 2_000_000_000_000) } == true)
            }
        }
        let devops = Set(fromGit.model.instances.filter { $0.tenant == "devops" }.map(\.name))
        #expect(devops.isSuperset(of: ["openstackblog", "gitorious", "puppet", "gerrit", "jenkins", "devstack"]))
    }

    @Test func everyRevisionIsReadFromItsOwnTree() throws {
        let scratch = try Fixtures.deployment()
        let first = try GitCLI.commitAll(in: scratch.path, message: "valid")
        try scratch.write("manifests/broken.yaml", "kind: Flavor\nname: x\nspec: {vcpus: many, ram: 1GiB, disk: 1GiB}\n")
        try GitCLI.commitAll(in: scratch.path, message: "broken")
        try FileManager.default.removeItem(atPath: scratch.file("manifests/broken.yaml"))
        #expect(try load(scratch, rev: "HEAD").hasErrors)
        #expect(try !load(scratch, rev: "HEAD~1").hasErrors)
        #expect(try !load(scratch, rev: String(first.prefix(10))).hasErrors)
        #expect(try !load(scratch).hasErrors, "the working tree no longer has the broken file")
        let result = try load(scratch, rev: "HEAD")
        #expect(result.revision?.count == 40)
        #expect(messages(result) == ["manifests/broken.yaml:3:15: expected an integer for 'vcpus', found 'many'"])
    }

    @Test func anUnknownRevisionIsASourceErrorWithAHint() throws {
        let scratch = try Fixtures.deployment()
        try GitCLI.commitAll(in: scratch.path)
        do {
            _ = try load(scratch, rev: "release-9")
            Issue.record("expected a source error")
        } catch let error as SourceError {
            #expect(error.message.contains("release-9"))
            #expect(error.hint?.contains("git -C") == true)
        }
    }

    @Test func aFileOverTheLimitIsRefusedWithoutReadingIt() throws {
        let scratch = try Fixtures.deployment()
        var big = "kind: Tenant\nname: big\nspec:\n  displayName: |\n"
        let line = "    " + String(repeating: "x", count: 95) + "\n"
        big.reserveCapacity(50 << 20)
        while big.utf8.count < 50 << 20 { big += line }
        try scratch.write("manifests/big.yaml", big)
        let fromTree = try load(scratch)
        #expect(messages(fromTree) == ["manifests/big.yaml:1:1: file is 50.0 MiB, larger than the 8.0 MiB limit for one manifest"])
        try GitCLI.commitAll(in: scratch.path)
        #expect(messages(try load(scratch, rev: "HEAD")) == messages(fromTree))
        #expect(try !load(scratch, limits: LoadLimits(maxFileBytes: 64 << 20)).hasErrors)
    }

    @Test func symlinksOutsideTheRepositoryAreRefused() throws {
        let outside = try Scratch("outside")
        try outside.write("secret.yaml", "kind: Tenant\nname: secret\n")
        let scratch = try Fixtures.deployment()
        try FileManager.default.createSymbolicLink(atPath: scratch.file("manifests/escape.yaml"), withDestinationPath: outside.file("secret.yaml"))
        try FileManager.default.createSymbolicLink(atPath: scratch.file("manifests/relative.yaml"), withDestinationPath: "../../\(URL(fileURLWithPath: outside.path).lastPathComponent)/secret.yaml")
        try FileManager.default.createSymbolicLink(atPath: scratch.file("manifests/inside.yaml"), withDestinationPath: "tenants/other.yaml")
        let fromTree = try load(scratch)
        let expected = [
            "manifests/escape.yaml:1:1: symbolic link to '\(outside.file("secret.yaml"))' points outside the manifest directories (manifests/, regions/, ci/)",
            "manifests/relative.yaml:1:1: symbolic link to '../../\(URL(fileURLWithPath: outside.path).lastPathComponent)/secret.yaml' points outside the manifest directories (manifests/, regions/, ci/)",
        ]
        // The link to a file inside the repository is followed, so 'other' is declared twice.
        #expect(messages(fromTree).filter { $0.contains("symbolic link") } == expected)
        #expect(messages(fromTree).contains { $0.hasPrefix("manifests/tenants/other.yaml:2:7: duplicate tenant 'other'") })
        #expect(!fromTree.model.tenants.contains { $0.name == "secret" })
        try GitCLI.commitAll(in: scratch.path)
        let fromGit = try load(scratch, rev: "HEAD")
        #expect(messages(fromGit) == messages(fromTree))
    }

    @Test func specMayComeBeforeKind() throws {
        let scratch = try Fixtures.deployment()
        try scratch.write("manifests/reordered.yaml", "spec:\n  vcpus: 2\n  ram: 4GiB\n  disk: 40GiB\nname: m1.medium\nkind: Flavor\n")
        let result = try load(scratch)
        let flavor = try #require(result.model.flavors.first { $0.name == "m1.medium" })
        #expect(flavor.spec.vcpus.value == 2)
        #expect(flavor.spec.vcpus.location.line == 2)
        #expect(messages(result) == ["manifests/reordered.yaml:5:7: flavor 'm1.medium' has no price in price list 'standard'; instances of it cannot be billed"])
    }

    @Test func anchorsAndAliasesWithinLimitsAreExpanded() throws {
        let scratch = try Fixtures.deployment()
        try scratch.write("manifests/anchored.yaml", """
            kind: SecurityGroup
            name: shared
            tenant: acme
            spec:
              rules:
                - &https {protocol: tcp, ports: 443, cidr: 0.0.0.0/0}
                - *https
            """)
        let result = try load(scratch)
        #expect(!result.hasErrors)
        #expect(result.model.securityGroups.first { $0.name == "shared" }?.spec.rules?.value.count == 2)
    }

    @Test func parallelAndSerialParsingAgree() throws {
        let scratch = try Fixtures.deployment(overlay: "diagnostics/29-many-errors")
        let serial = try load(scratch, limits: LoadLimits(parallelism: 1))
        let parallel = try load(scratch, limits: LoadLimits(parallelism: 4))
        #expect(messages(serial) == messages(parallel))
        #expect(serial.model.metas.map(\.address) == parallel.model.metas.map(\.address))
    }

    @Test func aRingWithMoreDevicesThanTheFormatHoldsIsRefused() throws {
        let scratch = try Fixtures.deployment()
        // 5,462 storage servers × 12 disks (+ the base lab's 6) = 65,550 devices: more than Swift's 2-byte device ids allow.
        var nodes = ""
        for index in 0..<5_462 {
            nodes += "---\nkind: Node\nname: big-\(index)\nspec: {address: 10.\(100 + index / 62500).\(index / 250 % 250).\(index % 250 + 1), libvirt: simulated, roles: [storage], cpus: 8, memory: 16GiB, disks: ["
            nodes += (0..<12).map { "{name: d\($0), size: 1TB}" }.joined(separator: ", ") + "]}\n"
        }
        try scratch.write("regions/lab/big.yaml", nodes)
        let result = try load(scratch)
        #expect(messages(result).contains { $0.hasPrefix("regions/lab/rings.yaml:2:7: ring 'object' selects 65550 devices; Swift's ring format holds at most 65535") }, "\(messages(result).prefix(5))")
    }
}

/// The incremental load and document digests.
@Suite struct IncrementalLoadTests {
    fileprivate static func render(_ result: LoadResult) -> String {
        DiagnosticRenderer(files: result.files).render(result.diagnostics)
    }
    private func render(_ result: LoadResult) -> String { Self.render(result) }
    private func addresses(_ result: LoadResult) -> [String] { Self.addresses(result) }

    fileprivate static func addresses(_ result: LoadResult) -> [String] {
        result.model.metas.map { "\($0.address) \($0.digest)" }
    }

    /// HEAD of `repo` loaded as the service loads it (`RevisionLoader`, through `cache`: the tree's changes applied to
    /// the last load when it can, else only changed blobs read), and loaded afresh. A second cache that is always given
    /// the whole tree must find the same.
    private final class Loads {
        let repo: Scratch
        let cache = DecodeCache()
        private let loader: RevisionLoader
        private let whole = DecodeCache()
        /// Whether the last load applied the tree's changes.
        private(set) var applied = false

        private let limits: LoadLimits

        init(_ repo: Scratch, limits: LoadLimits = LoadLimits()) {
            self.repo = repo
            self.limits = limits
            loader = RevisionLoader(repository: repo.path, limits: limits, decodes: cache)
        }

        func both(sourceLocation: Testing.SourceLocation = #_sourceLocation) throws -> (incremental: LoadResult, full: LoadResult) {
            let incremental = try loader.load(revision: "HEAD")
            applied = loader.lastReuse.changesApplied
            let full = try Loader(limits: limits).load(GitSource(repository: repo.path, revision: "HEAD"))
            let snapshot = try GitSource(repository: repo.path, revision: "HEAD", known: whole.known).read(limits: limits)
            let wholeLoad = Loader(limits: limits).load(snapshot, cache: whole)
            #expect(IncrementalLoadTests.render(wholeLoad) == IncrementalLoadTests.render(full), sourceLocation: sourceLocation)
            #expect(IncrementalLoadTests.addresses(wholeLoad) == IncrementalLoadTests.addresses(full), sourceLocation: sourceLocation)
            #expect(incremental.revision == full.revision, sourceLocation: sourceLocation)
            return (incremental, full)
        }
    }

    @Test func mergingPartsKeepsEveryResourceInPartOrderKindByKind() throws {
        let repo = try Fixtures.deployment()
        let model = try Loader().load(DirectorySource(root: repo.path)).model
        #expect(!model.metas.isEmpty)
        #expect(DesiredModel.merged([]).metas.isEmpty, "no parts: an empty model")
        #expect(DesiredModel.merged([model]).metas.map(\.address) == model.metas.map(\.address))
        // Two parts: each kind holds the first part's resources, then the second's.
        var twice = model
        twice.append(contentsOf: model)
        let merged = DesiredModel.merged([model, DesiredModel(), model])
        #expect(merged.metas.map(\.address) == twice.metas.map(\.address))
        #expect(merged.instances.count == 2 * model.instances.count && merged.nodes.count == 2 * model.nodes.count)
    }

    @Test func aSplicedLoadPlacesAgainOnlyTheReplacedInstancesAndFindsWhatAFullLoadFinds() throws {
        let repo = try Fixtures.deployment()
        try repo.write("manifests/tenants/zzz.yaml", """
            kind: Instance
            name: db-1
            region: edge
            tenant: other
            spec: {flavor: m1.small, image: ubuntu, network: private, keypair: theirs}
            """)
        // A quota the resizes below reach: the sums a spliced region's findings carry must be exact.
        let tenant = try String(contentsOfFile: repo.file("manifests/tenants/other.yaml"), encoding: .utf8)
        try repo.write("manifests/tenants/other.yaml", tenant.replacingOccurrences(of: "{displayName: Another Tenant}", with: "{displayName: Another Tenant, quotas: {vcpus: 6, ram: 24GiB}}"))
        try GitCLI.commitAll(in: repo.path)
        let loads = Loads(repo)
        let cache = loads.cache
        func both(_ comment: Comment, sourceLocation: Testing.SourceLocation = #_sourceLocation) throws -> String {
            let (incremental, full) = try loads.both(sourceLocation: sourceLocation)
            #expect(render(incremental) == render(full) && addresses(incremental) == addresses(full), comment, sourceLocation: sourceLocation)
            // Each region's instances as the load found them: positions of exactly that region's instances, in order.
            for load in [incremental, full] {
                let regions = Set(load.model.instances.compactMap(\.region))
                #expect(Set(load.instancesByRegion?.keys ?? [:].keys) == regions, comment, sourceLocation: sourceLocation)
                for region in regions {
                    let found = (load.instancesByRegion?[region] ?? []).map { load.model.instances[$0].address }
                    #expect(found == load.model.instances.filter { $0.region == region }.map(\.address), comment, sourceLocation: sourceLocation)
                }
            }
            return render(incremental)
        }
        #expect(try both("first load").hasPrefix("0 errors"))
        #expect(cache.validation.lastMoved == nil, "the first load places every instance")
        func edit(_ path: String, _ old: String, _ new: String) throws {
            let text = try String(contentsOfFile: repo.file(path), encoding: .utf8)
            #expect(text.contains(old))
            try repo.write(path, text.replacingOccurrences(of: old, with: new))
            try GitCLI.commitAll(in: repo.path)
        }

        // db-1 moves from lab to edge in its file (the file keeps its one instance): edge now has two.
        try edit("manifests/tenants/other.yaml", "name: db-1\nregion: lab", "name: db-1\nregion: edge")
        #expect(try both("moved to edge").contains("duplicate instance 'db-1'"))
        #expect(cache.lastSpliced && cache.validation.lastMoved == 1)
        #expect(loads.applied, "one file changed: applied to the last load")
        try edit("manifests/tenants/other.yaml", "name: db-1\nregion: edge", "name: db-1\nregion: lab")
        #expect(try both("moved back").hasPrefix("0 errors"))
        #expect(cache.validation.lastMoved == 1)
        // Two files at once, one instance each moving the other way.
        try edit("manifests/tenants/zzz.yaml", "region: edge", "region: lab")
        try edit("manifests/tenants/other.yaml", "name: db-1\nregion: lab", "name: db-1\nregion: edge")
        #expect(try both("swapped").hasPrefix("0 errors"))
        // A file gains an instance: every instance after it moves, so all are placed again.
        try edit("manifests/tenants/other.yaml", "keypair: theirs}", "keypair: theirs}\n---\nkind: Instance\nname: db-2\nregion: lab\ntenant: other\nspec: {flavor: m1.small, image: ubuntu, network: private, keypair: theirs}")
        #expect(try both("one more").hasPrefix("0 errors"))
        #expect(cache.validation.lastMoved == nil)
        try edit("manifests/tenants/zzz.yaml", "flavor: m1.small", "flavor: m1.large")
        #expect(try both("resized").hasPrefix("0 errors"))
        #expect(cache.validation.lastMoved == 1)
        #expect(cache.validation.lastSpliced == 1, "lab's clean findings, with db-1 counted again")

        // Spliced findings: the demand and usage taken away and added again are those a full check adds up.
        let db2 = "name: db-2\nregion: lab\ntenant: other\nspec: {flavor: m1.small"
        try edit("manifests/tenants/other.yaml", db2, "name: db-2\nregion: lab\ntenant: other\nspec: {flavor: m1.large")
        #expect(try both("over the quota").contains("quota"))
        #expect(cache.validation.lastSpliced == 1)
        try edit("manifests/tenants/other.yaml", "name: db-2\nregion: lab\ntenant: other\nspec: {flavor: m1.large", db2)
        #expect(try both("within it again").hasPrefix("0 errors"))
        #expect(cache.validation.lastSpliced == 1)
        // A replaced instance's own errors come with it; findings with errors are never spliced from.
        try edit("manifests/tenants/other.yaml", db2 + ", image: ubuntu", db2 + ", image: nope")
        #expect(try both("unknown image").contains("image 'nope', which is not declared"))
        #expect(cache.validation.lastSpliced == 1)
        try edit("manifests/tenants/other.yaml", db2 + ", image: nope", db2 + ", image: ubuntu")
        #expect(try both("known image").hasPrefix("0 errors"))
        #expect(cache.validation.lastSpliced == 0 && cache.validation.lastReused == 1, "lab's last findings had an error (edge's are kept)")
        // A file's own errors (decoding) come and go with the changes applied.
        try edit("manifests/tenants/other.yaml", db2, db2 + ", colour: blue")
        #expect(try both("an unknown field").contains("colour"))
        #expect(loads.applied)
        try edit("manifests/tenants/other.yaml", db2 + ", colour: blue", db2)
        #expect(try both("without it").hasPrefix("0 errors"))
        #expect(loads.applied)
        // A fixed IP or a name that changes is checked with the whole region: here each is now taken twice.
        try edit("manifests/tenants/zzz.yaml", "network: private,", "network: private, fixedIP: 10.20.0.50,")
        #expect(try both("db-1 at .50").hasPrefix("0 errors"))
        for (old, new) in [(db2 + ", image: ubuntu, network: private", db2 + ", image: ubuntu, network: private, fixedIP: 10.20.0.50"),
                           ("name: db-2\nregion: lab", "name: db-1\nregion: lab")] {
            try edit("manifests/tenants/other.yaml", old, new)
            #expect(try both("changed \(new)").contains("already used by") || new.hasPrefix("name:"))
            #expect(cache.validation.lastSpliced == 0)
            try edit("manifests/tenants/other.yaml", new, old)
            #expect(try both("back from \(new)").hasPrefix("0 errors"))
        }
    }

    @Test func aFileRefusedOnAPushIsReportedAsAFullLoadReportsIt() throws {
        let repo = try Fixtures.deployment()
        try GitCLI.commitAll(in: repo.path)
        let loads = Loads(repo, limits: LoadLimits(maxFileBytes: 4096))
        #expect(try !loads.both().incremental.hasErrors)
        let path = "manifests/tenants/other.yaml"
        let text = try String(contentsOfFile: repo.file(path), encoding: .utf8)
        try repo.write(path, text + "\n# " + String(repeating: "x", count: 5000) + "\n")
        try GitCLI.commitAll(in: repo.path)
        var (incremental, full) = try loads.both()
        #expect(!loads.applied, "a changed file over the limit: the whole tree is loaded")
        #expect(render(incremental) == render(full) && render(incremental).contains("larger than the 0.0 MiB limit"))
        try repo.write(path, text)
        try GitCLI.commitAll(in: repo.path)
        (incremental, full) = try loads.both()
        #expect(!loads.applied, "the file was not in the last load: the whole tree again")
        #expect(!incremental.hasErrors && render(incremental) == render(full) && addresses(incremental) == addresses(full))
        try repo.write(path, text.replacingOccurrences(of: "flavor: m1.small", with: "flavor: m1.large"))
        try GitCLI.commitAll(in: repo.path)
        (incremental, full) = try loads.both()
        #expect(loads.applied && !incremental.hasErrors && addresses(incremental) == addresses(full))
    }

    @Test func anIncrementalLoadEqualsAFullLoadAndDecodesOnlyWhatChanged() throws {
        let repo = try Fixtures.deployment()
        try GitCLI.commitAll(in: repo.path)
        let loads = Loads(repo)
        let cache = loads.cache
        func both() throws -> (incremental: LoadResult, full: LoadResult) { try loads.both() }
        var (incremental, full) = try both()
        let files = cache.lastDecoded
        #expect(files > 5 && cache.lastReused == 0)
        #expect(addresses(incremental) == addresses(full))

        // Edit one file, add one that sorts first and has errors, delete one.
        let other = try String(contentsOfFile: repo.file("manifests/tenants/other.yaml"), encoding: .utf8)
        try repo.write("manifests/tenants/other.yaml", other.replacingOccurrences(of: "flavor: m1.small", with: "flavor: m1.large"))
        try repo.write("manifests/aaa.yaml", "kind: Flavor\nname: m1.small\nspec: {vcpus: 1, ram: 1GiB, disk: 10GiB}\n---\nkind: Instance\n")
        try FileManager.default.removeItem(atPath: repo.file("ci/gate.yaml"))
        try GitCLI.commitAll(in: repo.path)
        (incremental, full) = try both()
        #expect(cache.lastDecoded == 2 && cache.lastReused == files - 2 && !cache.lastSpliced, "files came and went: merged anew")
        #expect(!loads.applied, "a path came and one went: the whole tree is loaded")
        #expect(addresses(incremental) == addresses(full))
        // Plan digests summed from each file's (kept ones and new ones) equal those of the whole model, walked.
        for load in [incremental, full] {
            #expect(load.planDigests.catalog == load.model.planDigests.catalog && load.planDigests.regions == load.model.planDigests.regions)
        }
        #expect(incremental.planDigests.regions.count == full.model.regions.count && incremental.planDigests.catalog != 0)
        #expect(incremental.hasErrors && render(incremental) == render(full))

        // Back to a valid tree: the removed file's id stays reserved, output is unchanged.
        try FileManager.default.removeItem(atPath: repo.file("manifests/aaa.yaml"))
        try GitCLI.commitAll(in: repo.path)
        (incremental, full) = try both()
        #expect(cache.lastDecoded == 0)
        #expect(!incremental.hasErrors && addresses(incremental) == addresses(full))
        #expect(cache.validation.lastReused == 0, "a flavor document went: every region's instances are checked again")
        (incremental, full) = try both()
        #expect(cache.validation.lastReused == 1, "nothing changed: lab's instance findings are kept (edge has none)")
        #expect(loads.applied && cache.lastDecoded == 0)
        #expect(cache.lastSpliced && cache.validation.lastKeptIndex, "nothing changed: every column is the same array, and so is the index")
        #expect(cache.validation.lastReusedOthers, "nothing changed: the findings of the rules over everything else are kept")

        // The instance a volume and a floating IP attach to is renamed, in a file whose other documents stay as they
        // are: the rules over volumes and floating IPs must see it (both now point at an instance that is not there).
        let acme = try String(contentsOfFile: repo.file("manifests/tenants/acme.yaml"), encoding: .utf8)
        try repo.write("manifests/tenants/acme.yaml", acme.replacingOccurrences(of: "name: web-1\n", with: "name: web-9\n"))
        try GitCLI.commitAll(in: repo.path)
        (incremental, full) = try both()
        #expect(!cache.validation.lastReusedOthers)
        #expect(incremental.hasErrors && render(incremental) == render(full))
        #expect(render(incremental).contains("instance 'web-1'"), "\(render(incremental))")
        // The same files: the kept model's runs of the changed file were replaced (spliced), every column as merged anew.
        #expect(cache.lastSpliced && addresses(incremental) == addresses(full))
        #expect(!cache.validation.lastKeptIndex, "acme's keypair and security group came again: the index is built again")
        try repo.write("manifests/tenants/acme.yaml", acme)
        try GitCLI.commitAll(in: repo.path)
        (incremental, full) = try both()
        #expect(!cache.validation.lastReusedOthers && !incremental.hasErrors && render(incremental) == render(full))

        // A link to a file that did not change: git leaves the blob out (its target's path has it), and the link's own
        // path never had it, so its bytes are found by digest.
        try FileManager.default.createSymbolicLink(atPath: repo.file("manifests/tenants/again.yaml"), withDestinationPath: "other.yaml")
        try GitCLI.commitAll(in: repo.path)
        (incremental, full) = try both()
        #expect(cache.lastDecoded == 1 && !loads.applied)
        #expect(addresses(incremental) == addresses(full) && render(incremental) == render(full))
        #expect(render(incremental).contains("again.yaml"), "the link's documents are decoded and found twice: \(render(incremental))")
        try FileManager.default.removeItem(atPath: repo.file("manifests/tenants/again.yaml"))
        try GitCLI.commitAll(in: repo.path)
        (incremental, full) = try both()
        #expect(!incremental.hasErrors && render(incremental) == render(full))

        // An instance error in lab only (a duplicate and a foreign keypair): lab is checked again.
        try repo.write("manifests/tenants/zzz.yaml", """
            kind: Instance
            name: db-1
            region: lab
            tenant: other
            spec: {flavor: m1.small, image: ubuntu, network: private, keypair: deploy}
            """)
        try GitCLI.commitAll(in: repo.path)
        (incremental, full) = try both()
        #expect(cache.validation.lastReused == 0)
        #expect(incremental.hasErrors && render(incremental) == render(full))
        #expect(render(incremental).contains("duplicate instance 'db-1'"))

        // A catalog change reaches every region's instances: nothing is kept.
        let catalog = try String(contentsOfFile: repo.file("manifests/catalog.yaml"), encoding: .utf8)
        try repo.write("manifests/catalog.yaml", catalog.replacingOccurrences(of: "name: m1.large", with: "name: m1.huge"))
        try GitCLI.commitAll(in: repo.path)
        (incremental, full) = try both()
        #expect(cache.validation.lastReused == 0)
        #expect(render(incremental) == render(full))
        #expect(render(incremental).contains("flavor 'm1.large', which is not declared"))
        #expect(addresses(incremental) == addresses(full))

        // Three files of several kinds change at once (acme and other each gain an instance, the catalog loses a
        // flavor): every run of each column they touch is replaced, the later first, so the earlier stay where counted.
        try repo.write("manifests/tenants/acme.yaml", acme.replacingOccurrences(of: "name: web-1\n", with: "name: web-9\n")
                       + "\n---\nkind: Instance\nname: web-10\nregion: lab\ntenant: acme\nspec: {flavor: m1.small, image: ubuntu, network: private}\n")
        try repo.write("manifests/catalog.yaml", catalog.replacingOccurrences(of: "kind: Flavor\nname: m1.large\nspec: {vcpus: 4, ram: 8GiB, disk: 80GiB}\n---\n", with: ""))
        let others = try String(contentsOfFile: repo.file("manifests/tenants/other.yaml"), encoding: .utf8)
        try repo.write("manifests/tenants/other.yaml", others
                       + "\n---\nkind: Instance\nname: db-2\nregion: lab\ntenant: other\nspec: {flavor: m1.small, image: ubuntu, network: private}\n")
        try GitCLI.commitAll(in: repo.path)
        (incremental, full) = try both()
        #expect(cache.lastDecoded == 3 && cache.lastSpliced && loads.applied)
        #expect(addresses(incremental) == addresses(full) && render(incremental) == render(full))
        #expect(addresses(incremental).contains { $0.hasPrefix("instance/lab/acme/web-10 ") } && !addresses(incremental).contains { $0.hasPrefix("flavor/m1.large ") })
        try repo.write("manifests/tenants/acme.yaml", acme)
        try repo.write("manifests/tenants/other.yaml", others)

        // Only the added file goes: lab is checked again, the result is the full one.
        try FileManager.default.removeItem(atPath: repo.file("manifests/tenants/zzz.yaml"))
        try repo.write("manifests/catalog.yaml", catalog)
        try GitCLI.commitAll(in: repo.path)
        (incremental, full) = try both()
        #expect(!incremental.hasErrors && render(incremental) == render(full))
    }

    @Test func editingADocumentChangesOnlyItsDigest() throws {
        let repo = try Fixtures.deployment()
        let before = try Loader().load(DirectorySource(root: repo.path))
        let text = try String(contentsOfFile: repo.file("manifests/tenants/acme.yaml"), encoding: .utf8)
        try repo.write("manifests/tenants/acme.yaml", text.replacingOccurrences(of: "spec: {flavor: m1.large, image: ubuntu, network: private, keypair: deploy}",
                                                                              with: "spec: {flavor: m1.small, image: ubuntu, network: private, keypair: deploy}"))
        let after = try Loader().load(DirectorySource(root: repo.path))
        let digests = { (result: LoadResult) in Dictionary(uniqueKeysWithValues: result.model.metas.map { ($0.address.description, $0.digest) }) }
        let old = digests(before), new = digests(after)
        #expect(Set(old.keys) == Set(new.keys))
        #expect(old.filter { new[$0.key] != $0.value }.map(\.key) == ["instance/lab/acme/web-2"])
        #expect(!old.values.contains(0))
    }
}
