import ArgumentParser
import CPUBackend
import Diagnostics
import Foundation
import Frontends
import ModelIR
import Pipeline
import Runtime

/// `kiln conformance`: compiles and runs the ONNX backend node tests
/// (`onnx/backend/test/data/node/*`), comparing with their expected outputs.
struct Conformance: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the ONNX backend node tests as a conformance suite.", shouldDisplay: false)

    @Argument(help: "The node test directory (onnx/backend/test/data/node).")
    var directory: String

    @Option(help: "Only tests whose name starts with this.")
    var filter: String = "test_"

    @Option(help: "Tests compiled at once.")
    var jobs: Int = 2

    @Option(help: "Write a Markdown table of results here.")
    var report: String?

    @Option(help: "A previous report: fail only when a test it lists as passing no longer passes.")
    var baseline: String?

    func run() async throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasPrefix(filter) }
            .sorted()
        var results: [ConformanceResult] = []
        try await withThrowingTaskGroup(of: ConformanceResult.self) { group in
            var next = 0
            func start() {
                guard next < names.count else { return }
                let name = names[next]
                let path = directory + "/" + name
                next += 1
                group.addTask { await ConformanceCase(name: name, path: path).run() }
            }
            for _ in 0..<max(1, jobs) { start() }
            while let result = try await group.next() {
                results.append(result)
                print(
                    "\(result.outcome.rawValue.uppercased()) \(result.name)\(result.reason.isEmpty ? "" : ": " + result.reason)"
                )
                fflush(nil)
                start()
            }
        }
        results.sort { $0.name < $1.name }
        let passed = results.filter { $0.outcome == .passed }.count
        let failed = results.filter { $0.outcome == .failed }.count
        let unsupported = results.filter { $0.outcome == .unsupported }.count
        if let report {
            try ConformanceReport.markdown(results).write(toFile: report, atomically: true, encoding: .utf8)
        }
        var regressions: [String] = []
        if let baseline, let text = try? String(contentsOfFile: baseline, encoding: .utf8) {
            let previouslyPassing = Set(
                text.split(separator: "\n").filter { $0.hasPrefix("| pass | ") }.map {
                    String($0.dropFirst("| pass | ".count).prefix { $0 != " " })
                })
            regressions = results.filter { previouslyPassing.contains($0.name) && $0.outcome != .passed }.map(\.name)
            for name in regressions { print("REGRESSION \(name)") }
        }
        print("conformance: \(passed) passed, \(failed) failed, \(unsupported) unsupported (of \(results.count))")
        if !regressions.isEmpty || (baseline == nil && failed > 0) { throw ExitCode.failure }
    }
}

struct ConformanceResult: Sendable {
    enum Outcome: String, Sendable {
        case passed = "pass"
        case failed = "fail"
        case unsupported
    }

    var name: String
    var ops: [String]
    var outcome: Outcome
    var reason: String
}

/// One node test: compile for this machine, run on the test inputs, compare.
struct ConformanceCase {
    var name: String
    var path: String

