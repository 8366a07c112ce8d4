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
        // Steps' layers, each a target under Sources/Steps/<Layer> that imports only those below it.
        // Transport: commands here and on nodes (CommandRunner, SSH, shell quoting), HTTP.
        .target(name: "Transport", dependencies: ["Engine", "JSON", "CSSH2", "CCurl", "CShim"], path: "Sources/Steps/Transport"),
        // PlanLanguage (Sources/Steps/Plan): the plan language (YAML → a typed Plan, its errors), above Transport.
        .target(name: "PlanLanguage", dependencies: ["Engine", "Transport", "JSON", "Yams"], path: "Sources/Steps/Plan"),
        // The rest of Steps: the steps by concern, the flows, the workspace.
        .target(name: "Steps", dependencies: ["Engine", "Transport", "PlanLanguage", "Digest", "JSON", "Yams", "CSSH2", "CCurl", "CShim"],
                exclude: ["Transport", "Plan"]),
        .executableTarget(
            name: "Provision",
            dependencies: ["Engine", "Steps", "PlanLanguage", "Transport", "JSON", .product(name: "ArgumentParser", package: "swift-argument-parser")]
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
        .executableTarget(name: "Bench", dependencies: ["Engine", "Steps", "PlanLanguage", "Transport", "JSON"], path: "Sources/Bench"),
        .testTarget(name: "EngineTests", dependencies: ["Engine", "Digest"]),
        .testTarget(name: "StepsTests", dependencies: ["Steps", "PlanLanguage", "Transport", "Engine", "Digest", "JSON", "CShim"]),
        // What ProvisionTests and WorkloadTests share: the real binaries run as processes, loopback services.
        .target(name: "TestSupport", dependencies: ["Engine", "CShim"], path: "Tests/TestSupport"),
        .testTarget(name: "ProvisionTests", dependencies: ["Engine", "Steps", "PlanLanguage", "Transport", "JSON", "CShim", "TestSupport"]),
        // The workloads (producer, processor) against a real broker and MongoDB-wire server.
        .testTarget(name: "WorkloadTests", dependencies: ["Engine", "JSON", "TestSupport"]),
    ]
)
