import Archive
import Diagnostics
import Foundation
import Frontends
import ModelIR
import ObjectStore

/// What to compile: the job's InputConfig, as the CLI and the job runner give it.
public struct PipelineRequest: Sendable {
    /// `InputConfig.S3Uri`: s3://, file:// or a path.
    public var modelURI: String
    public var framework: Framework
    /// `InputConfig.DataInputConfig`, nil when not given.
    public var dataInputConfig: String?

    public init(modelURI: String, framework: Framework, dataInputConfig: String? = nil) {
        self.modelURI = modelURI
        self.framework = framework
        self.dataInputConfig = dataInputConfig
    }
}

/// Where a run keeps its files and what it allows.
public struct PipelineEnvironment: Sendable {
    public var home: KilnHome
    public var limits: ExtractionLimits
    /// Relative model paths are taken against this directory.
    public var workingDirectory: String
    /// Fault injection for tests: each listed stage lasts at least this many seconds (cancellable), so a
    /// test can stop a job or run out its time inside any stage. Empty in normal runs.
    public var stageDelays: [Stage: Double] = [:]
    /// Where s3:// URIs live: the local object store under `home` unless the environment configures S3.
    public var objectStore: ObjectStoreChoice

    public init(
        home: KilnHome, limits: ExtractionLimits = .standard, workingDirectory: String,
        objectStore: ObjectStoreChoice? = nil
    ) {
        self.home = home
        self.limits = limits
        self.workingDirectory = workingDirectory
        self.objectStore = objectStore ?? .local(LocalObjectStore(home: home))
    }

    /// `$KILN_HOME`, the current directory, and the extraction limits from
    /// `KILN_MAX_UNPACKED_BYTES` / `KILN_MAX_ARCHIVE_ENTRIES` when set.
    public static func fromProcess() throws -> PipelineEnvironment {
        let variables = ProcessInfo.processInfo.environment
        var limits = ExtractionLimits.standard
        func positive(_ name: String) throws -> Int64? {
            guard let text = variables[name], !text.isEmpty else { return nil }
            guard let value = Int64(text), value > 0 else {
                throw KilnError.client(.inputConfiguration, "\(name)=\(quoted(text)) is not a positive whole number")
            }
            return value
        }
        if let bytes = try positive("KILN_MAX_UNPACKED_BYTES") { limits.maximumTotalBytes = bytes }
        if let entries = try positive("KILN_MAX_ARCHIVE_ENTRIES") { limits.maximumEntries = Int(clamping: entries) }
        let home = KilnHome.fromEnvironment()
        return PipelineEnvironment(
            home: home, limits: limits, workingDirectory: FileManager.default.currentDirectoryPath,
            objectStore: try ObjectStoreChoice.fromEnvironment(home: home, variables))
    }
}

/// The result of running the front half of the pipeline (fetch → check).
public struct Inspection: Sendable {
    /// The model file's path inside the archive, e.g. `resnet/model.onnx`.
    public var modelFile: String
    public var archiveFormat: ArchiveFormat
    public var checked: CheckedModel
    public var records: [StageRecord]
    /// The fetched file's base name (`model.tar.gz`) and SHA-256.
    public var sourceName: String
    public var sourceSHA256: String
}

/// The compilation pipeline, stage by stage:
///
///     fetch → unpack → parse → check → optimize → lower → build → pack → upload
///
/// Each stage takes the previous one's output; `StageRecorder` times it and
/// gives its failure the stage's category. Cancellation (Stop,
/// MaxRuntimeInSeconds) is checked before every stage and inside long ones.
/// This build runs fetch through check; the back half arrives with the CPU backend.
public struct Pipeline: Sendable {
    public var environment: PipelineEnvironment

    public init(environment: PipelineEnvironment) { self.environment = environment }

    /// Runs fetch → check in a fresh work dir under `$KILN_HOME/work`, removed afterwards.
    public func inspect(_ request: PipelineRequest) throws -> Inspection {
        var recorder = StageRecorder(delays: environment.stageDelays)
        let workDirectory: String
        do {
            workDirectory = try makeWorkDirectory(prefix: "inspect")
        } catch {
            throw PipelineFailure(
                records: [],
                error: .server(.internal, "cannot create a work dir under \(environment.home.workDirectory): \(error)"))
        }
        defer { try? FileManager.default.removeItem(atPath: workDirectory) }
        return try frontHalf(request, workDirectory: workDirectory, recorder: &recorder)
    }

    /// fetch → unpack → parse → check into `workDirectory`.
    func frontHalf(_ request: PipelineRequest, workDirectory: String, recorder: inout StageRecorder) throws
        -> Inspection
    {
        let fetcher = ObjectFetcher(store: environment.objectStore)

        // fetch: the model as a local file (local files are read in place).
        let (uri, localPath) = try recorder.run(.fetch) {
            try request.framework.requireFrontend()
            let uri = try ObjectURI(parsing: request.modelURI, workingDirectory: environment.workingDirectory)
            return (uri, try fetcher.localPath(for: uri, downloadDirectory: workDirectory + "/fetched"))
        }

        // unpack: a tar.gz (or tar) into the work dir; a bare model file is used where it is.
        let unpacked = try recorder.run(.unpack) {
            try unpack(localPath, name: uri.baseName, request.framework, into: workDirectory)
        }

        // parse: find the model file and build the IR.
        let (modelFile, parsed) = try recorder.run(.parse) {
            let modelFile = try ModelLocator.locate(
                in: unpacked.files, framework: request.framework, archiveName: uri.baseName)
            let parsed = try ONNXFrontend.parse(
                modelPath: unpacked.root + "/" + modelFile, rootDirectory: unpacked.root, displayName: modelFile)
            return (modelFile, parsed)
        }

        // check: checker, opset conversion, DataInputConfig, shape inference.
        let checked = try recorder.run(.check) {
            let config = try request.dataInputConfig.map(DataInputConfig.parse)
            return try ONNXFrontend.check(parsed, dataInputConfig: config)
        }
        let digest = (try? fileSHA256(localPath)) ?? ""
        return Inspection(
            modelFile: modelFile, archiveFormat: unpacked.format, checked: checked, records: recorder.records,
            sourceName: uri.baseName, sourceSHA256: digest)
    }

    struct Unpacked {
        var root: String
        var files: [String]
        var format: ArchiveFormat
    }

    private func unpack(_ path: String, name: String, _ framework: Framework, into workDirectory: String) throws
        -> Unpacked
    {
        let format = try ArchiveFormat.detect(path: path)
        switch format {
        case .plain:
            guard let suffix = framework.modelFileSuffix, name.lowercased().hasSuffix(suffix) else {
                throw KilnError.client(
                    .inputConfiguration,
                    "\(quoted(name)) is neither a tar.gz archive nor a *\(framework.modelFileSuffix ?? "") model file; "
                        + "Please confirm the model is a tar.gz file")
            }
            let directory = (path as NSString).deletingLastPathComponent
            return Unpacked(
                root: directory.isEmpty ? "." : directory, files: [(path as NSString).lastPathComponent], format: format
            )
        case .tar, .tarGzip:
            let root = workDirectory + "/model"
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: false)
            let summary = try Unpacker.unpack(archive: path, format: format, into: root, limits: environment.limits)
            return Unpacked(root: root, files: summary.files + summary.symlinks, format: format)
        }
    }

    func makeWorkDirectory(prefix: String) throws -> String {
        let parent = environment.home.workDirectory
        try makeDirectories(parent)
        let path = "\(parent)/\(prefix)-\(UUID().uuidString.lowercased())"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
        return path
    }
}
