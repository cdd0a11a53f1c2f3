import Diagnostics
import Foundation

/// The TargetDevice descriptors (`TargetDevices/*.json`, shipped as this
/// module's resources) and how a job's TargetDevice or TargetPlatform plus
/// CompilerOptions become a `CompileTarget`.
public enum TargetCatalog {
    /// Every TargetDevice value of the compilation-job API.
    public static let apiDeviceNames = [
        "lambda", "ml_m4", "ml_m5", "ml_m6g", "ml_c4", "ml_c5", "ml_c6g", "ml_p2", "ml_p3", "ml_g4dn", "ml_inf1",
        "ml_inf2", "ml_trn1", "ml_eia2", "jetson_tx1", "jetson_tx2", "jetson_nano", "jetson_xavier", "rasp3b",
        "rasp4b", "imx8qm", "deeplens", "rk3399", "rk3288", "aisage", "sbe_c", "qcs605", "qcs603", "sitara_am57x",
        "amba_cv2", "amba_cv22", "amba_cv25", "x86_win32", "x86_win64", "coreml", "jacinto_tda4vm", "imx8mplus",
    ]

    /// The directory holding the descriptors.
    public static var directory: URL? {
        if let path = ProcessInfo.processInfo.environment["KILN_TARGET_DEVICES"], !path.isEmpty {
            return URL(fileURLWithPath: path)
        }
        return Bundle.module.url(forResource: "TargetDevices", withExtension: nil)
    }

    /// Every descriptor, by name.
    public static func load() throws -> [String: TargetDescriptor] {
        guard let directory else {
            throw KilnError.server(.internal, "the TargetDevices descriptors are missing from this build")
        }
        var descriptors: [String: TargetDescriptor] = [:]
        guard let listing = try? FileManager.default.contentsOfDirectory(atPath: directory.path) else {
            throw KilnError.server(.internal, "cannot read the TargetDevices descriptors at \(directory.path)")
        }
        let files = listing.filter { $0.hasSuffix(".json") }
        for file in files.sorted() {
            do {
                let data = try Data(contentsOf: directory.appendingPathComponent(file))
                let descriptor = try JSONDecoder().decode(TargetDescriptor.self, from: data)
                descriptors[descriptor.name] = descriptor
            } catch {
                throw KilnError.server(.internal, "TargetDevices/\(file) is not a valid descriptor: \(error)")
            }
        }
        return descriptors
    }

    /// The compile target for a TargetDevice with CompilerOptions.
    public static func target(device: String, compilerOptions: String? = nil) throws -> CompileTarget {
        guard apiDeviceNames.contains(device) else {
            throw KilnError.client(
                .targetDevice,
                "\(quoted(device)) is not a TargetDevice; use one of \(apiDeviceNames.joined(separator: ", "))")
        }
        let options = try CompilerOptions.parse(compilerOptions)
        let descriptors = try load()
        guard let descriptor = descriptors[device] else {
            throw KilnError.server(.internal, "TargetDevices/\(device).json is missing from this build")
        }
        var cpuOnlyNote: String?
        switch TargetDescriptor.Status(rawValue: descriptor.status) {
        case .supported: break
        case .accelerator where options.cpuOnly && ClangTargets.buildable.contains(descriptor.target.triple):
            cpuOnlyNote =
                "CPU only: runs on the \(descriptor.cpu) of the \(descriptor.device); its \(descriptor.accelerator ?? "accelerator") is not used"
        default:
            throw KilnError.client(.targetDevice, "\(device) \(descriptor.reason)")
        }
        var triple = descriptor.target.triple
        if triple.contains("android") {
            triple += String(options.androidPlatform ?? 21)
        } else if options.androidPlatform != nil {
            throw KilnError.client(
                .targetDevice, "CompilerOptions ANDROID_PLATFORM is for Android targets; \(device) runs Linux")
        }
        var variants =
            [
                CPUVariant(
                    mcpu: descriptor.target.mcpu, features: descriptor.target.features,
                    vectorBits: descriptor.target.vectorBits)
            ] + descriptor.fallbacks
        if let mcpu = options.mcpu {
            variants = [try variant(mcpu: mcpu, triple: triple)]
        }
        return CompileTarget(
            name: device, triple: triple, variants: variants, cpuOnlyNote: cpuOnlyNote,
            extraFlags: try attributeFlags(options.mattr, triple: triple),
            layout: options.layout ?? ActivationLayout(rawValue: descriptor.layout) ?? .nhwc,
            l2CacheKiB: options.l2CacheKiB)
    }

