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

/// The triples Kiln's CPU backend builds artifacts for (ELF shared objects and Windows DLLs).
public enum ClangTargets {
    public static let buildable: Set<String> = [
        "x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu", "armv7a-unknown-linux-gnueabihf",
        "i686-pc-windows-msvc", "x86_64-pc-windows-msvc", "aarch64-unknown-linux-android", "i686-unknown-linux-gnu",
        "armv7a-unknown-linux-gnueabi",
    ]
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

    /// What Kiln does with a device.
    public enum Status: String, CaseIterable, Sendable {
        /// Kiln compiles for it.
        case supported
        /// Its CPU is one Kiln will target; this build does not yet (the reason says what is missing).
        case planned
        /// Its models run on an accelerator whose backend this build lacks (the reason says what to do instead).
        case accelerator
    }

    static let knownTriples: [String: (os: String, binaryFormat: String)] = [
        "x86_64-unknown-linux-gnu": ("linux", "elf"), "aarch64-unknown-linux-gnu": ("linux", "elf"),
        "armv7a-unknown-linux-gnueabihf": ("linux", "elf"), "i686-pc-windows-msvc": ("windows", "pe"),
        "x86_64-pc-windows-msvc": ("windows", "pe"), "arm64-apple-macosx": ("macos", "macho"),
        "aarch64-unknown-linux-android": ("android", "elf"),
    ]
    static let knownFeatures: Set<String> = [
        "avx", "avx2", "fma", "f16c", "avx512f", "avx512dq", "avx512bw", "avx512vl", "avx512vnni", "avx512bf16",
        "avx512fp16", "neon", "dotprod", "vfpv4",
    ]

    /// Everything wrong with the descriptor read from `file` (empty when it is valid): the schema the
    /// TargetDevices files follow, checked field by field.
    public func problems(file: String) -> [String] {
        var problems: [String] = []
        if file != name + ".json" { problems.append("name \(quoted(name)) does not match the file name") }
        if !TargetCatalog.apiDeviceNames.contains(name) {
            problems.append("\(quoted(name)) is not a TargetDevice of the API")
        }
        for (field, value) in [("device", device), ("cpu", cpu), ("reason", reason), ("layout", layout)]
        where value.trimmingCharacters(in: .whitespaces).isEmpty {
            problems.append("\(field) is empty")
        }
        guard let status = Status(rawValue: status) else {
            problems.append("status \(quoted(self.status)) is not one of supported, planned, accelerator")
            return problems
        }
        if (status == .accelerator) != (accelerator != nil) {
            problems.append("an accelerator is named exactly when the status is accelerator")
        }
        if (status == .accelerator) == (backend == "cpu") {
            problems.append("backend \(quoted(backend)) does not fit status \(status.rawValue)")
        }
        if ActivationLayout(rawValue: layout) == nil {
            problems.append("layout \(quoted(layout)) is not one the CPU backend generates (NHWC or NCHW)")
        }
        if let expected = Self.knownTriples[target.triple] {
            if (target.os, target.binaryFormat) != expected {
                problems.append(
                    "\(target.triple) is \(expected.os)/\(expected.binaryFormat), not \(target.os)/\(target.binaryFormat)"
                )
            }
        } else {
            problems.append("triple \(quoted(target.triple)) is not one Kiln knows")
        }
        for variant in [CPUVariant(mcpu: target.mcpu, features: target.features, vectorBits: target.vectorBits)]
            + fallbacks
        {
            if variant.mcpu.isEmpty { problems.append("an empty mcpu") }
            if ![128, 256, 512].contains(variant.vectorBits) {
                problems.append("vectorBits \(variant.vectorBits) of \(variant.mcpu) is not 128, 256 or 512")
            }
            for feature in variant.features where !Self.knownFeatures.contains(feature) {
                problems.append("feature \(quoted(feature)) of \(variant.mcpu) is not one Kiln knows")
            }
        }
        if status == .supported && !ClangTargets.buildable.contains(target.triple) {
            problems.append("\(target.triple) is not a triple this build of Kiln can compile for")
        }
        return problems
    }
}

/// A resolved compile target: the triple and the code variants to build, best first.
public struct CompileTarget: Sendable, Equatable {
    /// The TargetDevice name, or e.g. `LINUX_X86_64` for a TargetPlatform.
    public var name: String
    public var triple: String
    public var variants: [CPUVariant]
    /// Set when an accelerator device is compiled for its CPU only (CompilerOptions `cpu-only`):
    /// what the artifact runs on, for the manifest.
    public var cpuOnlyNote: String?
    /// Extra clang flags every compile of this target gets (e.g. `-mattr` from CompilerOptions).
    public var extraFlags: [String]
    /// The activation layout of the generated code (the descriptor's, or CompilerOptions `layout`).
    public var layout: ActivationLayout
    /// The L2 cache per core CompilerOptions `l2-cache-kib` gives, in KiB.
    public var l2CacheKiB: Int?

    public init(
        name: String, triple: String, variants: [CPUVariant], cpuOnlyNote: String? = nil, extraFlags: [String] = [],
        layout: ActivationLayout = .nhwc, l2CacheKiB: Int? = nil
    ) {
        self.name = name
        self.triple = triple
        self.variants = variants
        self.cpuOnlyNote = cpuOnlyNote
        self.extraFlags = extraFlags
        self.layout = layout
        self.l2CacheKiB = l2CacheKiB
    }

    /// The processor family, from the triple.
    public enum Architecture: String, Sendable {
        case x86_64, i686, aarch64, armv7

        public init(triple: String) {
            if triple.hasPrefix("x86_64") {
                self = .x86_64
            } else if triple.hasPrefix("i686") || triple.hasPrefix("i386") {
                self = .i686
            } else if triple.hasPrefix("aarch64") || triple.hasPrefix("arm64") {
                self = .aarch64
            } else {
                self = .armv7
            }
        }
    }

    public var architecture: Architecture { Architecture(triple: triple) }

    /// Bytes of L2 cache per core of the CPU the code is optimized for (the first variant's), for the
    /// passes' cost model: CompilerOptions `l2-cache-kib` if given, the host's own for `native`, a table for
    /// the CPUs Kiln names, and otherwise 512 KiB, the smallest among the x86 targets (Zen 2 and 3).
    public var l2CacheBytes: Int {
        variants.first.map(l2CacheBytes) ?? l2CacheKiB.map { $0 << 10 } ?? TargetCatalog.defaultL2CacheBytes
    }

    /// The same for one code variant (the kernels of each variant are tuned to its own CPU).
    public func l2CacheBytes(_ variant: CPUVariant) -> Int {
        if let l2CacheKiB { return l2CacheKiB << 10 }
        if variant.mcpu == "native" { return HostCPU.l2CacheBytes ?? TargetCatalog.defaultL2CacheBytes }
        return TargetCatalog.l2CacheKiB[variant.mcpu].map { $0 << 10 } ?? TargetCatalog.defaultL2CacheBytes
    }

    public var isWindows: Bool { triple.contains("windows") }
    public var isAndroid: Bool { triple.contains("android") }

    /// The artifact's shared library: `model.dll` on Windows, `model.so` elsewhere.
    public var libraryName: String { isWindows ? "model.dll" : "model.so" }
}
