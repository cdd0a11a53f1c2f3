import Archive
import Artifact
import CPUBackend
import Diagnostics
import Foundation
import ModelIR

/// A compiled model loaded into this process through its C ABI (`kiln.h`):
/// the host `kiln run` and `kiln bench` use, and an example for any FFI.
public final class LoadedArtifact: ArtifactExecutor, @unchecked Sendable {
    // The handle is used from one thread at a time (the ABI's rule); callers serialise.
    public let manifest: ArtifactManifest
    public let directory: String
    public let variant: String
    public var emulation: String? { nil }
    private let library: UnsafeMutableRawPointer
    private let model: OpaquePointer
    private let runFunction:
        @convention(c) (OpaquePointer?, UnsafePointer<UnsafeRawPointer?>?, UnsafePointer<UnsafeMutableRawPointer?>?) ->
            Int32
    private let destroyFunction: @convention(c) (OpaquePointer?) -> Void
    private let lastError: @convention(c) () -> UnsafePointer<CChar>?

    /// Loads an unpacked artifact directory (model.so, weights.bin, manifest.json).
    public convenience init(directory: String, threads: Int = 1) throws {
        try self.init(directory: directory, manifest: try Self.manifest(in: directory), threads: threads)
    }

    /// The manifest of the unpacked artifact in `directory`.
    public static func manifest(in directory: String) throws -> ArtifactManifest {
        do {
            let manifestData = try Data(contentsOf: URL(fileURLWithPath: "\(directory)/manifest.json"))
            return try JSONDecoder().decode(ArtifactManifest.self, from: manifestData)
        } catch {
            throw KilnError.client(
                .inputConfiguration, "\(directory) is not a Kiln artifact (no readable manifest.json)")
        }
    }

    /// Whether an artifact built for `triple` loads into this process.
    public static func runsNatively(triple: String) -> Bool {
        #if arch(x86_64) && os(Linux)
            return triple.hasPrefix("x86_64-") && triple.hasSuffix("-linux-gnu")
        #elseif arch(arm64) && os(Linux)
            return triple.hasPrefix("aarch64-") && triple.hasSuffix("-linux-gnu")
        #else
            return false
        #endif
    }

    public init(directory: String, manifest: ArtifactManifest, threads: Int = 1) throws {
        self.directory = directory
        self.manifest = manifest
        let library = manifest.libraryFile
        guard let handle = dlopen("\(directory)/\(library)", RTLD_NOW | RTLD_LOCAL) else {
            let reason = dlerror().map { String(cString: $0) } ?? "unknown error"
            throw KilnError.client(.targetDevice, "cannot load \(library) on this machine: \(reason)")
        }
        self.library = handle
        func symbol<T>(_ name: String, _: T.Type) throws -> T {
            guard let pointer = dlsym(handle, name) else {
                throw KilnError.client(
                    .inputConfiguration, "model.so does not export \(name); it is not a Kiln artifact")
            }
            return unsafeBitCast(pointer, to: T.self)
        }
        typealias Create = @convention(c) (UnsafePointer<CChar>?, Int32) -> OpaquePointer?
        typealias Variant = @convention(c) (OpaquePointer?) -> UnsafePointer<CChar>?
        let create = try symbol("kiln_create", Create.self)
        lastError = try symbol("kiln_last_error", (@convention(c) () -> UnsafePointer<CChar>?).self)
        runFunction = try symbol(
            "kiln_run",
            (@convention(c) (
                OpaquePointer?, UnsafePointer<UnsafeRawPointer?>?, UnsafePointer<UnsafeMutableRawPointer?>?
            ) -> Int32).self)
        destroyFunction = try symbol("kiln_destroy", (@convention(c) (OpaquePointer?) -> Void).self)
        let variantName = try symbol("kiln_variant", Variant.self)
        guard let created = create("\(directory)/weights.bin", Int32(threads)) else {
            let reason = lastError().map { String(cString: $0) } ?? "unknown error"
            dlclose(handle)
            throw KilnError.client(.targetDevice, "cannot run this artifact here: \(reason)")
        }
        model = created
        variant = variantName(created).map { String(cString: $0) } ?? "?"
    }

    deinit {
        destroyFunction(model)
        dlclose(library)
    }

    /// Runs the model. `inputs` must match the manifest's inputs in order, each
    /// holding exactly the tensor's bytes; returns one buffer per output.
    public func run(_ inputs: [Data]) throws -> [Data] {
        guard inputs.count == manifest.inputs.count else {
            throw KilnError.client(
                .dataInputConfig, "the model takes \(manifest.inputs.count) inputs, got \(inputs.count)")
        }
        return try withBuffers(inputs) { inputPointers, outputPointers in
            try run(inputs: inputPointers, outputs: outputPointers)
            return zip(outputPointers, manifest.outputs).map { Data(bytes: $0.0, count: Self.bytes($0.1)) }
        }
    }