    /// What a TargetPlatform resolves to, or why the combination is invalid (a ValidationException at
    /// CreateCompilationJob).
    public static func validatePlatform(os: String, arch: String, accelerator: String?, compilerOptions: String?)
        throws
    {
        _ = try platformTriple(
            os: os, arch: arch, accelerator: accelerator, options: try CompilerOptions.parse(compilerOptions))
    }

    static func platformTriple(os: String, arch: String, accelerator: String?, options: CompilerOptions) throws
        -> String
    {
        let arches = ["X86_64", "X86", "ARM64", "ARM_EABI", "ARM_EABIHF"]
        guard ["LINUX", "ANDROID"].contains(os) else {
            throw KilnError.client(.targetDevice, "TargetPlatform Os \(quoted(os)) is not LINUX or ANDROID")
        }
        guard arches.contains(arch) else {
            throw KilnError.client(
                .targetDevice, "TargetPlatform Arch \(quoted(arch)) is not one of \(arches.joined(separator: ", "))")
        }
        if let accelerator {
            let fits: [String: (os: Set<String>, arch: Set<String>)] = [
                "NVIDIA": (["LINUX"], ["X86_64", "ARM64"]),
                "MALI": (["LINUX", "ANDROID"], ["ARM64", "ARM_EABIHF", "ARM_EABI"]),
                "INTEL_GRAPHICS": (["LINUX"], ["X86_64", "X86"]), "NNA": (["ANDROID"], ["ARM64", "ARM_EABI"]),
            ]
            guard let fit = fits[accelerator] else {
                throw KilnError.client(
                    .targetDevice,
                    "TargetPlatform Accelerator \(quoted(accelerator)) is not NVIDIA, MALI, INTEL_GRAPHICS or NNA")
            }
            guard fit.os.contains(os), fit.arch.contains(arch) else {
                throw KilnError.client(
                    .targetDevice, "TargetPlatform Accelerator \(accelerator) does not exist on \(os)/\(arch)")
            }
        }
        if os == "ANDROID" {
            guard let level = options.androidPlatform else {
                throw KilnError.client(
                    .targetDevice,
                    "TargetPlatform ANDROID needs the API level: CompilerOptions {\"ANDROID_PLATFORM\": 21} (21 to 35)")
            }
            switch arch {
            case "ARM64": return "aarch64-unknown-linux-android\(level)"
            case "X86_64": return "x86_64-unknown-linux-android\(level)"
            case "X86": return "i686-unknown-linux-android\(level)"
            case "ARM_EABI": return "armv7a-unknown-linux-androideabi\(level)"
            default:
                throw KilnError.client(
                    .targetDevice,
                    "TargetPlatform ANDROID/ARM_EABIHF does not exist: Android's 32-bit Arm ABI is ARM_EABI")
            }
        }
        if options.androidPlatform != nil {
            throw KilnError.client(.targetDevice, "CompilerOptions ANDROID_PLATFORM is for TargetPlatform Os ANDROID")
        }
        switch arch {
        case "X86_64": return "x86_64-unknown-linux-gnu"
        case "X86": return "i686-unknown-linux-gnu"
        case "ARM64": return "aarch64-unknown-linux-gnu"
        case "ARM_EABIHF": return "armv7a-unknown-linux-gnueabihf"
        default: return "armv7a-unknown-linux-gnueabi"
        }
    }

