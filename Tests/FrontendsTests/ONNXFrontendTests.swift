import Diagnostics
import ModelIR
import TestSupport
import Testing

@testable import Frontends

/// Parses and checks `model` written as model.onnx (plus `extra` files) in a fresh directory.
func checkModel(_ model: ModelSpec, config: String? = nil, extra: [String: [UInt8]] = [:]) throws -> CheckedModel {
    try checkBytes(model.bytes, config: config, extra: extra)
}

func checkBytes(_ bytes: [UInt8], config: String? = nil, extra: [String: [UInt8]] = [:]) throws -> CheckedModel {
    let directory = try TemporaryDirectory()
    let path = try directory.write("archive/model.onnx", bytes)
    for (name, data) in extra { try directory.write("archive/\(name)", data) }
    let parsed = try ONNXFrontend.parse(
        modelPath: path, rootDirectory: directory.path + "/archive", displayName: "model.onnx")
    return try ONNXFrontend.check(parsed, dataInputConfig: try config.map(DataInputConfig.parse))
}

func failure(_ body: () throws -> Any) -> KilnError? {
    do {
        _ = try body()
        return nil
    } catch let error as KilnError {
        return error
    } catch {
        return KilnError.server(.internal, "unexpected \(error)")
    }
}

func outputShape(_ checked: CheckedModel, _ index: Int = 0) -> [Int]? {
    checked.model.graph[checked.model.graph.outputs[index]].type?.staticShape
}

@Suite("ONNX frontend: parse and check")
struct ONNXFrontendTests {
    @Test("binds a symbolic batch dim and infers every shape")
    func bindsAndInfers() throws {
        let checked = try checkModel(reluModel(), config: #"{"x": [3,4]}"#)
        #expect(checked.inputs == [ResolvedInput(name: "x", dataType: .float32, shape: [3, 4])])
        #expect(outputShape(checked) == [3, 4])
        #expect(checked.checkedByONNX)
        #expect(checked.shapeInference.nodesInferred == 2)
    }

    @Test("keeps initializer bytes borrowed, not copied, and reads typed fields")
    func constants() throws {
        var model = reluModel()
        model.graph.initializers = [.floatField("b", [4], [1, 2, 3, 4])]
        let checked = try checkModel(model, config: "[[1,4]]")
        let constant = try #require(checked.model.graph.initializers.values.first)
        #expect(constant.doubles() == [1, 2, 3, 4])
        let raw = try checkModel(reluModel(), config: "[[1,4]]")
        #expect(raw.model.graph.initializers.values.first?.doubles() == [1, -2, 3, -4])
    }

    @Test("converts an old opset up to the library's")
    func convertsOpset() throws {
        let checked = try checkModel(reluModel(opset: 9, irVersion: 4), config: "[[2,4]]")
        #expect(checked.originalOpset == 9)
        #expect(checked.model.opset == 17)
        #expect(checked.notes.contains("converted from opset 9 to opset 17"))
    }

    @Test("resolves shape arithmetic: Shape -> Gather -> Concat -> Reshape")
    func shapeArithmetic() throws {
        let graph = GraphSpec(
            nodes: [
                NodeSpec("Shape", ["x"], ["s"]),
                NodeSpec("Gather", ["s", "zero"], ["n"], [("axis", .int(0))]),
                NodeSpec("Unsqueeze", ["n", "axes"], ["n1"]),
                NodeSpec("Concat", ["n1", "minus1"], ["target"], [("axis", .int(0))]),
                NodeSpec("Reshape", ["x", "target"], ["y"]),
            ],
            inputs: [ValueSpec("x", ElemType.float, ["batch", 2, 3])],
            outputs: [ValueSpec("y", ElemType.float, ["batch", 6])],
            initializers: [.int64("zero", [], [0]), .int64("axes", [1], [0]), .int64("minus1", [1], [-1])])
        let checked = try checkModel(ModelSpec(graph: graph), config: #"{"x": [5,2,3]}"#)
        #expect(outputShape(checked) == [5, 6])
    }

    @Test("accepts a model newer than libonnx when Kiln's shape rules cover its ops")
    func newerCovered() throws {
        let checked = try checkModel(reluModel(opset: 21, irVersion: 10), config: "[[2,4]]")
        #expect(!checked.checkedByONNX)
        #expect(outputShape(checked) == [2, 4])
        #expect(checked.notes.first?.contains("newer than the bundled ONNX library") == true)
    }

    @Test("rejects a model newer than libonnx when an op has no Kiln shape rule, naming it")
    func newerUncovered() throws {
        let graph = GraphSpec(
            nodes: [NodeSpec("Relu", ["x"], ["r"]), NodeSpec("NonMaxSuppression", ["r", "r"], ["y"])],
            inputs: [ValueSpec("x", ElemType.float, [1, 4])], outputs: [ValueSpec("y", ElemType.int64, nil)])
        let error = failure { try checkModel(ModelSpec(irVersion: 9, opset: 18, graph: graph)) }
        #expect(error?.category == .modelCheck)
        #expect(
            error?.message.contains("does not cover NonMaxSuppression (opset 18)") == true,
            "\(String(describing: error))")
    }

    @Test("rejects bytes that are not an ONNX protobuf")
    func corruptProtobuf() throws {
        var bytes = reluModel().bytes
        bytes.removeLast(7)
        let truncated = failure { try checkBytes(bytes) }
        #expect(
            truncated?.failureReason.hasPrefix("ClientError: InputConfiguration: model.onnx is not a valid ONNX model")
                == true)
        let garbage = failure { try checkBytes(Array("this is not a protobuf at all".utf8)) }
        #expect(garbage?.category == .inputConfiguration)
    }

