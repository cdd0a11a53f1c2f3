import Artifact
import Diagnostics
import Foundation
import Pipeline
import TestSupport
import Testing

@testable import Runtime

/// Whether this machine can run Arm and 32-bit x86 Linux artifacts (qemu-user and the cross C libraries).
let canEmulate =
    [
        "/usr/bin/qemu-aarch64", "/usr/bin/qemu-arm", "/usr/aarch64-linux-gnu/lib/libc.so.6",
        "/usr/arm-linux-gnueabihf/lib/libc.so.6",
    ].allSatisfy { FileManager.default.fileExists(atPath: $0) }

/// The digits CNN, unpacked: its ONNX bytes.
func digitsCNN() throws -> [UInt8] {
    let directory = try TemporaryDirectory()
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["tar", "xzf", repositoryRoot + "/models/digits-cnn/model.tar.gz", "-C", directory.path]
    try process.run()
    process.waitUntilExit()
    let name = try #require(directory.listing().first { $0.hasSuffix(".onnx") })
    return Array(try Data(contentsOf: URL(fileURLWithPath: directory.path + "/" + name)))
}

/// The raw bytes of an unpacked artifact's file.
func artifactFile(_ compilation: Compilation, _ name: String) throws -> Data {
    let directory = try TemporaryDirectory()
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["tar", "xzf", try #require(compilation.artifactPath), "-C", directory.path, name]
    try process.run()
    process.waitUntilExit()
    return try Data(contentsOf: URL(fileURLWithPath: directory.path + "/" + name))
}

func u16(_ data: Data, _ offset: Int) -> Int { Int(data[offset]) | Int(data[offset + 1]) << 8 }
func u32(_ data: Data, _ offset: Int) -> Int { u16(data, offset) | u16(data, offset + 2) << 16 }

/// A PE file's machine type, exported names and imported DLL names (enough of the format to check a DLL).
func portableExecutable(_ data: Data) throws -> (machine: Int, exports: [String], imports: [String: [String]]) {
    try #require(data.count > 0x40 && data[0] == UInt8(ascii: "M") && data[1] == UInt8(ascii: "Z"))
    let pe = u32(data, 0x3c)
    try #require(u32(data, pe) == 0x4550)
    let machine = u16(data, pe + 4)
    let sectionCount = u16(data, pe + 6)
    let optional = pe + 24
    let pe32Plus = u16(data, optional) == 0x20b
    let directories = optional + (pe32Plus ? 112 : 96)
    let sections = optional + u16(data, pe + 20)
    func offset(_ rva: Int) -> Int? {
        for index in 0..<sectionCount {
            let header = sections + index * 40
            let virtualAddress = u32(data, header + 12)
            let size = max(u32(data, header + 8), u32(data, header + 16))
            if rva >= virtualAddress && rva < virtualAddress + size {
                return rva - virtualAddress + u32(data, header + 20)
            }
        }
        return nil
    }
    func string(_ rva: Int) -> String {
        guard let start = offset(rva) else { return "?" }
        let end = data[start...].firstIndex(of: 0) ?? data.endIndex
        return String(decoding: data[start..<end], as: UTF8.self)
    }
    var exports: [String] = []
    if let table = offset(u32(data, directories)), u32(data, directories) != 0 {
        let count = u32(data, table + 24)
        let names = try #require(offset(u32(data, table + 32)))
        exports = (0..<count).map { string(u32(data, names + 4 * $0)) }
    }
    var imports: [String: [String]] = [:]
    if var descriptor = offset(u32(data, directories + 8)), u32(data, directories + 8) != 0 {
        while u32(data, descriptor + 12) != 0 {
            var functions: [String] = []
            if var thunk = offset(u32(data, descriptor)) {
                while true {
                    let entry = pe32Plus ? u32(data, thunk) | u32(data, thunk + 4) << 32 : u32(data, thunk)
                    if entry == 0 { break }
                    functions.append(string((entry & 0x7fff_ffff) + 2))
                    thunk += pe32Plus ? 8 : 4
                }
            }
            imports[string(u32(data, descriptor + 12)).lowercased()] = functions
            descriptor += 20
        }
    }
    return (machine, exports, imports)
}

@Suite("artifacts for other CPUs and operating systems")
struct CrossTargetTests {
    static let abi = [
        "kiln_abi_version", "kiln_create", "kiln_destroy", "kiln_input_count", "kiln_input_dtype", "kiln_input_name",
        "kiln_input_rank", "kiln_input_shape", "kiln_last_error", "kiln_node_count", "kiln_node_label",
        "kiln_output_count", "kiln_output_dtype", "kiln_output_name", "kiln_output_rank", "kiln_output_shape",
        "kiln_profile", "kiln_run", "kiln_variant",
    ]

    @Test(
        "Linux and Android artifacts for Arm are ELF for their machine; a cpu-only accelerator artifact says so in its manifest",
        arguments: [
            ("rasp4b", nil, 183, 2), ("rasp3b", nil, 40, 1), ("ml_c6g", nil, 183, 2),
            ("jetson_nano", #"{"cpu-only": true}"#, 183, 2),
            ("qcs605", #"{"cpu-only": true, "ANDROID_PLATFORM": 24}"#, 183, 2),
        ] as [(String, String?, Int, Int)])
    func elf(device: String, options: String?, machine: Int, elfClass: Int) async throws {
        let directory = try TemporaryDirectory()
        let result = try await compile(
            reluModel(), config: "[[2,4]]", target: .device(device, compilerOptions: options), in: directory)
        let library = try artifactFile(result, "model.so")
        #expect(library.prefix(4) == Data([0x7f, 0x45, 0x4c, 0x46]))
        #expect(Int(library[4]) == elfClass)
        #expect(u16(library, 18) == machine)
        #expect(result.manifest.libraryFile == "model.so")
        #expect((result.manifest.cpuOnly != nil) == (options != nil))
        if device == "jetson_nano" {
            #expect(result.manifest.cpuOnly?.hasPrefix("CPU only: runs on the 4x Arm Cortex-A57") == true)
        }
    }

    @Test(
        "x86_win64 and x86_win32 give a DLL exporting the kiln.h ABI and importing only Windows' own libraries",
        arguments: [("x86_win64", 0x8664), ("x86_win32", 0x14c)])
    func windowsDLL(device: String, machine: Int) async throws {
        let directory = try TemporaryDirectory()
        let result = try await compile(
            try digitsCNN(), config: #"{"image": [1,1,8,8]}"#, target: .device(device, compilerOptions: nil),
            in: directory)
        #expect(result.manifest.library == "model.dll")
        #expect(result.manifest.files == ["kiln.h", "manifest.json", "model.dll", "weights.bin"])
        let dll = try portableExecutable(try artifactFile(result, "model.dll"))
        #expect(dll.machine == machine)
        #expect(dll.exports.sorted() == Self.abi)
        #expect(Set(dll.imports.keys) == ["kernel32.dll", "ntdll.dll", "ucrtbase.dll"])
        #expect(dll.imports["kernel32.dll"]?.contains("CreateFileA") == true)
        #expect(dll.imports["ucrtbase.dll"]?.contains("exp") == true)
    }

    @Test(
        "Arm artifacts run under qemu-user and match this machine's own artifact",
        .enabled(if: canEmulate || TestServices.required), arguments: ["rasp4b", "rasp3b", "rk3288"])
    func emulated(device: String) async throws {
        try #require(
            canEmulate,
            "qemu-user and the Arm C libraries are missing: apt-get install qemu-user gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf"
        )
        let model = try digitsCNN()
        let digit = try NPYArray.read(path: repositoryRoot + "/models/digits-cnn/sample-digit-0.npy").data
        let directory = try TemporaryDirectory()
        let host = try await compile(
            model, config: #"{"image": [1,1,8,8]}"#, target: .device("ml_c4", compilerOptions: nil), in: directory)
        let other = try TemporaryDirectory()
        let result = try await compile(
            model, config: #"{"image": [1,1,8,8]}"#, target: .device(device, compilerOptions: nil), in: other)
        let hostPath = try #require(host.artifactPath)
        let path = try #require(result.artifactPath)
        // qemu runs block their thread: keep them off the cooperative pool the other tests share.
        let (expected, got, emulation, variant, times) = try await onOwnThread {
            let expected = floats(try OpenedArtifact(path: hostPath).loaded.run([digit])[0])
            let artifact = try OpenedArtifact(path: path)
            let got = floats(try artifact.loaded.run([digit])[0])
            let times = try artifact.loaded.time([digit], warmup: 1, warmupSeconds: 0, iterations: 3)
            return (expected, got, artifact.loaded.emulation, artifact.loaded.variant, times)
        }
        #expect(emulation?.hasPrefix("qemu-") == true)
        #expect(variant == result.manifest.variants[0].name)
        #expect(got.count == 10)
        let worst = zip(got, expected).map { abs($0 - $1) }.max() ?? 1
        #expect(worst <= 1e-4 * (expected.map(abs).max() ?? 1), "\(got) vs \(expected)")
        #expect(got.firstIndex(of: got.max()!) == 0)
        #expect(times.count == 3 && times.allSatisfy { $0 > 0 })
    }

    @Test("without qemu-user, running an Arm artifact says what to install; Windows and Android say where to run")
    func missingEmulator() throws {
        func manifest(_ triple: String) -> ArtifactManifest {
            ArtifactManifest(
                kilnVersion: "test", abiVersion: 1, targetDevice: "x", triple: triple, variants: [], inputs: [],
                outputs: [], sourceModelSHA256: "", opCountsBefore: [:], opCountsAfter: [:], passesApplied: [],
                arenaBytes: 0, weightsBytes: 0, files: [])
        }
        let cases = [
            (
                "aarch64-unknown-linux-gnu",
                "this artifact is for AArch64 (aarch64-unknown-linux-gnu); running it here needs qemu-user"
            ),
            ("armv7a-unknown-linux-gnueabihf", "apt-get install qemu-user gcc-arm-linux-gnueabihf"),
            ("x86_64-pc-windows-msvc", "this artifact is a Windows DLL"),
            ("aarch64-unknown-linux-android24", "this artifact is for Android"),
        ]
        for (triple, reason) in cases {
            do {
                _ = try EmulatedArtifact.emulator(for: manifest(triple), searchPath: "/nonexistent")
                Issue.record("\(triple) found an emulator")
            } catch let error as KilnError {
                #expect(error.failureReason.hasPrefix("ClientError: TargetDevice: "))
                #expect(error.message.contains(reason), "\(error.message)")
            }
        }
    }
}