    /// The compile target for a TargetPlatform (`os`, `arch`) with CompilerOptions.
    public static func target(os: String, arch: String, accelerator: String?, compilerOptions: String?) throws
        -> CompileTarget
    {
        let options = try CompilerOptions.parse(compilerOptions)
        let triple = try platformTriple(os: os, arch: arch, accelerator: accelerator, options: options)
        var cpuOnlyNote: String?
        if let accelerator {
            guard options.cpuOnly else {
                throw KilnError.client(
                    .targetDevice,
                    "TargetPlatform \(os)/\(arch)/\(accelerator) needs the \(acceleratorBackends[accelerator] ?? accelerator) "
                        + "backend, which this build of Kiln does not have; to run on the CPU instead, drop the "
                        + "Accelerator or pass CompilerOptions {\"cpu-only\": true}")
            }
            cpuOnlyNote = "CPU only: runs on the \(os)/\(arch) CPU; the \(accelerator) accelerator is not used"
        }
        let defaults: [String: String] = [
            "X86_64": "x86-64-v2", "X86": "pentium4", "ARM64": "cortex-a53", "ARM_EABIHF": "cortex-a7",
            "ARM_EABI": "cortex-a7",
        ]
        let mcpu = options.mcpu ?? defaults[arch]!
        return CompileTarget(
            name: "\(os)_\(arch)", triple: triple, variants: [try variant(mcpu: mcpu, triple: triple)],
            cpuOnlyNote: cpuOnlyNote, extraFlags: try attributeFlags(options.mattr, triple: triple),
            layout: options.layout ?? .nhwc, l2CacheKiB: options.l2CacheKiB)
    }

    static let acceleratorBackends = [
        "NVIDIA": "CUDA/TensorRT", "MALI": "Mali GPU (OpenCL)", "INTEL_GRAPHICS": "Intel GPU (OpenCL)",
        "NNA": "Android NNAPI",
    ]

    /// One code variant for a CPU named in CompilerOptions `mcpu`.
    static func variant(mcpu: String, triple: String) throws -> CPUVariant {
        let architecture = CompileTarget.Architecture(triple: triple)
        let known: [String: [String]]
        switch architecture {
        case .x86_64, .i686:
            if mcpu == "native" {
                guard architecture == .x86_64 else {
                    throw KilnError.client(.targetDevice, "CompilerOptions mcpu native is for X86_64 targets")
                }
                let features = HostCPU.features
                return CPUVariant(mcpu: mcpu, features: features, vectorBits: vectorBits(features))
            }
            known =
                architecture == .i686 ? knownX86CPUs.merging(["pentium4": [], "i686": []]) { a, _ in a } : knownX86CPUs
        case .aarch64: known = knownARM64CPUs
        case .armv7: known = knownARMv7CPUs
        }
        guard let features = known[mcpu] else {
            throw KilnError.client(
                .targetDevice,
                "CompilerOptions mcpu \(quoted(mcpu)) is not one Kiln knows for \(triple); use "
                    + (architecture == .x86_64 ? "native or " : "") + "one of "
                    + known.keys.sorted().joined(separator: ", "))
        }
        return CPUVariant(mcpu: mcpu, features: features, vectorBits: vectorBits(features))
    }

    static func vectorBits(_ features: [String]) -> Int {
        features.contains("avx512f") ? 512 : features.contains("avx") ? 256 : 128
    }

    /// `mattr` entries as clang target-feature flags, checked against the features Kiln knows per architecture.
    static func attributeFlags(_ mattr: [String], triple: String) throws -> [String] {
        let architecture = CompileTarget.Architecture(triple: triple)
        let allowed: Set<String>
        switch architecture {
        case .x86_64, .i686:
            allowed = [
                "sse3", "ssse3", "sse4.1", "sse4.2", "popcnt", "avx", "avx2", "fma", "f16c", "avx512f", "avx512dq",
                "avx512bw", "avx512vl", "avx512vnni", "avx512bf16", "avx512fp16",
            ]
        case .aarch64: allowed = ["neon", "fp-armv8", "crc", "crypto", "dotprod", "fullfp16", "i8mm", "sve"]
        case .armv7: allowed = ["neon", "vfp3", "vfp4", "vfpv4", "fp16", "d32", "thumb2"]
        }
        return try mattr.flatMap { attribute -> [String] in
            var name = String(attribute.dropFirst())
            guard allowed.contains(name) else {
                throw KilnError.client(
                    .targetDevice,
                    "CompilerOptions mattr \(quoted(attribute)) is not a feature Kiln knows for \(triple); use +/- with one of "
                        + allowed.sorted().joined(separator: ", "))
            }
            if name == "vfpv4" { name = "vfp4" }
            return ["-Xclang", "-target-feature", "-Xclang", "\(attribute.first!)\(name)"]
        }
    }

