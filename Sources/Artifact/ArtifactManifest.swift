import CPUBackend
import Foundation

/// `manifest.json` inside every artifact: what it was built from and for,
/// and what its shared object expects, so a host can check before loading.
public struct ArtifactManifest: Codable, Sendable, Equatable {
    public struct Variant: Codable, Sendable, Equatable {
        public var name: String
        public var features: [String]

        public init(name: String, features: [String]) {
            self.name = name
            self.features = features
        }
    }

    public var kilnVersion: String
    public var abiVersion: Int
    public var targetDevice: String
    public var triple: String
    /// CPU code variants in load-time preference order.
    public var variants: [Variant]
    public var inputs: [TensorDescription]
    public var outputs: [TensorDescription]
    public var sourceModelSHA256: String
    public var opCountsBefore: [String: Int]
    public var opCountsAfter: [String: Int]
    public var passesApplied: [String]
    public var arenaBytes: Int
    public var weightsBytes: Int
    public var files: [String]
    /// The shared library's file name (`model.so`, or `model.dll` for Windows); absent in artifacts
    /// older than Windows support, which always hold `model.so`.
    public var library: String?
    /// For an accelerator device compiled with CompilerOptions `cpu-only`: what the code runs on.
    public var cpuOnly: String?

    /// The shared library's file name.
    public var libraryFile: String { library ?? "model.so" }

    public init(
        kilnVersion: String, abiVersion: Int, targetDevice: String, triple: String, variants: [Variant],
        inputs: [TensorDescription], outputs: [TensorDescription], sourceModelSHA256: String,
        opCountsBefore: [String: Int], opCountsAfter: [String: Int], passesApplied: [String], arenaBytes: Int,
        weightsBytes: Int, files: [String], library: String = "model.so", cpuOnly: String? = nil
    ) {
        self.kilnVersion = kilnVersion
        self.abiVersion = abiVersion
        self.targetDevice = targetDevice
        self.triple = triple
        self.variants = variants
        self.inputs = inputs
        self.outputs = outputs
        self.sourceModelSHA256 = sourceModelSHA256
        self.opCountsBefore = opCountsBefore
        self.opCountsAfter = opCountsAfter
        self.passesApplied = passesApplied
        self.arenaBytes = arenaBytes
        self.weightsBytes = weightsBytes
        self.files = files
        self.library = library
        self.cpuOnly = cpuOnly
    }

    public func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(self) + Data("\n".utf8)
    }

    /// The files an artifact whose shared library is `library` holds.
    public static func fileNames(library: String = "model.so") -> [String] {
        ["kiln.h", "manifest.json", library, "weights.bin"]
    }
}
