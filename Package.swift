// swift-tools-version:6.2
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .treatAllWarnings(as: .error),
]

let package = Package(
    name: "StackLab",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "stacklab", targets: ["stacklab"]),
        .executable(name: "stacklab-bench", targets: ["StackLabBench"]),
        .executable(name: "stacklab-faults", targets: ["StackLabFaults"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.1.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.1.0"),
    ],
    targets: [
        // C libraries, each behind a system-library target found through pkg-config.
        .systemLibrary(name: "CLibYAML", pkgConfig: "yaml-0.1", providers: [.apt(["libyaml-dev"])]),
        .systemLibrary(name: "CLibgit2", pkgConfig: "libgit2", providers: [.apt(["libgit2-dev"])]),
        .systemLibrary(name: "CLibvirt", pkgConfig: "libvirt", providers: [.apt(["libvirt-dev"])]),
        .systemLibrary(name: "CLibssh2", pkgConfig: "libssh2", providers: [.apt(["libssh2-1-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CLibpq", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),

        // Small safe Swift layers over them.
        .target(name: "YAML", dependencies: ["CLibYAML"], swiftSettings: strict),
        .target(name: "Parallel", swiftSettings: strict),
        .target(name: "Git", dependencies: ["CLibgit2", "CZlib", "Parallel"], swiftSettings: strict),
        // Whole-buffer zlib compression (ring builder tables and ring files, kept rulesets, kept manifest text).
        .target(name: "Zlib", dependencies: ["CZlib"], swiftSettings: strict),
        .target(name: "Libvirt", dependencies: ["CLibvirt"], swiftSettings: strict),
        .target(name: "Postgres", dependencies: ["CLibpq"], swiftSettings: strict),
        .target(name: "SSH", dependencies: ["CLibssh2", .product(name: "Crypto", package: "swift-crypto")], swiftSettings: strict),

        // The manifest language: YAML events -> typed desired model, with diagnostics.
        .target(name: "Manifests", dependencies: ["YAML", "Parallel", "Zlib"], swiftSettings: strict),
        // Where manifests come from: directories, git revisions, and the price lists' history in git.
        .target(name: "ManifestSources", dependencies: ["Manifests", "Git"], swiftSettings: strict),

        // Desired hypervisor state, placement and addresses: pure values, no I/O.
        .target(name: "Planning", dependencies: ["Manifests", "Parallel", "Rings", "Zlib", .product(name: "Crypto", package: "swift-crypto")], swiftSettings: strict),
        // libvirt objects StackLab renders, observes and changes.
        .target(name: "Hosts", dependencies: ["SSH", "Manifests", "Planning", "Parallel", "Processes", .product(name: "Crypto", package: "swift-crypto")],
                swiftSettings: strict),
        // Nodes through libvirt: the driver protocols (`NodeDriver` and its capabilities), the libvirt node, production
        // machines over SSH. Simulated nodes (the test driver and a file root under the state directory) beside it.
        .target(name: "Drivers", dependencies: ["Manifests", "Libvirt", "SSH", "Hosts", "Planning", .product(name: "Crypto", package: "swift-crypto")], swiftSettings: strict),
        .target(name: "SimulatedNodes", dependencies: ["Drivers", "Libvirt", "Manifests", "Planning", "Parallel"], swiftSettings: strict),

        // What a reconciler keeps (journal, ring builders, plan memo, node inventory, ledger): protocols, and their
        // embedded SQLite backend.
        .target(name: "State", dependencies: ["Manifests", "Planning", "Billing"], swiftSettings: strict),
        .target(name: "StateSQLite", dependencies: ["Billing", "State", "Manifests", "Planning", .product(name: "GRDB", package: "GRDB.swift")],
                swiftSettings: strict),
        // The same state on a shared PostgreSQL database (libpq), with region leases and fencing tokens.
        .target(name: "StatePostgres", dependencies: ["State", "Postgres", "Manifests", "Planning", "Billing"], swiftSettings: strict),
        // Which store a command or the service uses: the embedded SQLite one, or PostgreSQL with `--database`.
        .target(name: "StateStores", dependencies: ["State", "StateSQLite", "StatePostgres", "Postgres"], swiftSettings: strict),

        // Observe → plan → guard → apply → verify: ReconcileRun, the applier, the incremental planner.
        .target(name: "Reconcile", dependencies: ["Billing", "ManifestSources", "Manifests", "Git", "Parallel", "Planning", "Drivers", "SimulatedNodes", "State", "Snapshots", .product(name: "Crypto", package: "swift-crypto"),
                                                .product(name: "HeapModule", package: "swift-collections")], swiftSettings: strict),

        // OpenStack Swift rings: the ring model, ring files (v1 and v2) and lookups.
        .target(name: "Rings", dependencies: ["CZlib", "Zlib", .product(name: "Crypto", package: "swift-crypto")], swiftSettings: strict),

        // Billing: metering intervals rated from the price lists' history into statements (pure).
        .target(name: "Billing", dependencies: ["Manifests", "Planning"], swiftSettings: strict),

        // Volume snapshots in Swift (content-addressed chunks and a manifest), and the small Swift client they use.
        .target(name: "Snapshots", dependencies: [.product(name: "Crypto", package: "swift-crypto")], swiftSettings: strict),

        // The metadata service each compute node runs for its instances (169.254.169.254), on Hummingbird.
        .target(name: "MetadataService", dependencies: ["Manifests", 
            "Planning", .product(name: "Hummingbird", package: "hummingbird"), .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: strict),

        // The GitOps service: pushes in, converged regions out (Hummingbird, service lifecycle, Prometheus metrics).
        .target(name: "Service", dependencies: ["Pipelines", "Drivers", "ManifestSources", 
            "Manifests", "Git", "Planning", "Reconcile", "State", "StateStores", "Billing",
            .product(name: "Hummingbird", package: "hummingbird"), .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"), .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"), .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "Crypto", package: "swift-crypto"), .product(name: "Mustache", package: "swift-mustache"),
        ], swiftSettings: strict),

        // The pipelines built on the reconcile workflow: bootstrap over SSH, CI check/gate/deploy, the deploy's rollout.
        .target(name: "Pipelines", dependencies: [
            "Reconcile", "Hosts", "Drivers", "State", "Manifests", "ManifestSources", "Planning", "Git", "Parallel", "SSH",
            .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: strict),

        // Commands (a library, one command per file) and the thin executable.
        .target(
            name: "StackLabCLI",
            dependencies: ["Pipelines", "YAML", "ManifestSources", 
                "Manifests", "Git", "Parallel", "Planning", "Drivers", "Hosts", "State", "StateSQLite", "StatePostgres", "StateStores", "Reconcile", "Rings", "Processes", "SSH",
                "MetadataService", "Snapshots", "Billing", "Service",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Metrics", package: "swift-metrics"), .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(name: "stacklab", dependencies: ["StackLabCLI"], swiftSettings: strict),
        // Tooling, not product: the benchmarks (`stacklab-bench`), which time whole `stacklab` processes and start
        // loopback servers from TestSupport.
        // Tooling, not product: `stacklab` with faults a real node cannot produce injected into its node drivers, for the
        // crash and pipeline tests.
        .executableTarget(name: "StackLabFaults", dependencies: ["StackLabCLI", "Reconcile", "Drivers", "Planning", "Manifests"], swiftSettings: strict),
        .executableTarget(
            name: "StackLabBench",
            dependencies: ["Pipelines", 
                "StackLabCLI", "Manifests", "ManifestSources", "Git", "Parallel", "Planning", "Drivers", "SimulatedNodes", "Hosts", "State", "StateSQLite", "StatePostgres", "StateStores",
                "Reconcile", "Rings", "Processes", "SSH", "TestSupport", "Snapshots", "Billing", "Service", "YAML", "Libvirt",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),

        // Running programs (posix_spawn + wait4: status, output, time, peak RSS), for benchmarks and tests.
        .target(name: "Processes", swiftSettings: strict),
        // Helpers shared by the test targets: scratch directories, real git, real sshd.
        .target(name: "TestSupport", dependencies: ["Processes", "Reconcile", "Drivers", "SimulatedNodes", "StateSQLite", "Planning", "Manifests", "ManifestSources", "Libvirt"],
                swiftSettings: strict),

        // The layering of docs/architecture.md, checked against this file and the sources' imports.
        .testTarget(name: "ArchitectureTests", swiftSettings: strict),
        .testTarget(name: "YAMLTests", dependencies: ["YAML", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "GitTests", dependencies: ["Git", "Parallel", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "LibvirtTests", dependencies: ["Libvirt", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "SSHTests", dependencies: ["Processes", "SSH", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "ManifestsTests", dependencies: ["ManifestSources", "Manifests", "Git", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "PlanningTests", dependencies: ["Planning", "Manifests", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "SimulatedNodesTests", dependencies: ["Drivers", "SimulatedNodes", "Manifests", "Planning", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "DriversTests", dependencies: ["Manifests", "Processes", "Drivers", "SimulatedNodes", "Planning", "Libvirt", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "StateTests", dependencies: ["Billing", "State", "StateSQLite", "StatePostgres", "Postgres", "Reconcile", "Planning", "Rings", "Drivers", "Manifests", "TestSupport"], swiftSettings: strict),
        // The workflow in process: plans, applies, recovery, caches over simulated nodes.
        .testTarget(name: "ReconcileTests", dependencies: ["Reconcile", "Rings", "ManifestSources", "Processes", "State", "StateSQLite", .product(name: "GRDB", package: "GRDB.swift"),
                                                          "Planning", "Drivers", "SimulatedNodes", "Manifests", "Libvirt", "TestSupport"], swiftSettings: strict),
        // The service at the router (HummingbirdTesting) and its loop in process.
        .testTarget(name: "ServiceTests", dependencies: ["Service", "Billing", "Reconcile", "Processes", "State", "StateSQLite", "Drivers", "ManifestSources", "Manifests", "Planning", "TestSupport",
                                                        .product(name: "Logging", package: "swift-log"),
                                                        .product(name: "Hummingbird", package: "hummingbird"),
                                                        .product(name: "HummingbirdTesting", package: "hummingbird"),
                                                        .product(name: "Prometheus", package: "swift-prometheus")], swiftSettings: strict),
        // The pipelines in process: the deploy's rollout over a real git repository and state store.
        .testTarget(name: "PipelinesTests", dependencies: ["Pipelines", "Reconcile", "ManifestSources", "Manifests", "Processes", "State", "StateSQLite", "TestSupport",
                                                          .product(name: "Logging", package: "swift-log")], swiftSettings: strict),
        // Whole programs as operators run them: the stacklab binary (and stacklab-faults) against real git repositories,
        // sshd, libvirtd + QEMU, Swift, PostgreSQL and nftables on loopback or in namespaces.
        .testTarget(name: "EndToEndTests", dependencies: ["StackLabCLI", .product(name: "ArgumentParser", package: "swift-argument-parser"), "Pipelines", "Rings", "ManifestSources", "Processes", "Reconcile", "Snapshots", "Billing", "Service", "Hosts", "State", "StateSQLite", "StatePostgres", "Postgres", .product(name: "GRDB", package: "GRDB.swift"), .product(name: "Crypto", package: "swift-crypto"), "Planning", "Drivers", "SimulatedNodes", "Manifests", "Libvirt", "TestSupport", "stacklab", "StackLabFaults"], swiftSettings: strict),
        .testTarget(name: "BillingTests", dependencies: ["Billing", "Planning", "Manifests"], swiftSettings: strict),
        .testTarget(name: "RingsTests", dependencies: ["Processes", "Rings", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "StackLabBenchTests", dependencies: ["StackLabBench", "Processes", "TestSupport", "stacklab"], swiftSettings: strict),
        .testTarget(name: "StackLabCLITests", dependencies: ["ManifestSources", "StackLabCLI", "Planning", "Reconcile", "Manifests", "TestSupport"], swiftSettings: strict),
    ]
)