    @Test("reports the ONNX checker's complaint")
    func checkerFailure() throws {
        let graph = GraphSpec(
            nodes: [NodeSpec("NoSuchOp", ["x"], ["y"])], inputs: [ValueSpec("x", ElemType.float, [1])],
            outputs: [ValueSpec("y", ElemType.float, [1])])
        let error = failure { try checkModel(ModelSpec(graph: graph)) }
        #expect(error?.failureReason.hasPrefix("ClientError: ModelCheck: the ONNX checker rejects the model: ") == true)
        #expect(error?.message.contains("NoSuchOp") == true)
    }

    @Test("reports ONNX shape inference failures such as shapes that do not broadcast")
    func inferenceFailure() throws {
        let error = failure { try checkModel(reluModel(inputDims: ["N", "C"]), config: #"{"x": [2,5]}"#) }
        #expect(error?.message.hasPrefix("ONNX shape inference fails") == true, "\(String(describing: error))")
        #expect(error?.category == .modelCheck, "\(String(describing: error))")
    }

    @Test("rejects a dangling input and a cycle")
    func dangling() throws {
        let graph = GraphSpec(
            nodes: [NodeSpec("Relu", ["missing"], ["y"], name: "r")], inputs: [ValueSpec("x", ElemType.float, [1])],
            outputs: [ValueSpec("y", ElemType.float, [1])])
        let error = failure { try checkModel(ModelSpec(graph: graph)) }
        #expect(error?.message.contains("input 'missing' of node #0 'r' (Relu) is not a graph input") == true)
        let cycle = GraphSpec(
            nodes: [NodeSpec("Relu", ["b"], ["a"]), NodeSpec("Relu", ["a"], ["b"])],
            inputs: [ValueSpec("x", ElemType.float, [1])], outputs: [ValueSpec("b", ElemType.float, [1])])
        #expect(failure { try checkModel(ModelSpec(graph: cycle)) }?.category == .modelCheck)
    }

    @Test("rejects a value produced twice")
    func producedTwice() throws {
        let graph = GraphSpec(
            nodes: [NodeSpec("Relu", ["x"], ["y"]), NodeSpec("Neg", ["x"], ["y"])],
            inputs: [ValueSpec("x", ElemType.float, [1])], outputs: [ValueSpec("y", ElemType.float, [1])])
        #expect(failure { try checkModel(ModelSpec(graph: graph)) }?.message.contains("produced twice") == true)
    }

    @Test("rejects an initializer whose bytes do not match its declared shape")
    func lyingTensor() throws {
        var model = reluModel()
        model.graph.initializers = [TensorSpec(name: "b", dims: [4], raw: [0, 0, 0, 0])]
        let error = failure { try checkModel(model, config: "[[1,4]]") }
        #expect(error?.message == "tensor 'b' declares shape [4] (4 float32 elements) but holds 4 bytes")
    }

    @Test("rejects a huge declared shape without allocating it")
    func hugeShape() throws {
        var model = reluModel()
        model.graph.initializers = [TensorSpec(name: "b", dims: [1 << 40, 1 << 40], raw: [])]
        #expect(
            failure { try checkModel(model, config: "[[1,4]]") }?.message.contains("invalid or overflowing shape")
                == true)
    }

    @Test("reads external data inside the archive")
    func externalInside() throws {
        var model = reluModel()
        model.graph.initializers = [.external("b", [4], location: "weights.bin", offset: 4, length: 16)]
        let values: [Float] = [9, 1, 2, 3, 4]
        let checked = try checkModel(
            model, config: "[[1,4]]", extra: ["weights.bin": values.withUnsafeBytes { Array($0) }])
        #expect(checked.model.graph.initializers.values.first?.doubles() == [1, 2, 3, 4])
    }

    @Test(
        "refuses external data outside the archive or past the end of its file",
        arguments: [
            ("../outside.bin", nil as Int?, "not a file inside the model archive"),
            ("/etc/passwd", nil, "absolute path"),
            ("weights.bin", 32, "which has only 16"),
            ("missing.bin", nil, "not a file inside the model archive"),
        ])
    func externalOutside(location: String, length: Int?, reason: String) throws {
        var model = reluModel()
        model.graph.initializers = [.external("b", [4], location: location, length: length)]
        let directory = try TemporaryDirectory()
        try directory.write("outside.bin", [UInt8](repeating: 0, count: 16))
        try directory.write("archive/weights.bin", [UInt8](repeating: 0, count: 16))
        let path = try directory.write("archive/model.onnx", model.bytes)
        let error = failure {
            try ONNXFrontend.parse(
                modelPath: path, rootDirectory: directory.path + "/archive", displayName: "model.onnx")
        }
        #expect(error?.message.contains(reason) == true, "\(String(describing: error))")
    }

    @Test("rejects names that are not valid UTF-8 instead of guessing")
    func invalidUTF8() throws {
        var bytes = reluModel().bytes
        // Replace the name "relu" of the Relu node with bytes that are not UTF-8.
        let relu = Array("relu".utf8)
        if let index = (0..<(bytes.count - 4)).last(where: { Array(bytes[$0..<$0 + 4]) == relu }) {
            bytes.replaceSubrange(index..<index + 4, with: [0xFF, 0xFE, 0xFD, 0xFC])
        }
        let model = try checkBytes(bytes, config: "[[1,4]]")
        // The node name is display-only, so it is repaired; wiring names must be valid.
        #expect(model.model.graph.nodes.count == 2)
        var wiring = reluModel().bytes
        let sum = Array("sum".utf8)
        for index in 0..<(wiring.count - 3) where Array(wiring[index..<index + 3]) == sum {
            wiring.replaceSubrange(index..<index + 3, with: [0xC3, 0x28, 0x41])
        }
        #expect(failure { try checkBytes(wiring, config: "[[1,4]]") }?.message.contains("not valid UTF-8") == true)
    }

    @Test("names the node when a shape cannot be known at compile time")
    func dataDependentShape() throws {
        let graph = GraphSpec(
            nodes: [NodeSpec("NonZero", ["x"], ["nz"], name: "nonzero")], inputs: [ValueSpec("x", ElemType.float, [4])],
            outputs: [ValueSpec("nz", ElemType.int64, [1, "count"])])
        let error = failure { try checkModel(ModelSpec(graph: graph)) }
        #expect(
            error?.message.contains(
                "node #0 'nonzero' (NonZero): the output shape of NonZero depends on the values of its input") == true,
            "\(String(describing: error))")
    }
}