    func run() async -> ConformanceResult {
        var ops: [String] = []
        do {
            let data = path + "/test_data_set_0"
            let files = (try? FileManager.default.contentsOfDirectory(atPath: data)) ?? []
            func tensors(_ prefix: String) throws -> [Constant] {
                try files.filter { $0.hasPrefix(prefix) && $0.hasSuffix(".pb") }
                    .sorted {
                        Int($0.dropFirst(prefix.count).dropLast(3)) ?? 0 < Int($1.dropFirst(prefix.count).dropLast(3))
                            ?? 0
                    }
                    .map { try ONNXTensorFile.read(path: data + "/" + $0) }
            }
            // Sequence and optional test data are not TensorProtos: such models are refused at check anyway.
            let inputs = try? tensors("input_")
            let output = FileManager.default.temporaryDirectory.path + "/kiln-conformance-\(UUID().uuidString)"
            defer { try? FileManager.default.removeItem(atPath: output) }
            let environment = try PipelineEnvironment.fromProcess()
            let target = TargetRequest.platform(
                os: "LINUX", arch: "X86_64", accelerator: nil, compilerOptions: #"{"mcpu": "native"}"#)
            func compile(_ config: String?) async throws -> Compilation {
                try await Pipeline(environment: environment).compile(
                    PipelineRequest(modelURI: path + "/model.onnx", framework: .onnx, dataInputConfig: config),
                    target: target,
                    outputURI: output)
            }
            let compilation: Compilation
            var bound: [String] = []
            do {
                do {
                    // The test models mostly declare static inputs; give shapes only when they do not.
                    compilation = try await compile(nil)
                } catch let failure as PipelineFailure where failure.error.category == .dataInputConfig {
                    guard let inputs else { throw failure }
                    compilation = try await compile(
                        "["
                            + inputs.map { "[" + $0.shape.map(String.init).joined(separator: ",") + "]" }.joined(
                                separator: ",") + "]")
                } catch let failure as PipelineFailure
                    where failure.failureReason.contains("computed at run time")
                    || failure.failureReason.contains("cannot infer a static shape")
                {
                    // Shape-determining inputs (axes, pads, sizes, ...) fed from test data: fix the small
                    // ones at compile time with DataInputConfig's {"value": ...}, and say so in the result.
                    guard let inputs, let (config, names) = try Self.bindingConfig(path + "/model.onnx", inputs) else {
                        throw failure
                    }
                    compilation = try await compile(config)
                    bound = names
                }
            } catch let failure as PipelineFailure {
                let error = failure.error
                let unsupported: Set<KilnError.Category> = [
                    .operatorNotImplemented, .operatorAttributeNotImplemented, .unsupportedDataType, .modelCheck,
                ]
                let outcome: ConformanceResult.Outcome =
                    error.party == .client && unsupported.contains(error.category) ? .unsupported : .failed
                return ConformanceResult(name: name, ops: ops, outcome: outcome, reason: failure.failureReason)
            }
            ops = compilation.manifest.opCountsBefore.keys.sorted()
            guard let inputs else {
                return ConformanceResult(
                    name: name, ops: ops, outcome: .failed, reason: "the test inputs are not tensors")
            }
            let expected = try tensors("output_")
            let artifact = try OpenedArtifact(path: compilation.artifactPath ?? compilation.artifactURI)
            let manifest = artifact.loaded.manifest
            let fed = bound.isEmpty ? inputs : zip(inputsNames(path), inputs).filter { !bound.contains($0.0) }.map(\.1)
            guard fed.count == manifest.inputs.count else {
                return ConformanceResult(
                    name: name, ops: ops, outcome: .failed, reason: "input count differs from the test data")
            }
            for (tensor, constant) in zip(manifest.inputs, fed) where tensor.dtype != constant.dataType.name {
                return ConformanceResult(
                    name: name, ops: ops, outcome: .failed,
                    reason: "input \(tensor.name) is \(tensor.dtype), test data \(constant.dataType.name)")
            }
            let results = try artifact.loaded.run(fed.map { Data($0.storage.bytes) })
            guard results.count == expected.count else {
                return ConformanceResult(name: name, ops: ops, outcome: .failed, reason: "output count differs")
            }
            var note = bound.isEmpty ? "" : "with \(bound.joined(separator: ", ")) fixed at compile time"
            for (index, (actual, reference)) in zip(results, expected).enumerated() {
                if Self.wrappingReference.contains(name), let saturated = Self.saturatedElements(actual, reference) {
                    note =
                        "\(saturated) element(s) saturate where the test data wraps around (ONNX Runtime saturates too)"
                    continue
                }
                if let problem = Self.compare(actual, reference, manifest.outputs[index]) {
                    return ConformanceResult(
                        name: name, ops: ops, outcome: .failed, reason: "output \(index): \(problem)")
                }
            }
            return ConformanceResult(name: name, ops: ops, outcome: .passed, reason: note)
        } catch let error as KilnError {
            return ConformanceResult(name: name, ops: ops, outcome: .failed, reason: error.failureReason)
        } catch {
            return ConformanceResult(name: name, ops: ops, outcome: .failed, reason: "\(error)")
        }
    }

    /// The model's graph input names in order (initializers excluded).
    func inputsNames(_ path: String) -> [String] {
        guard
            let parsed = try? ONNXFrontend.parse(
                modelPath: path + "/model.onnx", rootDirectory: path, displayName: "model.onnx")
        else { return [] }
        return parsed.model.graph.inputs.map { parsed.model.graph[$0].name }
    }

    /// A DataInputConfig giving every later input of at most 64 elements (and a first input that is a
    /// 1-D int64 shape or an integer scalar size) its value, and the other inputs their shapes where the model leaves them open.
    static func bindingConfig(_ model: String, _ inputs: [Constant]) throws -> (String, [String])? {
        let directory = (model as NSString).deletingLastPathComponent
        let parsed = try ONNXFrontend.parse(modelPath: model, rootDirectory: directory, displayName: "model.onnx")
        let names = parsed.model.graph.inputs.map { parsed.model.graph[$0].name }
        guard names.count == inputs.count, !names.isEmpty else { return nil }
        var members: [String] = []
        var bound: [String] = []
        for (index, (name, constant)) in zip(names, inputs).enumerated() {
            let key =
                "\"" + name.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
                + "\""
            let shapeLike =
                index > 0 || (constant.dataType == .int64 && constant.shape.count == 1)
                || (constant.dataType.isInteger && constant.shape.isEmpty)
            if shapeLike, constant.elementCount <= 64, let values = constant.doubles() {
                func nested(_ shape: ArraySlice<Int>, _ offset: inout Int) -> String {
                    guard let first = shape.first else {
                        defer { offset += 1 }
                        let value = values[offset]
                        return value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
                    }
                    return "[" + (0..<first).map { _ in nested(shape.dropFirst(), &offset) }.joined(separator: ",")
                        + "]"
                }
                var offset = 0
                members.append("\(key): {\"value\": \(nested(constant.shape[...], &offset))}")
                bound.append(name)
            } else if parsed.model.graph[parsed.model.graph.inputs[index]].type?.staticShape == nil {
                // Static inputs need no shape (and zero-size ones could not be given one).
                members.append("\(key): [\(constant.shape.map(String.init).joined(separator: ","))]")
            }
        }
        return bound.isEmpty ? nil : ("{" + members.joined(separator: ", ") + "}", bound)
    }

    /// Tests whose expected int8 output wraps on overflow (onnx 1.17's reference QLinearMatMul casts
    /// without saturating) where the spec and ONNX Runtime saturate.
    static let wrappingReference: Set<String> = [
        "test_qlinearmatmul_2D_int8_float16", "test_qlinearmatmul_2D_int8_float32",
        "test_qlinearmatmul_3D_int8_float16", "test_qlinearmatmul_3D_int8_float32",
    ]

    /// For an int8 output: how many elements differ from the reference, if every one that does is
    /// saturated (-128 or 127); nil when some other element differs or nothing does.
    static func saturatedElements(_ actual: Data, _ reference: Constant) -> Int? {
        guard reference.dataType == .int8, actual.count == reference.storage.count else { return nil }
        let want = Array(reference.storage.bytes)
        var count = 0
        for (a, b) in zip(actual, want) where a != b {
            guard Int8(bitPattern: a) == .min || Int8(bitPattern: a) == .max else { return nil }
            count += 1
        }
        return count > 0 ? count : nil
    }

    /// nil when equal within rtol 1e-4 / atol 1e-5 (floats) or exactly (integers, bools).
    static func compare(_ actual: Data, _ reference: Constant, _ tensor: CPUBackendTensor) -> String? {
        guard tensor.shape == reference.shape else {
            return "shape \(tensor.shape), expected \(reference.shape)"
        }
        guard tensor.dtype == reference.dataType.name else {
            return "type \(tensor.dtype), expected \(reference.dataType.name)"
        }
        let expectedBytes = Data(reference.storage.bytes)
        guard actual.count == expectedBytes.count else { return "size differs" }
        switch reference.dataType {
        case .float32, .float64:
            let got =
                Constant(
                    dataType: reference.dataType, shape: reference.shape,
                    storage: actual.withUnsafeBytes { TensorStorage(copying: $0) }
                ).doubles() ?? []
            let want = reference.doubles() ?? []
            for (index, (a, b)) in zip(got, want).enumerated() {
                if a.isNaN && b.isNaN { continue }
                if a == b { continue }
                if abs(a - b) > 1e-5 + 1e-4 * abs(b) || a.isNaN != b.isNaN {
                    return "element \(index) is \(a), expected \(b)"
                }
            }
            return nil
        default:
            return actual == expectedBytes ? nil : "values differ"
        }
    }
}

typealias CPUBackendTensor = CPUBackend.TensorDescription

/// CONFORMANCE.md: a line per test, and totals per op.
enum ConformanceReport {
    static func markdown(_ results: [ConformanceResult]) -> String {
        let passed = results.filter { $0.outcome == .passed }.count
        let failed = results.filter { $0.outcome == .failed }.count
        let unsupported = results.filter { $0.outcome == .unsupported }.count
        var lines = [
            "# ONNX backend node tests", "",
            "Generated by `scripts/conformance` (onnx 1.17.0 test data, compiled for this machine with",
            "TargetPlatform LINUX/X86_64 and mcpu native; floats compared with rtol 1e-4, atol 1e-5).", "",
            "**\(passed) passed, \(failed) failed, \(unsupported) unsupported** of \(results.count).", "",
            "| outcome | test | reason |", "| --- | --- | --- |",
        ]
        for result in results {
            let reason = result.reason.replacingOccurrences(of: "|", with: "\\|").prefix(200)
            lines.append("| \(result.outcome.rawValue) | \(result.name) | \(reason) |")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
