import Diagnostics
import Foundation

/// `OutputConfig.CompilerOptions`: a JSON object. For CPUs `mcpu` and `mattr`; `cpu-only` asks for a
/// CPU artifact for an accelerator device; `ANDROID_PLATFORM` is the API level of an Android target.
/// The NVIDIA keys (`gpu-code`, `trt-ver`, `cuda-ver`) are accepted as the API documents them, for the
/// GPU backend this build does not have.
public struct CompilerOptions: Sendable, Equatable {
    public var mcpu: String?
    public var mattr: [String] = []
    public var cpuOnly = false
    public var androidPlatform: Int?
    public var gpuOptions: [String: String] = [:]
    /// Kiln's own key: the activation layout of the generated code (default: the target's).
    public var layout: ActivationLayout?
    /// Kiln's own key `l2-cache-kib`: the L2 cache per core the optimizer plans for, in KiB (default: the
    /// host's for `mcpu` native, Kiln's table for the CPUs it names, else 512).
    public var l2CacheKiB: Int?

    public init(mcpu: String? = nil, mattr: [String] = []) {
        self.mcpu = mcpu
        self.mattr = mattr
    }

    static let known = [
        "mcpu", "mattr", "cpu-only", "cpu_only", "ANDROID_PLATFORM", "gpu-code", "gpu_code", "trt-ver", "cuda-ver",
        "layout", "l2-cache-kib",
    ]

    public static func parse(_ text: String?) throws -> CompilerOptions {
        var options = CompilerOptions()
        guard let text, !text.trimmingCharacters(in: .whitespaces).isEmpty else { return options }
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
            throw KilnError.client(.targetDevice, "CompilerOptions \(quoted(text, limit: 80)) is not a JSON object")
        }
        if let unknown = object.keys.sorted().first(where: { !known.contains($0) }) {
            throw KilnError.client(
                .targetDevice,
                "CompilerOptions key \(quoted(unknown)) is not supported; the keys are mcpu, mattr, cpu-only, "
                    + "ANDROID_PLATFORM, gpu-code, trt-ver, cuda-ver and Kiln's layout and l2-cache-kib")
        }
        if let value = object["mcpu"] {
            guard let mcpu = value as? String, !mcpu.isEmpty else {
                throw KilnError.client(.targetDevice, "CompilerOptions mcpu must be a CPU name like \"cortex-a72\"")
            }
            options.mcpu = mcpu
        }
        if let value = object["mattr"] {
            guard let mattr = value as? [String] else {
                throw KilnError.client(
                    .targetDevice, "CompilerOptions mattr must be a list of strings like [\"+neon\"]")
            }
            for attribute in mattr
            where attribute.count < 2 || !"+-".contains(attribute.first!)
                || !attribute.dropFirst().allSatisfy({ $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" })
            {
                throw KilnError.client(
                    .targetDevice,
                    "CompilerOptions mattr entry \(quoted(attribute)) is not like \"+neon\" or \"-avx512f\"")
            }
            options.mattr = mattr
        }
        for key in ["cpu-only", "cpu_only"] {
            guard let value = object[key] else { continue }
            guard isBoolean(value), let flag = value as? Bool else {
                throw KilnError.client(.targetDevice, "CompilerOptions \(key) must be true or false")
            }
            options.cpuOnly = flag
        }
        if let value = object["ANDROID_PLATFORM"] {
            let level: Int?
            if !isBoolean(value), let number = value as? NSNumber {
                level = value as? Int ?? (number.doubleValue == number.doubleValue.rounded() ? number.intValue : nil)
            } else if let string = value as? String {
                level = Int(string.hasPrefix("android-") ? String(string.dropFirst(8)) : string)
            } else {
                level = nil
            }
            guard let level, (21...35).contains(level) else {
                throw KilnError.client(
                    .targetDevice, "CompilerOptions ANDROID_PLATFORM must be an Android API level from 21 to 35")
            }
            options.androidPlatform = level
        }
        if let value = object["layout"] {
            guard let name = value as? String, let layout = ActivationLayout(rawValue: name) else {
                throw KilnError.client(
                    .targetDevice,
                    "CompilerOptions layout must be \"NHWC\" (channels last, the default) or \"NCHW\" (the model's own)"
                )
            }
            options.layout = layout
        }
        if let value = object["l2-cache-kib"] {
            guard !isBoolean(value), let kib = value as? Int, (16...65536).contains(kib) else {
                throw KilnError.client(
                    .targetDevice, "CompilerOptions l2-cache-kib must be a whole number of KiB from 16 to 65536")
            }
            options.l2CacheKiB = kib
        }
        for key in ["gpu-code", "gpu_code", "trt-ver", "cuda-ver"] {
            guard let value = object[key] else { continue }
            guard let string = value as? String else {
                throw KilnError.client(.targetDevice, "CompilerOptions \(key) must be a string")
            }
            options.gpuOptions[key] = string
        }
        return options
    }

    /// JSON true/false (Foundation hands booleans over as NSNumbers of type "c").
    static func isBoolean(_ value: Any) -> Bool {
        (value as? NSNumber).map { String(cString: $0.objCType) == "c" } ?? false
    }
}

/// How the generated code lays out activations between convolutions and pooling: channels last (NHWC,
/// the CPU kernels' fastest, weights packed for them at compile time), or the model's own NCHW.
public enum ActivationLayout: String, Sendable, Equatable {
    case nchw = "NCHW"
    case nhwc = "NHWC"
}
