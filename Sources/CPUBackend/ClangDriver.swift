import Crypto
import Diagnostics
import Foundation
import Targets

/// The build stage: compiles the generated C and the kernel library with
/// clang for each CPU variant of the target and links one shared object with
/// lld. Kernel objects are cached per (target variant, kernel source digest),
/// so a second compile of any model only compiles the model's own code.
public struct ClangDriver: Sendable {
    public var clang: String
    public var cacheDirectory: String

    public init(cacheDirectory: String) {
        self.cacheDirectory = cacheDirectory
        let environment = ProcessInfo.processInfo.environment
        if let cc = environment["CC"], !cc.isEmpty {
            clang = cc
        } else if FileManager.default.isExecutableFile(atPath: "/opt/swift/usr/bin/clang") {
            clang = "/opt/swift/usr/bin/clang"
        } else {
            clang = "clang"
        }
    }

    /// What a build did, for the job record.
    public struct Report: Sendable {
        public var library: String
        public var variants: [(name: String, symbol: String, features: [String])]
        public var kernelCacheHits: Int
        public var kernelCacheMisses: Int
    }

    static let kernelFiles = ["gemm.c", "conv.c", "pool.c", "reduce.c", "layout.c", "norm.c"]

    public static var kernelDirectory: URL {
        Bundle.module.url(forResource: "Kernels", withExtension: nil)!
    }

    /// The C header users of an artifact include.
    public static func header() throws -> Data {
        try Data(contentsOf: kernelDirectory.appendingPathComponent("kiln.h"))
    }

    public func build(_ model: GeneratedModel, target: CompileTarget, in directory: String) async throws -> Report {
        let kernels = Self.kernelDirectory.path
        var variants: [(name: String, symbol: String, features: [String])] = []
        var objects: [String] = []
        var hits = 0
        var misses = 0
        let version = try await clangVersion()
        for variant in target.variants {
            let symbolSuffix = variant.mcpu.map { $0.isLetter || $0.isNumber ? $0 : "_" }
            let suffix = "_" + String(symbolSuffix)
            let flags = variantFlags(variant, target: target) + ["-DKK_SUFFIX=\(suffix)"]
            let (kernelObjects, hit) = try await kernelLibrary(flags: flags, version: version, kernels: kernels)
            if hit { hits += 1 } else { misses += 1 }
            objects += kernelObjects
            let runSource = "\(directory)/model_run\(suffix).c"
            try model.runSource.write(toFile: runSource, atomically: true, encoding: .utf8)
            let runObject = "\(directory)/model_run\(suffix).o"
            try await run(
                flags + [
                    "-DKILN_RUN_NAME=kiln_run\(suffix)", "-I", kernels, "-Wno-unused-variable", "-c", runSource, "-o",
                    runObject,
                ],
                what: "compiling the model for \(variant.mcpu)")
            objects.append(runObject)
            variants.append((variant.mcpu, "kiln_run\(suffix)", variant.features))
        }
        // Metadata and the ABI entry points run before any variant is chosen: baseline flags only.
        let baseline = ["--target=\(target.triple)", "-O2", "-fPIC", "-std=gnu11", "-I", kernels]
        let (runtimeObject, runtimeHit) = try await cachedObject(
            source: "\(kernels)/runtime.c", flags: baseline, version: version)
        if runtimeHit { hits += 1 } else { misses += 1 }
        let metaSource = "\(directory)/model_meta.c"
        try model.metaSource(variants: variants).write(toFile: metaSource, atomically: true, encoding: .utf8)
        try await run(
            baseline + ["-c", metaSource, "-o", "\(directory)/model_meta.o"], what: "compiling the model metadata")
        let library = "\(directory)/model.so"
        try await run(
            [
                "--target=\(target.triple)", "-shared", "-fuse-ld=lld", "-o", library, "\(directory)/model_meta.o",
                runtimeObject,
            ]
                + objects + ["-lm"],
            what: "linking the shared object")
        return Report(library: library, variants: variants, kernelCacheHits: hits, kernelCacheMisses: misses)
    }

    func variantFlags(_ variant: CPUVariant, target: CompileTarget) -> [String] {
        ["--target=\(target.triple)", "-march=\(variant.mcpu)", "-O3", "-fPIC", "-std=gnu11", "-fno-math-errno"]
            + variant.features.map { "-m\($0)" }
    }

