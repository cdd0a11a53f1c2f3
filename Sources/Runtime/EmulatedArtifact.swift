import Artifact
import CPUBackend
import Crypto
import Diagnostics
import Foundation

/// What `kiln run`, `kiln bench` and the tests need of an artifact, however it runs.
public protocol ArtifactExecutor: AnyObject, Sendable {
    var manifest: ArtifactManifest { get }
    /// The code variant the artifact chose for this CPU.
    var variant: String { get }
    /// nil when the artifact runs natively in this process; else how it runs (e.g. under qemu-aarch64).
    var emulation: String? { get }
    /// Runs the model once: one buffer per input in the manifest's order, exactly the tensor's bytes.
    func run(_ inputs: [Data]) throws -> [Data]
    /// Runs at least `warmup` untimed runs for at least `warmupSeconds`, then `iterations` timed runs; each
    /// timed run's milliseconds.
    func time(_ inputs: [Data], warmup: Int, warmupSeconds: Double, iterations: Int) throws -> [Double]
    /// The same warm-up, then `iterations` profiled runs; each step's label and mean milliseconds per run.
    func profile(_ inputs: [Data], warmup: Int, warmupSeconds: Double, iterations: Int) throws -> [ProfileStep]
}

/// One step of a profiled run: a graph node (or the output copies) and its mean time.
public struct ProfileStep: Sendable, Encodable {
    public var label: String
    public var milliseconds: Double
    /// The operator type: the label's first word (all of "(copy outputs)").
    public var opType: String { label.hasPrefix("(") ? label : String(label.prefix { $0 != " " }) }
}

extension ArtifactExecutor {
    public func profile(_ inputs: [Data], warmup: Int, warmupSeconds: Double, iterations: Int) throws
        -> [ProfileStep]
    {
        throw KilnError.client(
            .inputConfiguration,
            "profiling runs artifacts in this process only; \(emulation ?? "this executor") cannot time each step")
    }
}

/// An artifact built for another CPU, run by `kiln_runner` (built once per architecture with the
/// target's C library) under qemu-user. Timings under emulation say nothing about the device.
public final class EmulatedArtifact: ArtifactExecutor, @unchecked Sendable {
    public let manifest: ArtifactManifest
    public private(set) var variant: String
    public let emulation: String?
    let directory: String
    let threads: Int
    let tool: Emulator
    /// The qemu binary and the runner it starts, found (and the runner built) once, at init.
    let qemu: String
    let runner: String

    /// How one architecture's Linux binaries run here.
    struct Emulator {
        var qemu: String
        var sysroot: String
        var clangTriple: String
        var install: String
        var name: String
    }

    static let emulators: [String: Emulator] = [
        "aarch64": Emulator(
            qemu: "qemu-aarch64", sysroot: "/usr/aarch64-linux-gnu", clangTriple: "aarch64-linux-gnu",
            install: "qemu-user gcc-aarch64-linux-gnu", name: "AArch64"),
        "armv7a": Emulator(
            qemu: "qemu-arm", sysroot: "/usr/arm-linux-gnueabihf", clangTriple: "arm-linux-gnueabihf",
            install: "qemu-user gcc-arm-linux-gnueabihf", name: "32-bit Arm (hard-float)"),
        "i686": Emulator(
            qemu: "qemu-i386", sysroot: "/usr/i686-linux-gnu", clangTriple: "i686-linux-gnu",
            install: "qemu-user gcc-i686-linux-gnu", name: "32-bit x86"),
    ]

    /// The emulator for an artifact's triple, or the reason it cannot run here.
    static func emulator(for manifest: ArtifactManifest, searchPath: String? = nil) throws -> (Emulator, String) {
        let triple = manifest.triple
        if triple.contains("windows") {
            throw KilnError.client(
                .targetDevice,
                "this artifact is a Windows DLL (\(triple)); run it on Windows through kiln.h, not on this Linux machine"
            )
        }
        if triple.contains("android") {
            throw KilnError.client(
                .targetDevice,
                "this artifact is for Android (\(triple)); run it on an Android device through kiln.h, not here")
        }
        let arch = String(triple.prefix { $0 != "-" })
        guard let emulator = emulators[arch], triple.hasSuffix("linux-gnu") || triple.hasSuffix("gnueabihf") else {
            throw KilnError.client(
                .targetDevice, "this artifact is for \(triple), which this machine can neither run nor emulate")
        }
        let qemu = findExecutable(emulator.qemu, searchPath: searchPath)
        let missing =
            (qemu == nil ? [emulator.qemu] : [])
            + [emulator.sysroot + "/lib/libc.so.6"].filter { !FileManager.default.fileExists(atPath: $0) }
        guard let qemu, missing.isEmpty else {
            throw KilnError.client(
                .targetDevice,
                "this artifact is for \(emulator.name) (\(triple)); running it here needs qemu-user and the \(emulator.name) C library, "
                    + "which are missing (\(missing.joined(separator: ", "))): apt-get install \(emulator.install)")
        }
        return (emulator, qemu)
    }

    public init(directory: String, manifest: ArtifactManifest, threads: Int = 1) throws {
        self.directory = directory
        self.manifest = manifest
        self.threads = threads
        (tool, qemu) = try Self.emulator(for: manifest)
        runner = try Self.runnerBinary(tool)
        emulation = "\(tool.qemu) (qemu-user emulation: timings say nothing about the device)"
        variant = "?"
        variant = try invoke(inputs: nil).variant
    }

