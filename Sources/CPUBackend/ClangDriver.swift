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

    /// The kernel library's files, the slowest to compile first (each is one clang process, run side by side).
    static let kernelFiles = ["conv_nhwc.c", "conv.c", "gemm.c", "reduce.c", "pool.c", "layout.c", "norm.c"]

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
        var compiles: [Compile] = []
        // Staged kernel objects not published by the end (a failed compile, or an error before) are removed.
        var libraries: [KernelLibrary] = []
        defer { for library in libraries { library.discard() } }
        var hits = 0
        var misses = 0
        let version = try await clangVersion()
        for variant in target.variants {
            let symbolSuffix = variant.mcpu.map { $0.isLetter || $0.isNumber ? $0 : "_" }
            let suffix = "_" + String(symbolSuffix)
            let flags = variantFlags(variant, target: target) + ["-DKK_SUFFIX=\(suffix)"]
            let library = try kernelLibrary(flags: flags, version: version, kernels: kernels)
            if library.compiles.isEmpty { hits += 1 } else { misses += 1 }
            libraries.append(library)
            compiles += library.compiles
            objects += library.objects
            let runSource = "\(directory)/model_run\(suffix).c"
            try model.runSource.write(toFile: runSource, atomically: true, encoding: .utf8)
            let runObject = "\(directory)/model_run\(suffix).o"
            compiles.append(
                Compile(
                    arguments: flags + [
                        "-DKILN_RUN_NAME=kiln_run\(suffix)", "-I", kernels, "-Wno-unused-variable", "-c", runSource,
                        "-o", runObject,
                    ],
                    what: "compiling the model for \(variant.mcpu)"))
            objects.append(runObject)
            variants.append((variant.mcpu, "kiln_run\(suffix)", variant.features))
        }
        // Metadata and the ABI entry points run before any variant is chosen: baseline flags only.
        let baseline = commonFlags(target) + ["-O2", "-I", kernels]
        let runtime = try cachedObject(source: "\(kernels)/runtime.c", flags: baseline, version: version)
        defer { runtime.discard() }
        if let compile = runtime.compile {
            misses += 1
            compiles.append(compile)
        } else {
            hits += 1
        }
        let metaSource = "\(directory)/model_meta.c"
        try model.metaSource(variants: variants).write(toFile: metaSource, atomically: true, encoding: .utf8)
        compiles.append(
            Compile(
                arguments: baseline + ["-c", metaSource, "-o", "\(directory)/model_meta.o"],
                what: "compiling the model metadata"))
        try await runConcurrently(compiles)
        for library in libraries { library.publish() }
        runtime.publish()
        let library = "\(directory)/\(target.libraryName)"
        let systemLibraries = try await systemLibraries(for: target, version: version)
        try await run(
            ["--target=\(target.triple)", "-shared", "-nostdlib", "-fuse-ld=lld", "-o", library]
                + (target.isWindows ? ["-Wl,/noentry", "-Wl,/nodefaultlib"] : [])
                + ["\(directory)/model_meta.o", runtime.object] + objects + systemLibraries,
            what: "linking the shared library")
        return Report(library: library, variants: variants, kernelCacheHits: hits, kernelCacheMisses: misses)
    }

    /// One clang run of a build, and what it does, for the failure reason.
    struct Compile: Sendable {
        var arguments: [String]
        var what: String
    }

    /// Runs `compiles` as concurrent clang processes, one per processor, the first ones first (the kernel
    /// library's largest files lead): a cold build of the kernel library is most of a compile, and one
    /// clang over all of its files would leave every core but one idle. The first failure cancels the rest.
    func runConcurrently(_ compiles: [Compile]) async throws {
        let width = max(1, ProcessInfo.processInfo.activeProcessorCount)
        try await withThrowingTaskGroup(of: Void.self) { group in
            var pending = compiles[...]
            func startNext() {
                guard let compile = pending.popFirst() else { return }
                group.addTask { try await run(compile.arguments, what: compile.what) }
            }
            for _ in 0..<width { startNext() }
            while try await group.next() != nil { startNext() }
        }
    }

    /// Flags every compile for `target` gets. No system headers (`-nostdlibinc`, see kiln_libc.h), so
    /// cross compiling needs no sysroot.
    func commonFlags(_ target: CompileTarget) -> [String] {
        ["--target=\(target.triple)", "-std=gnu11", "-fno-math-errno", "-nostdlibinc"]
            + (target.isWindows ? ["-mno-stack-arg-probe"] : ["-fPIC"])
            // The thread pool's atomics inline, not as calls into libgcc's outline helpers.
            + (target.architecture == .aarch64 ? ["-mno-outline-atomics"] : []) + target.extraFlags
    }

    /// A variant's flags: its CPU, and its L2 cache (`KK_L2_BYTES`) for the kernels' blocking choices.
    func variantFlags(_ variant: CPUVariant, target: CompileTarget) -> [String] {
        let cache = ["-DKK_L2_BYTES=\(target.l2CacheBytes(variant))"]
        switch target.architecture {
        case .x86_64, .i686:
            return commonFlags(target) + ["-march=\(variant.mcpu)", "-O3"] + variant.features.map { "-m\($0)" } + cache
        case .aarch64, .armv7:
            // On Arm the CPU name carries its features (NEON, dot product); they are checked at load time.
            return commonFlags(target) + ["-mcpu=\(variant.mcpu)", "-O3"] + cache
        }
    }

    /// What the shared library links against: nothing but the names of the system libraries whose
    /// functions it calls, resolved when it is loaded. For ELF these are tiny stand-in libraries that
    /// carry only a soname (so the artifact records DT_NEEDED without a sysroot); for Windows, import
    /// libraries made from the lists of functions the runtime and kernels call.
    func systemLibraries(for target: CompileTarget, version: String) async throws -> [String] {
        let names: [String: [String]]
        if target.isWindows {
            let math = [
                "exp", "expm1", "log", "log1p", "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh",
                "asinh", "acosh", "atanh", "erf", "floor", "ceil", "nearbyint", "pow", "fmod", "sqrt", "fabs",
                "fmin", "fmax",
            ]
            let floats = target.architecture == .x86_64 ? math.map { $0 + "f" } : []
            let kernel32 = [
                ("CreateFileA", 28), ("ReadFile", 20), ("CloseHandle", 4), ("GetProcessHeap", 0), ("HeapAlloc", 12),
                ("HeapFree", 12), ("GetModuleHandleExA", 12), ("GetModuleFileNameA", 12),
            ].map {
                // 32-bit Windows: the __stdcall symbol `_Name@N` imports the export `Name`.
                target.architecture == .i686 ? "_\($0.0)@\($0.1) == \($0.0)" : $0.0
            }
            var ntdll = ["memcpy", "memmove", "memset"]
            if target.architecture == .i686 {
                ntdll += ["_alldiv", "_allrem", "_allmul", "_aulldiv", "_aullrem", "_allshl", "_allshr", "_aullshr"]
            }
            // fmaf: QLinearAdd's fused steps on CPUs without FMA instructions.
            names = ["kernel32.dll": kernel32, "ucrtbase.dll": math + floats + ["fmaf"], "ntdll.dll": ntdll]
        } else if target.isAndroid {
            names = ["libc.so": [], "libm.so": [], "libdl.so": []]
        } else {
            // glibc; libgcc_s holds the helpers 32-bit code and half-precision conversions call; the thread
            // pool's pthread functions live in libpthread.so.0 before glibc 2.34 (a stub after).
            names = [
                "libc.so.6": [], "libm.so.6": [], "libdl.so.2": [], "libgcc_s.so.1": [], "libpthread.so.0": [],
            ]
        }
        var hasher = SHA256()
        hasher.update(data: Data((["\(names.sorted { $0.key < $1.key })", target.triple, version]).joined().utf8))
        let digest = hasher.finalize().map { String(format: "%02x", $0) }.joined()
        let directory = "\(cacheDirectory)/system-\(digest.prefix(24))"
        let files = names.keys.sorted().map {
            "\(directory)/" + (target.isWindows ? $0.replacingOccurrences(of: ".dll", with: ".lib") : $0)
        }
        if files.allSatisfy({ FileManager.default.fileExists(atPath: $0) }) { return files }
        let staging = "\(cacheDirectory)/.staging-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: staging, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: staging) }
        let empty = "\(staging)/empty.c"
        if !target.isWindows { try "".write(toFile: empty, atomically: true, encoding: .utf8) }
        for (library, functions) in names.sorted(by: { $0.key < $1.key }) {
            if target.isWindows {
                let definition = "LIBRARY \(library)\nEXPORTS\n" + functions.map { "  \($0)\n" }.joined()
                let defFile = "\(staging)/\(library).def"
                try definition.write(toFile: defFile, atomically: true, encoding: .utf8)
                let machine = target.architecture == .i686 ? "x86" : "x64"
                try await run(
                    [
                        "/lib", "/def:\(defFile)", "/machine:\(machine)",
                        "/out:\(staging)/\(library.replacingOccurrences(of: ".dll", with: ".lib"))",
                    ], what: "making the import library of \(library)", tool: linkTool)
            } else {
                try await run(
                    [
                        "--target=\(target.triple)", "-shared", "-nostdlib", "-fuse-ld=lld", "-Wl,-soname,\(library)",
                        "-o", "\(staging)/\(library)", empty,
                    ], what: "making the stand-in for \(library)")
            }
        }
        // Only the libraries are published: drop the inputs they were made from.
        for input in [empty] + names.keys.map({ "\(staging)/\($0).def" }) {
            try? FileManager.default.removeItem(atPath: input)
        }
        if !FileManager.default.fileExists(atPath: directory) {
            try? FileManager.default.moveItem(atPath: staging, toPath: directory)
        }
        return files
    }

    /// lld-link, beside clang.
    var linkTool: String {
        let beside = URL(fileURLWithPath: clang).deletingLastPathComponent().appendingPathComponent("lld-link").path
        return clang.hasPrefix("/") && FileManager.default.isExecutableFile(atPath: beside) ? beside : "lld-link"
    }

    /// A variant's kernel library: its objects' paths in the cache, and the compiles that make them when the
    /// cache has none (into a staging directory, published whole once they all succeed).
    struct KernelLibrary {
        var objects: [String]
        var compiles: [Compile]
        var staging: String?
        var directory: String

        /// Moves the staged objects into the cache: a concurrent build either sees them all or makes its own.
        func publish() {
            guard let staging else { return }
            if !FileManager.default.fileExists(atPath: directory) {
                try? FileManager.default.moveItem(atPath: staging, toPath: directory)
            }
            discard()
        }

        /// Removes what is left of the staging directory (all of it, when a compile failed).
        func discard() {
            if let staging { try? FileManager.default.removeItem(atPath: staging) }
        }
    }

    /// The kernel library's objects for these flags, from the cache or to be compiled into it, one clang per file.
    func kernelLibrary(flags: [String], version: String, kernels: String) throws -> KernelLibrary {
        var hasher = SHA256()
        for file in Self.kernelFiles + ["kiln_kernels.h", "kiln_libc.h"] {
            hasher.update(data: try Data(contentsOf: URL(fileURLWithPath: "\(kernels)/\(file)")))
        }
        hasher.update(data: Data((flags + [version]).joined(separator: "\u{0}").utf8))
        let digest = hasher.finalize().map { String(format: "%02x", $0) }.joined()
        let directory = "\(cacheDirectory)/kernels-\(digest.prefix(24))"
        let objects = Self.kernelFiles.map { "\(directory)/\(Self.objectName($0))" }
        if objects.allSatisfy({ FileManager.default.fileExists(atPath: $0) }) {
            return KernelLibrary(objects: objects, compiles: [], staging: nil, directory: directory)
        }
        let staging = "\(cacheDirectory)/.staging-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: staging, withIntermediateDirectories: true)
        let compiles = Self.kernelFiles.map { file in
            Compile(
                arguments: flags + [
                    "-I", kernels, "-c", "\(kernels)/\(file)", "-o", "\(staging)/\(Self.objectName(file))",
                ],
                what: "compiling the kernel library (\(file))")
        }
        return KernelLibrary(objects: objects, compiles: compiles, staging: staging, directory: directory)
    }

    static func objectName(_ source: String) -> String { source.replacingOccurrences(of: ".c", with: ".o") }

    /// An object compiled from `source` alone (the artifact runtime), cached by its digest: its path, and the
    /// compile that makes it when the cache has none (into a staging file `publish` moves into place).
    struct CachedObject {
        var object: String
        var compile: Compile?
        var staging: String

        func publish() {
            guard compile != nil else { return }
            try? FileManager.default.moveItem(atPath: staging, toPath: object)
            discard()
        }

        func discard() {
            if compile != nil { try? FileManager.default.removeItem(atPath: staging) }
        }
    }

    func cachedObject(source: String, flags: [String], version: String) throws -> CachedObject {
        var hasher = SHA256()
        hasher.update(data: try Data(contentsOf: URL(fileURLWithPath: source)))
        for header in ["kiln.h", "kiln_model_info.h", "kiln_libc.h"] {
            hasher.update(data: try Data(contentsOf: Self.kernelDirectory.appendingPathComponent(header)))
        }
        hasher.update(data: Data((flags + [version]).joined(separator: "\u{0}").utf8))
        let digest = hasher.finalize().map { String(format: "%02x", $0) }.joined()
        let object = "\(cacheDirectory)/runtime-\(digest.prefix(24)).o"
        let staging = object + ".\(UUID().uuidString)"
        if FileManager.default.fileExists(atPath: object) {
            return CachedObject(object: object, compile: nil, staging: staging)
        }
        try FileManager.default.createDirectory(atPath: cacheDirectory, withIntermediateDirectories: true)
        return CachedObject(
            object: object,
            compile: Compile(arguments: flags + ["-c", source, "-o", staging], what: "compiling the artifact runtime"),
            staging: staging)
    }

    func clangVersion() async throws -> String {
        try await run(["--version"], what: "asking clang its version")
    }

    /// Runs clang; a cancelled task kills it.
    @discardableResult
    func run(_ arguments: [String], what: String, in directory: String? = nil, tool: String? = nil) async throws
        -> String
    {
        let program = tool ?? clang
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program.hasPrefix("/") ? program : "/usr/bin/env")
        process.arguments = program.hasPrefix("/") ? arguments : [program] + arguments
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
                    continuation.resume(throwing: KilnError.server(.build, "cannot start \(program): \(error)"))
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
            throw KilnError.server(
                .build,
                "\(tool == nil ? "clang" : "lld-link") failed \(what): \(tail.isEmpty ? String(text.suffix(400)) : tail)"
            )
        }
        return text
    }
}

/// Reads a pipe to its end on a background thread so a chatty child process never blocks.
public final class OutputCollector: @unchecked Sendable {
    private let handle: FileHandle
    private var data = Data()
    private let done = DispatchSemaphore(value: 0)

    public init(_ handle: FileHandle) {
        self.handle = handle
        DispatchQueue.global().async {
            self.data = handle.readDataToEndOfFile()
            self.done.signal()
        }
    }

    public func finish() -> String {
        done.wait()
        return String(decoding: data, as: UTF8.self)
    }
}
