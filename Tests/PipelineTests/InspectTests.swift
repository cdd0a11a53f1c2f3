import Archive
import Diagnostics
import Foundation
import Frontends
import TestSupport
import Testing

@testable import Pipeline

/// A pipeline with its own KILN_HOME in a temporary directory.
struct Harness {
    let directory: TemporaryDirectory
    let pipeline: Pipeline

    init(limits: ExtractionLimits = .standard) throws {
        directory = try TemporaryDirectory()
        pipeline = Pipeline(
            environment: PipelineEnvironment(
                home: .init(path: directory.path + "/home"), limits: limits, workingDirectory: directory.path))
    }

    func inspect(_ model: String, config: String? = nil) throws -> Inspection {
        try pipeline.inspect(PipelineRequest(modelURI: model, framework: .onnx, dataInputConfig: config))
    }

    func failure(_ model: String, config: String? = nil) -> PipelineFailure? {
        do {
            _ = try inspect(model, config: config)
            return nil
        } catch let failure as PipelineFailure {
            return failure
        } catch {
            Issue.record("unexpected error \(error)")
            return nil
        }
    }

    /// Work dirs left behind under KILN_HOME (there must be none).
    var leftoverWorkDirs: [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: directory.path + "/home/work")) ?? []
    }
}

@Suite("kiln inspect: fetch -> unpack -> parse -> check")
struct InspectTests {
    @Test(
        "inspects each bundled sample model",
        arguments: [
            ("models/digits-cnn/model.tar.gz", #"{"image": [1,1,8,8]}"#, [1, 10]),
            ("models/digits-mlp/model.tar.gz", nil, [1, 10]),
        ])
    func samples(path: String, config: String?, output: [Int]) throws {
        let harness = try Harness()
        let inspection = try harness.inspect(repositoryRoot + "/" + path, config: config)
        let graph = inspection.checked.model.graph
        #expect(graph[graph.outputs[0]].type?.staticShape == output)
        #expect(inspection.records.map(\.stage) == [.fetch, .unpack, .parse, .check])
        #expect(inspection.records.allSatisfy { $0.status == .completed && $0.end >= $0.start })
        #expect(harness.leftoverWorkDirs.isEmpty)
    }

    @Test("accepts a bare .onnx file and a plain tar")
    func bareFiles() throws {
        let harness = try Harness()
        let model = try harness.directory.write("relu.onnx", reluModel().bytes)
        #expect(try harness.inspect(model, config: "[[2,4]]").modelFile == "relu.onnx")
        let tar = MemorySink()
        let writer = TarWriter(tar)
        try writer.addFile("m.onnx", bytes: reluModel().bytes)
        try writer.finish()
        let tarPath = try harness.directory.write("m.tar", tar.bytes)
        #expect(try harness.inspect(tarPath, config: "[[2,4]]").archiveFormat == .tar)
    }

    @Test("reads s3:// from the local object store under KILN_HOME")
    func localObjectStore() throws {
        let harness = try Harness()
        try harness.directory.tarGz("home/objects/models/relu/model.tar.gz", ["model.onnx": reluModel().bytes])
        let inspection = try harness.inspect("s3://models/relu/model.tar.gz", config: "[[1,4]]")
        #expect(inspection.modelFile == "model.onnx")
    }

    @Test("finds the model anywhere in the tree and ignores dotfiles such as ._model.onnx")
    func locatesModel() throws {
        let harness = try Harness()
        let archive = try harness.directory.tarGz(
            "m.tar.gz", ["deep/dir/model.onnx": reluModel().bytes, "deep/dir/._model.onnx": [0, 1], "README": [1]])
        #expect(try harness.inspect(archive, config: "[[1,4]]").modelFile == "deep/dir/model.onnx")
    }

    @Test(
        "fails at the right stage with a one-line reason",
        arguments: [
            ("two models", "unpack-two", Stage.parse, "holds 2 *.onnx files ('a.onnx', 'b/c.onnx')"),
            ("no model", "unpack-none", .parse, "no *.onnx file in m.tar.gz (it holds 1 file(s): 'weights.bin')"),
            ("missing file", "missing", .fetch, "does not exist"),
            ("not an archive", "text", .unpack, "is neither a tar.gz archive nor a *.onnx model file"),
            ("corrupt gzip", "corrupt-gzip", .unpack, "Please confirm the model is a tar.gz file"),
            ("path traversal", "traversal", .unpack, "'..' components are not allowed"),
            ("corrupt protobuf", "bad-protobuf", .parse, "is not a valid ONNX model"),
            ("bad shapes", "bad-config", .check, "ClientError: DataInputConfig:"),
        ])
    func failures(label: String, kind: String, stage: Stage, reason: String) throws {
        let harness = try Harness()
        let path: String
        switch kind {
        case "unpack-two": path = try harness.directory.tarGz("m.tar.gz", ["a.onnx": [1], "b/c.onnx": [2]])
        case "unpack-none": path = try harness.directory.tarGz("m.tar.gz", ["weights.bin": [1]])
        case "missing": path = harness.directory.path + "/absent.tar.gz"
        case "text": path = try harness.directory.write("notes.txt", Array("hello".utf8))
        case "corrupt-gzip":
            var bytes = Array(
                try Data(contentsOf: URL(fileURLWithPath: repositoryRoot + "/models/digits-cnn/model.tar.gz")))
            bytes.removeLast(40)
            path = try harness.directory.write("m.tar.gz", bytes)
        case "traversal":
            let sink = MemorySink()
            let gzip = try GzipWriter(sink)
            let writer = TarWriter(gzip)
            try writer.addFile("../escape.onnx", bytes: [1])
            try writer.finish()
            try gzip.finish()
            path = try harness.directory.write("m.tar.gz", sink.bytes)
        case "bad-protobuf": path = try harness.directory.tarGz("m.tar.gz", ["model.onnx": [0xFF, 0xFF, 0xFF, 0x01]])
        default: path = try harness.directory.tarGz("m.tar.gz", ["model.onnx": reluModel().bytes])
        }
        let failure = try #require(harness.failure(path, config: kind == "bad-config" ? "[[1,5]]" : nil))
        #expect(failure.records.last?.stage == stage, "\(label)")
        #expect(failure.records.last?.status == .failed)
        #expect(failure.failureReason.contains(reason), "\(label): \(failure.failureReason)")
        #expect(failure.failureReason.hasPrefix("ClientError: "))
        #expect(!failure.failureReason.contains("\n"))
        #expect(harness.leftoverWorkDirs.isEmpty)
        #expect(!FileManager.default.fileExists(atPath: harness.directory.path + "/escape.onnx"))
    }

    @Test("stops a gzip bomb at the configured limit")
    func bomb() throws {
        let harness = try Harness(limits: ExtractionLimits(maximumTotalBytes: 4 << 20, maximumEntries: 10))
        let path = try harness.directory.tarGz("bomb.tar.gz", ["zeros.bin": [UInt8](repeating: 0, count: 32 << 20)])
        let failure = try #require(harness.failure(path))
        #expect(failure.records.last?.stage == .unpack)
        #expect(failure.failureReason.contains("limit"), "\(failure.failureReason)")
    }

    @Test("keeps failure reasons within 1024 characters on one line")
    func reasonFormat() {
        let error = KilnError.client(.modelCheck, String(repeating: "x\n", count: 2000))
        #expect(error.failureReason.count == 1024)
        #expect(!error.failureReason.contains("\n"))
    }
}
