import Archive
import Artifact
import CPUBackend
import Crypto
import Diagnostics
import Foundation
import Frontends
import ModelIR
import ObjectStore
import Passes
import Targets

/// Which machine to compile for: a TargetDevice, or a TargetPlatform with CompilerOptions.
public enum TargetRequest: Sendable, Equatable {
    case device(String, compilerOptions: String?)
    case platform(os: String, arch: String, accelerator: String?, compilerOptions: String?)

    func resolve() throws -> CompileTarget {
        switch self {
        case .device(let name, let options):
            return try TargetCatalog.target(device: name, compilerOptions: options)
        case .platform(let os, let arch, let accelerator, let options):
            return try TargetCatalog.target(os: os, arch: arch, accelerator: accelerator, compilerOptions: options)
        }
    }
}

/// The outcome of a whole compilation.
public struct Compilation: Sendable {
    public var inspection: Inspection
    public var manifest: ArtifactManifest
    /// Where the artifact was written on this machine (nil when it went to S3) and its URI as the user named
    /// the location.
    public var artifactPath: String?
    public var artifactURI: String
    /// `sha256:<hex>` of the artifact archive.
    public var artifactDigest: String
    public var records: [StageRecord]
    public var kernelCacheHits: Int
}

extension Pipeline {
    /// Runs all nine stages: the model at `request.modelURI` compiled for
    /// `target`, its artifact written under `outputURI` (s3://, file:// or a directory).
    /// `progress` hears of each stage as it ends.
    public func compile(
        _ request: PipelineRequest, target: TargetRequest, outputURI: String,
        progress: (@Sendable (StageRecord) -> Void)? = nil
    ) async throws -> Compilation {
        var recorder = StageRecorder(delays: environment.stageDelays)
        recorder.onRecord = progress
        let workDirectory: String
        do {
            workDirectory = try makeWorkDirectory(prefix: "compile")
        } catch {
            throw PipelineFailure(records: [], error: .server(.internal, "cannot create a work dir: \(error)"))
        }
        defer { try? FileManager.default.removeItem(atPath: workDirectory) }

        // Settle the target and the output location before any work, so a typo fails at once.
        let compileTarget: CompileTarget
        let output: ObjectURI
        do {
            compileTarget = try target.resolve()
            output = try ObjectURI(parsing: outputURI, workingDirectory: environment.workingDirectory)
            if case .https = output {
                throw KilnError.client(
                    .outputConfiguration,
                    "\(outputURI) is an https URI; give the output location as s3:// or a directory")
            }
        } catch let error as KilnError {
            throw PipelineFailure(records: [], error: error)
        }

        let inspection = try frontHalf(request, workDirectory: workDirectory, recorder: &recorder)
        let model = inspection.checked.model

        // optimize: the graph passes (Passes/PassManager.standard, channels-last unless the target's layout
        // is NCHW); what each changed goes into the manifest.
        let passes = PassManager.standard(channelsLast: compileTarget.layout == .nhwc)
        let (optimized, passesApplied) = try recorder.run(.optimize) {
            PassManager.optimize(model, passes: passes, context: PassContext(l2CacheBytes: compileTarget.l2CacheBytes))
        }

        // lower: IR → C over a static memory plan.
        let generated = try recorder.run(.lower) { try CPUCodeGenerator.generate(optimized) }

        // build: clang for each CPU variant, lld into one shared object.
        let buildDirectory = workDirectory + "/build"
        let cache = environment.home.path + "/cache"
        let report = try await recorder.run(.build) {
            try FileManager.default.createDirectory(atPath: buildDirectory, withIntermediateDirectories: true)
            return try await ClangDriver(cacheDirectory: cache).build(
                generated, target: compileTarget, in: buildDirectory)
        }

        // pack: model.so (model.dll), weights.bin, kiln.h, manifest.json → <input>-<target>.tar.gz.
        let name = ArtifactPacker.artifactName(inputBaseName: inspection.sourceName, target: compileTarget.name)
        let archive = workDirectory + "/" + name
        let manifest = try recorder.run(.pack) {
            try generated.writeWeights(to: buildDirectory + "/weights.bin")
            try ClangDriver.header().write(to: URL(fileURLWithPath: buildDirectory + "/kiln.h"))
            let manifest = ArtifactManifest(
                kilnVersion: KilnVersion.current, abiVersion: 1, targetDevice: compileTarget.name,
                triple: compileTarget.triple,
                variants: report.variants.map { ArtifactManifest.Variant(name: $0.name, features: $0.features) },
                inputs: generated.inputs, outputs: generated.outputs, sourceModelSHA256: inspection.sourceSHA256,
                opCountsBefore: model.graph.opHistogram, opCountsAfter: generated.opCounts,
                passesApplied: passesApplied,
                arenaBytes: generated.arenaBytes, weightsBytes: generated.weightsBytes,
                files: ArtifactManifest.fileNames(library: compileTarget.libraryName),
                library: compileTarget.libraryName, cpuOnly: compileTarget.cpuOnlyNote)
            try ArtifactPacker.pack(directory: buildDirectory, manifest: manifest, to: archive)
            return manifest
        }

        // upload: into the output location, whole or not at all.
        let (path, uri) = try recorder.run(.upload) { try upload(archive, name: name, to: output) }
        let digest = "sha256:" + (try fileSHA256(path ?? archive))
        return Compilation(
            inspection: inspection, manifest: manifest, artifactPath: path, artifactURI: uri, artifactDigest: digest,
            records: recorder.records, kernelCacheHits: report.kernelCacheHits)
    }

