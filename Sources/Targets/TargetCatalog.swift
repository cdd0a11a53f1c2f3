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

    /// The compile target for a TargetDevice.
    public static func target(device: String) throws -> CompileTarget {
        guard apiDeviceNames.contains(device) else {
            throw KilnError.client(
                .targetDevice,
                "\(quoted(device)) is not a TargetDevice; use one of \(apiDeviceNames.joined(separator: ", "))")
        }
        let descriptors = try load()
        guard let descriptor = descriptors[device] else {
            throw KilnError.server(.internal, "TargetDevices/\(device).json is missing from this build")
        }
        guard descriptor.status == TargetDescriptor.Status.supported.rawValue else {
            throw KilnError.client(.targetDevice, "\(device) \(descriptor.reason)")
        }
        let primary = CPUVariant(
            mcpu: descriptor.target.mcpu, features: descriptor.target.features, vectorBits: descriptor.target.vectorBits
        )
        return CompileTarget(name: device, triple: descriptor.target.triple, variants: [primary] + descriptor.fallbacks)
    }

    /// The compile target for a TargetPlatform (`os`, `arch`) with CompilerOptions.
    public static func target(os: String, arch: String, accelerator: String?, compilerOptions: String?) throws
        -> CompileTarget
    {
        guard os == "LINUX", arch == "X86_64", accelerator == nil else {
            throw KilnError.client(
                .targetDevice,
                "TargetPlatform \(os)/\(arch)\(accelerator.map { "/\($0)" } ?? "") is not supported by this build of Kiln yet; "
                    + "it compiles for LINUX/X86_64 without an accelerator")
        }
        let options = try CompilerOptions.parse(compilerOptions)
        let mcpu = options.mcpu ?? "x86-64-v2"
        let features: [String]
        if mcpu == "native" {
            features = HostCPU.features
        } else if let known = knownX86CPUs[mcpu] {
            features = known
        } else {
            throw KilnError.client(
                .targetDevice,
                "CompilerOptions mcpu \(quoted(mcpu)) is not one Kiln knows for X86_64; use native or one of "
                    + knownX86CPUs.keys.sorted().joined(separator: ", "))
        }
        let vectorBits = features.contains("avx512f") ? 512 : features.contains("avx") ? 256 : 128
        return CompileTarget(
            name: "LINUX_X86_64", triple: "x86_64-unknown-linux-gnu",
            variants: [CPUVariant(mcpu: mcpu, features: features, vectorBits: vectorBits)])
    }

    static let knownX86CPUs: [String: [String]] = [
        "x86-64": [], "x86-64-v2": [], "x86-64-v3": ["avx", "avx2", "fma", "f16c"],
        "x86-64-v4": ["avx", "avx2", "fma", "f16c", "avx512f", "avx512dq", "avx512bw", "avx512vl"],
        "ivybridge": ["avx"], "haswell": ["avx", "avx2", "fma", "f16c"], "core-avx2": ["avx", "avx2", "fma", "f16c"],
        "skylake": ["avx", "avx2", "fma", "f16c"],
        "skylake-avx512": ["avx", "avx2", "fma", "f16c", "avx512f", "avx512dq", "avx512bw", "avx512vl"],
        "znver2": ["avx", "avx2", "fma", "f16c"], "znver3": ["avx", "avx2", "fma", "f16c"],
    ]
}

/// The features of the CPU Kiln runs on, as clang and the artifact loader name them.
public enum HostCPU {
    /// The features the artifact loader can check, in the order it checks them.
    public static let checkable = ["avx", "avx2", "fma", "f16c", "avx512f", "avx512dq", "avx512bw", "avx512vl"]

    public static var features: [String] {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") })
        else { return [] }
        let flags = Set(line.split(separator: " ").map(String.init))
        return checkable.filter { flags.contains($0) }
    }
}