    public func run(_ inputs: [Data]) throws -> [Data] {
        try invoke(inputs: inputs).outputs
    }

    public func time(_ inputs: [Data], warmup: Int, warmupSeconds: Double, iterations: Int) throws -> [Double] {
        guard warmupSeconds == 0 else {
            throw KilnError.client(
                .inputConfiguration,
                "a warm-up by time runs artifacts in this process only; under \(tool.qemu) give a number of runs")
        }
        return try invoke(inputs: inputs, warmup: warmup, iterations: iterations).times
    }

    /// Runs the runner once. `inputs` nil: zero-filled inputs and no timed run (a load check).
    func invoke(inputs: [Data]?, warmup: Int = 0, iterations: Int = 1) throws -> (
        variant: String, times: [Double], outputs: [Data]
    ) {
        let scratch = FileManager.default.temporaryDirectory.path + "/kiln-emulated-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let given = inputs ?? manifest.inputs.map { Data(count: LoadedArtifact.bytes($0)) }
        guard given.count == manifest.inputs.count else {
            throw KilnError.client(
                .dataInputConfig, "the model takes \(manifest.inputs.count) inputs, got \(given.count)")
        }
        var arguments = [
            "-L", tool.sysroot, runner, "\(directory)/\(manifest.libraryFile)", "\(directory)/weights.bin",
            String(threads), String(inputs == nil ? 0 : warmup), String(inputs == nil ? 0 : iterations),
        ]
        for (index, data) in given.enumerated() {
            let path = "\(scratch)/in\(index)"
            try data.write(to: URL(fileURLWithPath: path))
            arguments.append(path)
        }
        for (index, tensor) in manifest.outputs.enumerated() {
            arguments.append("\(scratch)/out\(index):\(LoadedArtifact.bytes(tensor))")
        }
        let (status, output, errors) = try Self.execute(qemu, arguments)
        guard status == 0 else {
            let reason = errors.trimmingCharacters(in: .whitespacesAndNewlines)
            if reason.hasPrefix("cannot run this artifact here") {
                throw KilnError.client(.targetDevice, reason)
            }
            throw KilnError.server(
                .internal,
                "the artifact failed under \(tool.qemu): \(reason.isEmpty ? "exit status \(status)" : reason)")
        }
        var variant = "?"
        var times: [Double] = []
        for line in output.split(separator: "\n") {
            let words = line.split(separator: " ")
            if words.first == "variant", words.count > 1 { variant = String(words[1]) }
            if words.first == "times" { times = words.dropFirst().compactMap { Double($0) } }
        }
        let outputs =
            inputs == nil
            ? []
            : try manifest.outputs.indices.map { try Data(contentsOf: URL(fileURLWithPath: "\(scratch)/out\($0)")) }
        return (variant, times, outputs)
    }

    /// `kiln_runner` for the emulated architecture, built once into a per-user cache.
    static func runnerBinary(_ tool: Emulator) throws -> String {
        let kernels = ClangDriver.kernelDirectory.path
        let source = try Data(contentsOf: URL(fileURLWithPath: "\(kernels)/kiln_runner.c"))
        let header = try Data(contentsOf: URL(fileURLWithPath: "\(kernels)/kiln.h"))
        let digest = SHA256.hash(data: source + header + Data(tool.clangTriple.utf8))
            .map { String(format: "%02x", $0) }.joined().prefix(16)
        let cache = FileManager.default.temporaryDirectory.path + "/kiln-runners-\(getuid())"
        let binary = "\(cache)/kiln_runner-\(tool.clangTriple)-\(digest)"
        if FileManager.default.isExecutableFile(atPath: binary) { return binary }
        try FileManager.default.createDirectory(atPath: cache, withIntermediateDirectories: true)
        let staging = binary + ".\(UUID().uuidString)"
        let clang = ClangDriver(cacheDirectory: cache).clang
        let (status, _, errors) = try execute(
            clang.hasPrefix("/") ? clang : findExecutable(clang) ?? "/usr/bin/clang",
            [
                "--target=\(tool.clangTriple)", "-fuse-ld=lld", "-O2", "-I", kernels, "\(kernels)/kiln_runner.c",
                "-o", staging, "-ldl",
            ])
        guard status == 0 else {
            try? FileManager.default.removeItem(atPath: staging)
            throw KilnError.client(
                .targetDevice,
                "cannot build the \(tool.name) runner (needs the \(tool.name) C library: apt-get install \(tool.install)): "
                    + errors.split(separator: "\n").prefix(2).joined(separator: " | "))
        }
        try? FileManager.default.moveItem(atPath: staging, toPath: binary)
        try? FileManager.default.removeItem(atPath: staging)
        return binary
    }

    static func findExecutable(_ name: String, searchPath: String? = nil) -> String? {
        let path = searchPath ?? ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        return path.split(separator: ":").map { "\($0)/\(name)" }.first {
            FileManager.default.isExecutableFile(atPath: $0)
        }
    }

    /// Runs a program to its end; its status, stdout and stderr.
    static func execute(_ program: String, _ arguments: [String]) throws -> (Int32, String, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = arguments
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        let collectedOutput = OutputCollector(output.fileHandleForReading)
        let collectedErrors = OutputCollector(errors.fileHandleForReading)
        do {
            try process.run()
        } catch {
            throw KilnError.server(.internal, "cannot start \(program): \(error)")
        }
        process.waitUntilExit()
        return (process.terminationStatus, collectedOutput.finish(), collectedErrors.finish())
    }
}
