// swift-tools-version:6.1
import PackageDescription

/// A system library reached through pkg-config, with the Debian package that provides it.
func systemLibrary(_ name: String, pkgConfig: String, apt: String) -> Target {
    .systemLibrary(name: name, path: "Sources/\(name)", pkgConfig: pkgConfig, providers: [.apt([apt])])
}

let package = Package(
    name: "provision",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "provision", targets: ["Provision"]),
        .executable(name: "producer", targets: ["Producer"]),
        .executable(name: "processor", targets: ["Processor"]),
        .executable(name: "provision-bench", targets: ["Bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
    ],
    targets: [
        systemLibrary("CSQLite", pkgConfig: "sqlite3", apt: "libsqlite3-dev"),
        systemLibrary("CCurl", pkgConfig: "libcurl", apt: "libcurl4-openssl-dev"),
        systemLibrary("CSSH2", pkgConfig: "libssh2", apt: "libssh2-1-dev"),
        systemLibrary("CRdKafka", pkgConfig: "rdkafka", apt: "librdkafka-dev"),
        systemLibrary("CMongoc", pkgConfig: "libmongoc-1.0", apt: "libmongoc-dev"),
        // What Swift cannot import directly: variadic functions, function-like macros, fork/spawn details.
        .target(name: "CShim", dependencies: ["CSQLite", "CCurl", "CSSH2"]),
        // SHA-256, shared by the provisioner and the processor (which imports neither Engine nor Steps).
        .target(name: "Digest"),
        // JSON as a value (JSONValue), shared by the provisioner and the workloads.
        .target(name: "JSON"),
        .target(name: "Engine", dependencies: ["CSQLite", "CShim", "Digest"]),
        // Steps' layers, each a target under Sources/Steps/<Layer> that imports only those below it (the
        // order of LayoutDocumentationTests.stepsLayers).
        // Transport: commands here and on nodes (CommandRunner, SSH, shell quoting), HTTP.
        .target(name: "Transport", dependencies: ["Engine", "JSON", "CSSH2", "CCurl", "CShim"], path: "Sources/Steps/Transport"),
        // PlanLanguage (Sources/Steps/Plan): the plan language (YAML → a typed Plan, its errors), above Transport.
        .target(name: "PlanLanguage", dependencies: ["Engine", "Transport", "JSON", "Yams"], path: "Sources/Steps/Plan"),
        // Infra: the machines and what knows them (cloud API, Terraform, sandbox hosts, SSH key, node
        // readiness, inventory), above the plan language.
        .target(name: "Infra", dependencies: ["Engine", "Transport", "PlanLanguage", "Digest", "JSON", "CShim"], path: "Sources/Steps/Infra"),
        // NodeRuntime: what runs on the nodes (artifacts, services under the node's service manager, their probes).
        .target(name: "NodeRuntime", dependencies: ["Engine", "Transport", "PlanLanguage", "Infra", "Digest", "JSON"], path: "Sources/Steps/NodeRuntime"),
        // Kube: K3s on the nodes (install, joins, upgrades), the typed Kubernetes client and models, what is
        // deployed through it (manifests, charts, rollouts).
        .target(name: "Kube", dependencies: ["Engine", "Transport", "PlanLanguage", "Infra", "NodeRuntime", "Digest", "JSON", "Yams"], path: "Sources/Steps/Kube"),
        // Verification: the pipeline checked end to end on either runtime (verify), and the run report.
        .target(name: "Verification", dependencies: ["Engine", "Transport", "PlanLanguage", "Infra", "NodeRuntime", "Kube", "JSON"],
                path: "Sources/Steps/Verification"),
        // Flows: one step graph per target (local, sandbox, aws, and K3s's steps on the last two).
        .target(name: "Flows", dependencies: ["Engine", "Transport", "PlanLanguage", "Infra", "NodeRuntime", "Kube", "Verification"],
                path: "Sources/Steps/Flows"),
        // App (Sources/Steps/Workspace): what the commands share, a plan's state directory and its runs (Workspace).
        .target(name: "App", dependencies: ["Engine", "Transport", "PlanLanguage", "Infra", "NodeRuntime", "Kube", "Verification", "Flows"],
                path: "Sources/Steps/Workspace"),
        .executableTarget(
            name: "Provision",
            dependencies: ["Engine", "App", "Infra", "Kube", "Verification", "PlanLanguage", "Transport", "JSON", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .executableTarget(
            name: "Producer",
            dependencies: ["WorkloadKit", "JSON", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Sources/Workloads/Producer"
        ),
        // librdkafka's DescribeTopics (topic ids), newer than the 2.0.2 headers: resolved at run time.
        .target(name: "CKafkaAdmin", dependencies: ["CRdKafka"], path: "Sources/Workloads/CKafkaAdmin"),
        .target(name: "WorkloadKit", dependencies: ["CRdKafka", "CKafkaAdmin"], path: "Sources/Workloads/WorkloadKit"),
        .executableTarget(
            name: "Processor",
            dependencies: ["WorkloadKit", "Digest", "JSON", "CMongoc", "CRdKafka", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Sources/Workloads/Processor"
        ),
        // Measurements for scripts/bench-*, not tests.
        .executableTarget(name: "Bench", dependencies: ["Engine", "App", "Infra", "Transport"], path: "Sources/Bench"),
        .testTarget(name: "EngineTests", dependencies: ["Engine", "Digest"]),
        .testTarget(name: "StepsTests", dependencies: ["App", "Infra", "NodeRuntime", "Kube", "Verification", "Flows", "PlanLanguage", "Transport", "Engine", "Digest", "JSON", "CShim"]),
        // What ProvisionTests and WorkloadTests share: the real binaries run as processes, loopback services.
        .target(name: "TestSupport", dependencies: ["Engine", "CShim"], path: "Tests/TestSupport"),
        .testTarget(name: "ProvisionTests", dependencies: ["Engine", "App", "Infra", "NodeRuntime", "Kube", "Verification", "PlanLanguage", "Transport", "JSON", "CShim", "TestSupport"]),
        // The workloads (producer, processor) against a real broker and MongoDB-wire server.
        .testTarget(name: "WorkloadTests", dependencies: ["Engine", "JSON", "TestSupport"]),
    ]
)
