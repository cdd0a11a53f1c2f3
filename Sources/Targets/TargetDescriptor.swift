import Diagnostics
import Foundation

/// One CPU code variant of a target: the `-mcpu` clang gets and the
/// instruction-set features the code may then use (checked at load time).
public struct CPUVariant: Codable, Sendable, Equatable {
    public var mcpu: String
    public var features: [String]
    public var vectorBits: Int

    public init(mcpu: String, features: [String], vectorBits: Int) {
        self.mcpu = mcpu
        self.features = features
        self.vectorBits = vectorBits
    }
}

/// What a `TargetDevices/<name>.json` file says about one TargetDevice.
public struct TargetDescriptor: Codable, Sendable, Equatable {
    public struct CPUTarget: Codable, Sendable, Equatable {
        public var triple: String
        public var os: String
        public var binaryFormat: String
        public var mcpu: String
        public var features: [String]
        public var vectorBits: Int
    }

    public var name: String
    public var device: String
    public var cpu: String
    public var accelerator: String?
    public var target: CPUTarget
    /// Lesser variants carried in the same artifact and chosen at load time.
    public var fallbacks: [CPUVariant]
    public var layout: String
    public var backend: String
    public var status: String
    public var reason: String
}

/// A resolved compile target: the triple and the code variants to build, best first.
public struct CompileTarget: Sendable, Equatable {
    /// The TargetDevice name, or e.g. `LINUX_X86_64` for a TargetPlatform.
    public var name: String
    public var triple: String
    public var variants: [CPUVariant]

    public init(name: String, triple: String, variants: [CPUVariant]) {
        self.name = name
        self.triple = triple
        self.variants = variants
    }
}