    /// The kernel library's objects for these flags, from the cache or freshly compiled into it.
    func kernelLibrary(flags: [String], version: String, kernels: String) async throws -> ([String], Bool) {
        var hasher = SHA256()
        for file in Self.kernelFiles + ["kiln_kernels.h"] {
            hasher.update(data: try Data(contentsOf: URL(fileURLWithPath: "\(kernels)/\(file)")))
        }
        hasher.update(data: Data((flags + [version]).joined(separator: "\u{0}").utf8))
        let digest = hasher.finalize().map { String(format: "%02x", $0) }.joined()
        let directory = "\(cacheDirectory)/kernels-\(digest.prefix(24))"
        let objects = Self.kernelFiles.map { "\(directory)/\($0.replacingOccurrences(of: ".c", with: ".o"))" }
        if objects.allSatisfy({ FileManager.default.fileExists(atPath: $0) }) { return (objects, true) }
        let staging = "\(cacheDirectory)/.staging-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: staging, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: staging) }
        try await run(
            flags + ["-I", kernels, "-c"] + Self.kernelFiles.map { "\(kernels)/\($0)" },
            what: "compiling the kernel library", in: staging)
        // Publish atomically: a concurrent build either sees all objects or compiles its own.
        if !FileManager.default.fileExists(atPath: directory) {
            try? FileManager.default.moveItem(atPath: staging, toPath: directory)
        }
        return (objects, false)
    }

    func cachedObject(source: String, flags: [String], version: String) async throws -> (String, Bool) {
        var hasher = SHA256()
        hasher.update(data: try Data(contentsOf: URL(fileURLWithPath: source)))
        for header in ["kiln.h", "kiln_model_info.h"] {
            hasher.update(data: try Data(contentsOf: Self.kernelDirectory.appendingPathComponent(header)))
        }
        hasher.update(data: Data((flags + [version]).joined(separator: "\u{0}").utf8))
        let digest = hasher.finalize().map { String(format: "%02x", $0) }.joined()
        let object = "\(cacheDirectory)/runtime-\(digest.prefix(24)).o"
        if FileManager.default.fileExists(atPath: object) { return (object, true) }
        try FileManager.default.createDirectory(atPath: cacheDirectory, withIntermediateDirectories: true)
        let staging = object + ".\(UUID().uuidString)"
        try await run(flags + ["-c", source, "-o", staging], what: "compiling the artifact runtime")
        try? FileManager.default.moveItem(atPath: staging, toPath: object)
        try? FileManager.default.removeItem(atPath: staging)
        return (object, false)
    }

    func clangVersion() async throws -> String {
        try await run(["--version"], what: "asking clang its version")
    }

    /// Runs clang; a cancelled task kills it.
    @discardableResult
    func run(_ arguments: [String], what: String, in directory: String? = nil) async throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: clang.hasPrefix("/") ? clang : "/usr/bin/env")
        process.arguments = clang.hasPrefix("/") ? arguments : [clang] + arguments
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        let collected = OutputCollector(output.fileHandleForReading)
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
                process.terminationHandler = { _ in continuation.resume() }
                do {
                    try process.run()
                } catch {
                    process.terminationHandler = nil
                    continuation.resume(throwing: KilnError.server(.build, "cannot start clang (\(clang)): \(error)"))
                }
            }
        } onCancel: {
            // Foundation starts the child in a process group of its own: kill the whole group, so the
            // compiler and linker processes clang started die too (and close the output pipe).
            let pid = process.processIdentifier
            if pid > 0 { kill(-pid, SIGKILL) }
        }
        let text = collected.finish()
        try Task.checkCancellation()
        guard process.terminationStatus == 0 else {
            let tail = text.split(separator: "\n").filter { $0.contains("error") }.prefix(3).joined(separator: " | ")
            throw KilnError.server(.build, "clang failed \(what): \(tail.isEmpty ? String(text.suffix(400)) : tail)")
        }
        return text
    }
}

/// Reads a pipe to its end on a background thread so a chatty clang never blocks.
final class OutputCollector: @unchecked Sendable {
    private let handle: FileHandle
    private var data = Data()
    private let done = DispatchSemaphore(value: 0)

    init(_ handle: FileHandle) {
        self.handle = handle
        DispatchQueue.global().async {
            self.data = handle.readDataToEndOfFile()
            self.done.signal()
        }
    }

    func finish() -> String {
        done.wait()
        return String(decoding: data, as: UTF8.self)
    }
}
