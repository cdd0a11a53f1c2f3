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
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2")
    ],
    targets: [
        .executableTarget(
            name: "kiln",
            dependencies: [
                "Pipeline", "Frontends", "ModelIR", "Diagnostics",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .target(name: "Pipeline", dependencies: ["ObjectStore", "Frontends", "Archive", "ModelIR", "Diagnostics"]),
        .target(name: "ObjectStore", dependencies: ["Diagnostics"]),
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
        .testTarget(name: "ObjectStoreTests", dependencies: ["ObjectStore", "Diagnostics"]),
        .testTarget(
            name: "PipelineTests",
            dependencies: ["Pipeline", "Frontends", "ModelIR", "Diagnostics", "Archive", "TestSupport"]
        ),
        .testTarget(name: "kilnTests", dependencies: ["kiln", "TestSupport"]),
    ],
    cxxLanguageStandard: .cxx17
)
