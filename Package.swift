// swift-tools-version: 6.1
// Kiln: a model compiler with the SageMaker compilation-job API.
// Modules follow ../shared/DESIGN.md; dependencies only point down this list.
import PackageDescription

let package = Package(
    name: "Kiln",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "kiln", targets: ["kiln"])
    ],
    dependencies: [
        // Command-line parsing for the `kiln` executable.
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        // SHA-256 for kernel-cache keys, model and artifact digests.
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        // The SQLite job store (WAL mode, migrations, safe under concurrent processes).
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        // The HTTP server of `kiln serve`, its graceful shutdown and its access logs.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        // The PostgreSQL job store that a fleet of workers shares.
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
    ],
    targets: [
        .executableTarget(
            name: "kiln",
            dependencies: [
                "APIServer", "Jobs", "Pipeline", "Frontends", "ModelIR", "Diagnostics", "Runtime", "Targets", "Artifact",
                "CPUBackend", .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "APIServer",
            dependencies: [
                "Jobs", "Pipeline", "AWSSigning", .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"), .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ]
        ),
        .target(
            name: "Jobs",
            dependencies: [
                "Pipeline", "ObjectStore", "Targets", "Frontends", "Diagnostics",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ]
        ),
        .target(
            name: "Pipeline",
            dependencies: [
                "ObjectStore", "Artifact", "CPUBackend", "Targets", "Frontends", "Archive", "ModelIR", "Diagnostics",
                "Passes", .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .target(name: "Passes", dependencies: ["ModelIR"]),
        .target(name: "Runtime", dependencies: ["Artifact", "CPUBackend", "ModelIR", "Diagnostics", "Archive"]),
        .target(name: "Artifact", dependencies: ["CPUBackend", "Archive", "Diagnostics"]),
        .target(
            name: "CPUBackend",
            dependencies: ["Targets", "ModelIR", "Diagnostics", .product(name: "Crypto", package: "swift-crypto")],
            resources: [.copy("Kernels")]
        ),
        .target(name: "Targets", dependencies: ["Diagnostics"], resources: [.copy("TargetDevices")]),
        .target(
            name: "ObjectStore",
            dependencies: ["Diagnostics", "AWSSigning", .product(name: "Crypto", package: "swift-crypto")]
        ),
        .target(name: "AWSSigning", dependencies: [.product(name: "Crypto", package: "swift-crypto")]),
        .target(name: "Frontends", dependencies: ["CONNX", "ModelIR", "Diagnostics"]),
        .target(name: "ModelIR", dependencies: ["Diagnostics"]),
        .target(name: "Archive", dependencies: ["CZlib"]),
        .target(name: "Diagnostics"),
        .target(
            name: "CONNX",
            cxxSettings: [
                .define("ONNX_NAMESPACE", to: "onnx"),
                .define("ONNX_ML", to: "1"),
                .unsafeFlags(["-Wno-deprecated-declarations"]),
            ],
            linkerSettings: [
                .linkedLibrary("onnx"), .linkedLibrary("onnx_proto"), .linkedLibrary("protobuf"),
                .linkedLibrary("stdc++"),
            ]
        ),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),

        .target(name: "TestSupport", dependencies: ["Archive"], path: "Tests/TestSupport"),
        .testTarget(name: "ArchiveTests", dependencies: ["Archive", "TestSupport"]),
        .testTarget(name: "FrontendsTests", dependencies: ["Frontends", "ModelIR", "Diagnostics", "TestSupport"]),
        .testTarget(
            name: "ObjectStoreTests",
            dependencies: [
                "ObjectStore", "AWSSigning", "Diagnostics", "TestSupport",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            exclude: ["Scripts"]
        ),
        .testTarget(
            name: "PipelineTests",
            dependencies: ["Pipeline", "Frontends", "ModelIR", "Diagnostics", "Archive", "TestSupport"]
        ),
        .testTarget(name: "kilnTests", dependencies: ["kiln", "TestSupport"], exclude: ["Scripts"]),
        .testTarget(name: "APIServerTests", dependencies: ["APIServer", "Jobs", "TestSupport"]),
        .testTarget(
            name: "JobsTests",
            dependencies: [
                "Jobs", "Pipeline", "ObjectStore", "Diagnostics", "TestSupport",
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            resources: [.copy("compilation-job-api.json")]),
        .testTarget(
            name: "CPUBackendTests",
            dependencies: [
                "Pipeline", "Passes", "Runtime", "CPUBackend", "Targets", "Frontends", "ModelIR", "Diagnostics",
                "TestSupport",
            ]
        ),
    ],
    cxxLanguageStandard: .cxx17
)