    /// Puts the artifact at the output location; returns its local path (nil once it went to S3) and its URI.
    private func upload(_ archive: String, name: String, to output: ObjectURI) throws -> (String?, String) {
        let directory: String
        let uri: String
        switch (output, environment.objectStore) {
        case (.file(let path), _):
            directory = path
            uri = (path.hasSuffix("/") ? path : path + "/") + name
        case (.s3(let bucket, let key), .local(let local)):
            let prefix = key.hasSuffix("/") ? String(key.dropLast()) : key
            directory = try local.path(bucket: bucket, key: prefix)
            uri = "s3://\(bucket)/\(prefix)/\(name)"
        case (.s3(let bucket, let key), .s3(let client)):
            let objectKey = (key.hasSuffix("/") ? String(key.dropLast()) : key) + "/" + name
            let uri = "s3://\(bucket)/\(objectKey)"
            do {
                try client.upload(file: archive, bucket: bucket, key: objectKey)
            } catch {
                throw S3Client.reason(error, uri: uri, writing: true)
            }
            return (nil, uri)
        case (.https, _):
            throw KilnError.client(.outputConfiguration, "https output locations are not supported; use s3://")
        }
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw KilnError.client(
                .outputConfiguration, "cannot create the output location \(directory): \(error.localizedDescription)")
        }
        let target = directory + "/" + name
        let staging = directory + "/.\(name).\(UUID().uuidString).partial"
        do {
            try FileManager.default.copyItem(atPath: archive, toPath: staging)
            if FileManager.default.fileExists(atPath: target) { try FileManager.default.removeItem(atPath: target) }
            try FileManager.default.moveItem(atPath: staging, toPath: target)
        } catch {
            try? FileManager.default.removeItem(atPath: staging)
            throw KilnError.client(
                .outputConfiguration, "cannot write the artifact to \(directory): \(error.localizedDescription)")
        }
        return (target, uri)
    }
}

/// The SHA-256 of a file, streamed.
public func fileSHA256(_ path: String) throws -> String {
    guard let handle = FileHandle(forReadingAtPath: path) else {
        throw KilnError.server(.internal, "cannot read \(path)")
    }
    defer { try? handle.close() }
    var hasher = SHA256()
    while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty { hasher.update(data: chunk) }
    return hasher.finalize().map { String(format: "%02x", $0) }.joined()
}
