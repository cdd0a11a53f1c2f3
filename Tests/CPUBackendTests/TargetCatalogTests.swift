import Diagnostics
import Foundation
import Testing

@testable import Targets

@Suite("the TargetDevice descriptors")
struct TargetCatalogTests {
    @Test("every one of the API's 37 TargetDevices has a descriptor, and every descriptor follows the schema")
    func everyDeviceValidates() throws {
        let directory = try #require(TargetCatalog.directory)
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".json") }
        #expect(files.count == 37)
        let descriptors = try TargetCatalog.load()
        #expect(Set(descriptors.keys) == Set(TargetCatalog.apiDeviceNames))
        for file in files {
            let descriptor = try JSONDecoder().decode(
                TargetDescriptor.self, from: Data(contentsOf: directory.appendingPathComponent(file)))
            #expect(descriptor.problems(file: file) == [], "\(file)")
        }
        let byStatus = Dictionary(grouping: descriptors.values, by: \.status).mapValues { $0.map(\.name).sorted() }
        #expect(
            byStatus["supported"] == [
                "aisage", "imx8qm", "lambda", "ml_c4", "ml_c5", "ml_c6g", "ml_m4", "ml_m5", "ml_m6g", "rasp3b",
                "rasp4b",
                "rk3288", "rk3399", "sbe_c", "sitara_am57x", "x86_win32", "x86_win64",
            ])
        #expect(byStatus["planned"] == nil)
        #expect(byStatus["accelerator"]?.count == 20)
    }

    @Test("the schema check catches what a hand-edited file gets wrong")
    func schemaCatchesMistakes() throws {
        var descriptor = try #require(try TargetCatalog.load()["ml_p3"])
        descriptor.accelerator = nil
        descriptor.target.triple = "riscv64-unknown-linux-gnu"
        descriptor.target.features.append("sse9")
        let problems = descriptor.problems(file: "ml_p2.json")
        #expect(problems.contains("name 'ml_p3' does not match the file name"))
        #expect(problems.contains("an accelerator is named exactly when the status is accelerator"))
        #expect(problems.contains("triple 'riscv64-unknown-linux-gnu' is not one Kiln knows"))
        #expect(problems.contains("feature 'sse9' of broadwell is not one Kiln knows"))
    }

    @Test("cpu-only gives an accelerator device's CPU target and says so; without it, or for coreml, no artifact")
    func cpuOnly() throws {
        let nano = try TargetCatalog.target(device: "jetson_nano", compilerOptions: #"{"cpu-only": true}"#)
        #expect(nano.triple == "aarch64-unknown-linux-gnu")
        #expect(nano.variants.map(\.mcpu) == ["cortex-a57"])
        #expect(nano.cpuOnlyNote?.contains("its NVIDIA Maxwell GPU (128 CUDA cores) is not used") == true)
        let qcs = try TargetCatalog.target(
            device: "qcs605", compilerOptions: #"{"cpu_only": true, "ANDROID_PLATFORM": 27}"#)
        #expect(qcs.triple == "aarch64-unknown-linux-android27")
        #expect(qcs.isAndroid && qcs.libraryName == "model.so")
        #expect(try TargetCatalog.target(device: "rasp4b", compilerOptions: nil).cpuOnlyNote == nil)
        #expect(throws: KilnError.self) {
            try TargetCatalog.target(device: "coreml", compilerOptions: #"{"cpu-only": true}"#)
        }
        #expect(throws: KilnError.self) {
            try TargetCatalog.target(device: "ml_p3", compilerOptions: #"{"cpu-only": false}"#)
        }
    }

    @Test("CompilerOptions: mcpu and mattr per architecture, and a clear reason for every bad value")
    func compilerOptions() throws {
        let pi = try TargetCatalog.target(
            device: "rasp3b", compilerOptions: #"{"mcpu": "cortex-a7", "mattr": ["+neon"]}"#)
        #expect(pi.variants.map(\.mcpu) == ["cortex-a7"])
        #expect(pi.extraFlags == ["-Xclang", "-target-feature", "-Xclang", "+neon"])
        let cases: [(String, String, String)] = [
            (
                "rasp4b", #"{"mcpu": "haswell"}"#,
                "CompilerOptions mcpu 'haswell' is not one Kiln knows for aarch64-unknown-linux-gnu"
            ),
            ("ml_c5", #"{"mattr": ["+neon"]}"#, "CompilerOptions mattr '+neon' is not a feature Kiln knows"),
            ("ml_c5", #"{"mattr": ["avx2"]}"#, "CompilerOptions mattr entry 'avx2' is not like"),
            ("ml_c5", #"{"cpu-only": "yes"}"#, "CompilerOptions cpu-only must be true or false"),
            ("rasp4b", #"{"ANDROID_PLATFORM": 24}"#, "CompilerOptions ANDROID_PLATFORM is for Android targets"),
            ("qcs605", #"{"cpu-only": true, "ANDROID_PLATFORM": 12}"#, "CompilerOptions ANDROID_PLATFORM must be"),
            ("ml_c5", #"{"opt-level": 3}"#, "CompilerOptions key 'opt-level' is not supported"),
            ("ml_c5", "[1]", "CompilerOptions '[1]' is not a JSON object"),
            ("ml_c5", #"{"l2-cache-kib": 8}"#, "CompilerOptions l2-cache-kib must be a whole number of KiB"),
            ("ml_c5", #"{"l2-cache-kib": "1M"}"#, "CompilerOptions l2-cache-kib must be a whole number of KiB"),
            ("ml_c5", #"{"l2-cache-kib": 1.5}"#, "CompilerOptions l2-cache-kib must be a whole number of KiB"),
        ]
        for (device, options, reason) in cases {
            do {
                _ = try TargetCatalog.target(device: device, compilerOptions: options)
                Issue.record("\(device) \(options) was accepted")
            } catch let error as KilnError {
                #expect(error.failureReason.hasPrefix("ClientError: TargetDevice: " + reason), "\(error.failureReason)")
            }
        }
    }

    @Test("the L2 cache the optimizer plans for: CompilerOptions first, then the named CPU's, else 512 KiB")
    func l2Cache() throws {
        #expect(try TargetCatalog.target(device: "ml_c5", compilerOptions: nil).l2CacheBytes == 1 << 20)
        #expect(try TargetCatalog.target(device: "ml_c4", compilerOptions: nil).l2CacheBytes == 256 << 10)
        #expect(try TargetCatalog.target(device: "rasp4b", compilerOptions: nil).l2CacheBytes == 512 << 10)
        let given = try TargetCatalog.target(device: "ml_c5", compilerOptions: #"{"l2-cache-kib": 2048}"#)
        #expect(given.l2CacheBytes == 2 << 20)
        if let host = HostCPU.l2CacheBytes {
            #expect(host >= 64 << 10 && host <= 64 << 20, "\(host) bytes read from sysfs")
            let native = try TargetCatalog.target(
                os: "LINUX", arch: "X86_64", accelerator: nil, compilerOptions: #"{"mcpu": "native"}"#)
            #expect(native.l2CacheBytes == host)
        }
    }

    @Test("TargetPlatform: every Os/Arch pair that exists, and a reason for those that do not")
    func platforms() throws {
        let good: [(String, String, String?, String?, String)] = [
            ("LINUX", "X86_64", nil, nil, "x86_64-unknown-linux-gnu"),
            ("LINUX", "X86", nil, nil, "i686-unknown-linux-gnu"),
            ("LINUX", "ARM64", nil, #"{"mcpu": "neoverse-n1"}"#, "aarch64-unknown-linux-gnu"),
            ("LINUX", "ARM_EABIHF", nil, nil, "armv7a-unknown-linux-gnueabihf"),
            ("LINUX", "ARM_EABI", nil, nil, "armv7a-unknown-linux-gnueabi"),
            ("ANDROID", "ARM64", nil, #"{"ANDROID_PLATFORM": 29}"#, "aarch64-unknown-linux-android29"),
            ("ANDROID", "ARM_EABI", nil, #"{"ANDROID_PLATFORM": "android-21"}"#, "armv7a-unknown-linux-androideabi21"),
            ("LINUX", "ARM64", "NVIDIA", #"{"cpu-only": true}"#, "aarch64-unknown-linux-gnu"),
        ]
        for (os, arch, accelerator, options, triple) in good {
            let target = try TargetCatalog.target(
                os: os, arch: arch, accelerator: accelerator, compilerOptions: options)
            #expect(target.triple == triple)
            #expect((target.cpuOnlyNote != nil) == (accelerator != nil))
        }
        let bad: [(String, String, String?, String?, String)] = [
            ("ANDROID", "ARM64", nil, nil, "TargetPlatform ANDROID needs the API level"),
            (
                "ANDROID", "ARM_EABIHF", nil, #"{"ANDROID_PLATFORM": 21}"#,
                "TargetPlatform ANDROID/ARM_EABIHF does not exist"
            ),
            ("LINUX", "X86_64", "MALI", nil, "TargetPlatform Accelerator MALI does not exist on LINUX/X86_64"),
            (
                "LINUX", "X86_64", nil, #"{"ANDROID_PLATFORM": 21}"#,
                "CompilerOptions ANDROID_PLATFORM is for TargetPlatform Os ANDROID"
            ),
            ("WINDOWS", "X86_64", nil, nil, "TargetPlatform Os 'WINDOWS' is not LINUX or ANDROID"),
        ]
        for (os, arch, accelerator, options, reason) in bad {
            #expect(throws: KilnError.self) {
                try TargetCatalog.validatePlatform(
                    os: os, arch: arch, accelerator: accelerator, compilerOptions: options)
            }
            do {
                _ = try TargetCatalog.target(os: os, arch: arch, accelerator: accelerator, compilerOptions: options)
                Issue.record("\(os)/\(arch) was accepted")
            } catch let error as KilnError {
                #expect(error.message.hasPrefix(reason), "\(error.message)")
            }
        }
        // A valid combination whose accelerator backend is missing is a job failure, not a validation error.
        try TargetCatalog.validatePlatform(os: "LINUX", arch: "ARM64", accelerator: "NVIDIA", compilerOptions: nil)
        do {
            _ = try TargetCatalog.target(os: "LINUX", arch: "ARM64", accelerator: "NVIDIA", compilerOptions: nil)
            Issue.record("NVIDIA compiled without cpu-only")
        } catch let error as KilnError {
            #expect(error.message.contains("needs the CUDA/TensorRT backend, which this build of Kiln does not have"))
        }
    }

    @Test("accelerator and not-yet devices fail with their descriptor's reason, never a silent CPU artifact")
    func honestFailures() {
        let cases: [(String, String)] = [
            (
                "ml_p3",
                "ClientError: TargetDevice: ml_p3 needs the CUDA backend for its NVIDIA Tesla V100 GPU, which this build of Kiln does not have; to run on its CPU (Intel Xeon E5-2686 v4 (Broadwell)) instead, pass CompilerOptions {\"cpu-only\": true} for a CPU-only x86-64 Linux shared object"
            ),
            (
                "jetson_nano",
                "ClientError: TargetDevice: jetson_nano needs the CUDA/TensorRT backend for its NVIDIA Maxwell GPU"
            ),
            ("qcs605", "ClientError: TargetDevice: qcs605 needs the Hexagon DSP (SNPE) backend"),
            ("coreml", "ClientError: TargetDevice: coreml needs the Core ML (.mlmodel) backend"),
        ]
        for (device, reason) in cases {
            do {
                _ = try TargetCatalog.target(device: device)
                Issue.record("\(device) compiled")
            } catch let error as KilnError {
                #expect(error.failureReason.hasPrefix(reason), "\(error.failureReason)")
            } catch {
                Issue.record("\(error)")
            }
        }
    }
}