    static let knownARM64CPUs: [String: [String]] = [
        "generic": ["neon"], "cortex-a53": ["neon"], "cortex-a57": ["neon"], "cortex-a72": ["neon"],
        "cortex-a73": ["neon"], "cortex-a55": ["neon", "dotprod"], "cortex-a75": ["neon", "dotprod"],
        "cortex-a76": ["neon", "dotprod"], "neoverse-n1": ["neon", "dotprod"], "neoverse-v1": ["neon", "dotprod"],
        "carmel": ["neon"],
    ]
    static let knownARMv7CPUs: [String: [String]] = [
        "cortex-a7": ["neon", "vfpv4"], "cortex-a9": ["neon"], "cortex-a15": ["neon", "vfpv4"],
        "cortex-a17": ["neon", "vfpv4"], "cortex-a53": ["neon", "vfpv4"], "cortex-a72": ["neon", "vfpv4"],
    ]

    static let knownX86CPUs: [String: [String]] = [
        "x86-64": [], "x86-64-v2": [], "x86-64-v3": ["avx", "avx2", "fma", "f16c"],
        "x86-64-v4": avx512,
        "ivybridge": ["avx"], "haswell": ["avx", "avx2", "fma", "f16c"], "core-avx2": ["avx", "avx2", "fma", "f16c"],
        "broadwell": ["avx", "avx2", "fma", "f16c"], "skylake": ["avx", "avx2", "fma", "f16c"],
        "skylake-avx512": avx512, "cascadelake": avx512 + ["avx512vnni"], "icelake-server": avx512 + ["avx512vnni"],
        "sapphirerapids": avx512 + ["avx512vnni", "avx512bf16", "avx512fp16"],
        "goldmont": [], "znver2": ["avx", "avx2", "fma", "f16c"], "znver3": ["avx", "avx2", "fma", "f16c"],
        "znver4": avx512 + ["avx512vnni", "avx512bf16"],
    ]
    static let avx512 = ["avx", "avx2", "fma", "f16c", "avx512f", "avx512dq", "avx512bw", "avx512vl"]

    /// L2 cache per core, in KiB, of the CPUs Kiln names whose L2 is their own (the vendors' figures). The
    /// Arm cores whose L2 a cluster shares, by a share that depends on the chip, are left to the default.
    static let l2CacheKiB: [String: Int] = [
        "ivybridge": 256, "haswell": 256, "core-avx2": 256, "broadwell": 256, "skylake": 256,
        "skylake-avx512": 1024, "cascadelake": 1024, "icelake-server": 1280, "sapphirerapids": 2048,
        "znver2": 512, "znver3": 512, "znver4": 1024, "neoverse-n1": 1024, "neoverse-v1": 1024,
    ]
    static let defaultL2CacheBytes = 512 << 10
}

/// The features of the CPU Kiln runs on, as clang and the artifact loader name them.
public enum HostCPU {
    /// The features the artifact loader can check, in the order it checks them.
    public static let checkable = [
        "avx", "avx2", "fma", "f16c", "avx512f", "avx512dq", "avx512bw", "avx512vl", "avx512vnni", "avx512bf16",
        "avx512fp16",
    ]
    /// Where /proc/cpuinfo spells a feature otherwise than clang.
    static let cpuinfoNames = ["avx512vnni": "avx512_vnni", "avx512bf16": "avx512_bf16", "avx512fp16": "avx512_fp16"]

    /// Bytes of the L2 cache of CPU 0 (Linux sysfs), nil where it cannot be read.
    public static var l2CacheBytes: Int? {
        let caches = "/sys/devices/system/cpu/cpu0/cache"
        for index in 0..<8 {
            func read(_ name: String) -> String? {
                (try? String(contentsOfFile: "\(caches)/index\(index)/\(name)", encoding: .utf8))?
                    .trimmingCharacters(in: .whitespacesAndNewlines)
            }
            guard let level = read("level") else { break }
            guard level == "2", read("type") != "Instruction", let size = read("size") else { continue }
            let units: [Character: Int] = ["K": 1 << 10, "M": 1 << 20]
            guard let unit = size.last.flatMap({ units[$0] }), let count = Int(size.dropLast()) else { return nil }
            return count * unit
        }
        return nil
    }

    public static var features: [String] {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") })
        else { return [] }
        let flags = Set(line.split(separator: " ").map(String.init))
        return checkable.filter { flags.contains(cpuinfoNames[$0] ?? $0) }
    }
}