    /// Copies `inputs` into 64-byte aligned buffers, allocates the outputs, and hands both to `body`.
    private func withBuffers<T>(
        _ inputs: [Data], _ body: ([UnsafeRawPointer], [UnsafeMutableRawPointer]) throws -> T
    ) rethrows -> T {
        let inputBuffers = inputs.map { data -> UnsafeMutableRawBufferPointer in
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(data.count, 1), alignment: 64)
            buffer.copyBytes(from: data)
            return buffer
        }
        let outputBuffers = manifest.outputs.map {
            UnsafeMutableRawBufferPointer.allocate(byteCount: max(Self.bytes($0), 1), alignment: 64)
        }
        defer {
            inputBuffers.forEach { $0.deallocate() }
            outputBuffers.forEach { $0.deallocate() }
        }
        return try body(inputBuffers.map { UnsafeRawPointer($0.baseAddress!) }, outputBuffers.map { $0.baseAddress! })
    }

    /// Runs at least `warmup` times and for at least `seconds`, untimed.
    private func warmUp(_ inputs: [UnsafeRawPointer], _ outputs: [UnsafeMutableRawPointer], runs: Int, seconds: Double)
        throws
    {
        let start = DispatchTime.now().uptimeNanoseconds
        var done = 0
        while done < runs || Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 < seconds {
            try run(inputs: inputs, outputs: outputs)
            done += 1
        }
    }

    public func time(_ inputs: [Data], warmup: Int, warmupSeconds: Double, iterations: Int) throws -> [Double] {
        try withBuffers(inputs) { inputPointers, outputPointers in
            try warmUp(inputPointers, outputPointers, runs: warmup, seconds: warmupSeconds)
            var times: [Double] = []
            for _ in 0..<iterations {
                let start = DispatchTime.now().uptimeNanoseconds
                try run(inputs: inputPointers, outputs: outputPointers)
                times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
            }
            return times
        }
    }

    public func profile(_ inputs: [Data], warmup: Int, warmupSeconds: Double, iterations: Int) throws
        -> [ProfileStep]
    {
        typealias Count = @convention(c) (OpaquePointer?) -> Int32
        typealias Label = @convention(c) (OpaquePointer?, Int32) -> UnsafePointer<CChar>?
        typealias Profile = @convention(c) (OpaquePointer?, UnsafeMutablePointer<UInt64>?) -> Int32
        guard let countSymbol = dlsym(library, "kiln_node_count"), let labelSymbol = dlsym(library, "kiln_node_label"),
            let profileSymbol = dlsym(library, "kiln_profile")
        else {
            throw KilnError.client(
                .inputConfiguration, "this artifact predates profiling (no kiln_profile); compile it again")
        }
        let count = Int(unsafeBitCast(countSymbol, to: Count.self)(model))
        let label = unsafeBitCast(labelSymbol, to: Label.self)
        let setProfile = unsafeBitCast(profileSymbol, to: Profile.self)
        var sums = [UInt64](repeating: 0, count: max(count, 1))
        try withBuffers(inputs) { inputPointers, outputPointers in
            try warmUp(inputPointers, outputPointers, runs: warmup, seconds: warmupSeconds)
            try sums.withUnsafeMutableBufferPointer { buffer in
                guard setProfile(model, buffer.baseAddress) == 0 else {
                    throw KilnError.client(
                        .targetDevice, lastError().map { String(cString: $0) } ?? "this artifact cannot profile")
                }
                defer { _ = setProfile(model, nil) }
                for _ in 0..<iterations { try run(inputs: inputPointers, outputs: outputPointers) }
            }
        }
        return (0..<count).map { index in
            ProfileStep(
                label: label(model, Int32(index)).map { String(cString: $0) } ?? "?",
                milliseconds: Double(sums[index]) / 1e6 / Double(max(iterations, 1)))
        }
    }

    /// Runs on caller-owned buffers (no copies): what `time` measures.
    public func run(inputs: [UnsafeRawPointer], outputs: [UnsafeMutableRawPointer]) throws {
        let inputPointers: [UnsafeRawPointer?] = inputs
        let outputPointers: [UnsafeMutableRawPointer?] = outputs
        let status = inputPointers.withUnsafeBufferPointer { inputArray in
            outputPointers.withUnsafeBufferPointer { outputArray in
                runFunction(model, inputArray.baseAddress, outputArray.baseAddress)
            }
        }
        guard status == 0 else {
            throw KilnError.server(.internal, "the artifact failed: \(lastError().map { String(cString: $0) } ?? "")")
        }
    }

    public static func bytes(_ tensor: TensorDescription) -> Int {
        (elementCount(tensor.shape) ?? 0) * (tensor.dataType?.byteSize ?? 1)
    }
}
