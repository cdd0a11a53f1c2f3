import Diagnostics
import ModelIR

/// An ONNX model after the parse stage: libonnx holds the protobuf, the IR
/// has the types the model declares.
public struct ParsedModel: @unchecked Sendable {
    // The handle is only mutated by `ONNXFrontend.check`, which consumes this value.
    let handle: ONNXModelHandle
    public var model: Model
    /// The .onnx file, and the unpacked archive it came from.
    public var modelPath: String
    public var rootDirectory: String

    var modelDirectory: String {
        guard let slash = modelPath.lastIndex(of: "/") else { return "." }
        return String(modelPath[..<slash])
    }
}

/// A model after the check stage: every tensor shape is static.
public struct CheckedModel: Sendable {
    public var model: Model
    public var inputs: [ResolvedInput]
    /// The ai.onnx opset the model came with, and the one Kiln compiles at.
    public var originalOpset: Int
    /// What the user should know about how the model was read (conversions, normalisations).
    public var notes: [String]
    public var shapeInference: ShapeInference.Report
    /// True when libonnx's checker and shape inference ran (false for models newer than it).
    public var checkedByONNX: Bool
}

/// The ONNX frontend: parse (protobuf → IR) and check (checker, version
/// conversion, DataInputConfig, shape inference) through libonnx.
public enum ONNXFrontend {
    public static var libraryOpset: Int { ONNXModelHandle.libraryOpset }
    public static var libraryIRVersion: Int { ONNXModelHandle.libraryIRVersion }

    /// Parses the .onnx file at `modelPath`, found inside `rootDirectory`.
    public static func parse(modelPath: String, rootDirectory: String, displayName: String) throws -> ParsedModel {
        let handle = try ONNXModelHandle(parsingFile: modelPath, displayName: displayName)
        var parsed = ParsedModel(
            handle: handle, model: Model(graph: Graph(), irVersion: 0, opsets: [:]), modelPath: modelPath,
            rootDirectory: rootDirectory)
        parsed.model = try importModel(parsed)
        return parsed
    }

    private static func importModel(_ parsed: ParsedModel) throws -> Model {
        var importer = ONNXGraphImporter(
            owner: parsed.handle, rootDirectory: parsed.rootDirectory, modelDirectory: parsed.modelDirectory)
        let graph = try importer.importMainGraph()
        return Model(
            graph: graph, irVersion: parsed.handle.irVersion, opsets: parsed.handle.opsets,
            producer: parsed.handle.producer)
    }

    public static func check(_ parsed: ParsedModel, dataInputConfig: DataInputConfig?) throws -> CheckedModel {
        var parsed = parsed
        let handle = parsed.handle
        var notes = dataInputConfig?.notes ?? []
        let originalOpset = parsed.model.opset
        let mlOpset = parsed.model.opsets["ai.onnx.ml"] ?? 0
        let newer =
            parsed.model.irVersion > libraryIRVersion || originalOpset > libraryOpset
            || mlOpset > ONNXModelHandle.libraryMLOpset
        try rejectNonTensorOps(parsed.model.graph)
        guard parsed.model.irVersion > 0 else {
            throw KilnError.client(.modelCheck, "the model does not set ir_version; it is not a valid ONNX model")
        }

        if newer {
            notes.append(
                "the model (IR \(parsed.model.irVersion), opset \(originalOpset)) is newer than the bundled ONNX library "
                    + "(IR \(libraryIRVersion), opset \(libraryOpset)); Kiln's own checks and shape inference were used"
            )
        } else {
            try handle.check(modelDirectory: parsed.modelDirectory)
            if originalOpset < libraryOpset {
                do {
                    try handle.convertVersion(to: libraryOpset)
                    parsed.model = try importModel(parsed)
                    notes.append("converted from opset \(originalOpset) to opset \(libraryOpset)")
                } catch let error as KilnError {
                    // The converter lacks adapters for some ops; the model stays valid at its own opset.
                    notes.append("kept opset \(originalOpset): \(error.message)")
                }
            }
        }

        let declared = parsed.model.graph.inputs.map {
            DeclaredInput(name: parsed.model.graph[$0].name, type: parsed.model.graph[$0].type)
        }
        var graph = parsed.model.graph
        // Inputs bound to compile-time values become constants, here and in libonnx's copy.
        for binding in dataInputConfig?.constants ?? [] {
            guard let position = graph.inputs.firstIndex(where: { graph[$0].name == binding.name }) else {
                throw KilnError.client(
                    .dataInputConfig, "input \(quoted(binding.name)) given a value is not an input of the model")
            }
            let id = graph.inputs[position]
            let constant = try Self.constant(binding, declared: graph[id].type)
            if !newer, let index = protoInputIndexes(parsed)[binding.name] {
                try handle.bindInputConstant(index: index, constant)
            }
            graph.initializers[id] = constant
            graph[id].type = TensorType(constant.dataType, static: constant.shape)
            graph.inputs.remove(at: position)
            notes.append("input \(quoted(binding.name)) is fixed at compile time to the value DataInputConfig gives")
        }
        let remaining = declared.filter { entry in
            !(dataInputConfig?.constants ?? []).contains { $0.name == entry.name }
        }
        let constants = Set(graph.initializers.keys.map { graph[$0].name })
        let inputs = try DataInputConfig.resolve(dataInputConfig, inputs: remaining, constants: constants)
        for (id, input) in zip(graph.inputs, inputs) {
            graph[id].type = TensorType(input.dataType, static: input.shape)
        }

        if !newer {
            // Tell libonnx the bound shapes, run its inference, and take its types.
            let inputIndex = protoInputIndexes(parsed)
            for input in inputs {
                guard let index = inputIndex[input.name] else { continue }
                try handle.setInputShape(index: index, input.shape)
            }
            try handle.inferShapes()
            let importer = ONNXGraphImporter(
                owner: handle, rootDirectory: parsed.rootDirectory, modelDirectory: parsed.modelDirectory)
            let inferred = importer.inferredTypes()
            for index in graph.values.indices where graph.initializers[ValueID(index)] == nil {
                if !graph.inputs.contains(ValueID(index)), let type = inferred[graph.values[index].name] {
                    graph.values[index].type = type
                }
            }
        } else {
            // Only the inputs and constants are trusted; Kiln infers the rest.
            let trusted = Set(graph.inputs).union(graph.initializers.keys)
            for index in graph.values.indices where !trusted.contains(ValueID(index)) { graph.values[index].type = nil }
        }

        // If, Loop and Scan become a flat graph (guarded branches, unrolled loops) before Kiln's inference.
        notes += try ControlFlowExpansion.expand(
            &graph, opset: parsed.model.opset, originalOpset: originalOpset)
        let inference = ShapeInference(opset: parsed.model.opset, mode: newer ? .authority : .crossCheck)
        var known: [ValueID: KnownInts] = [:]
        let report = try inference.run(&graph, known: &known)
        let folded = foldKnownValues(&graph, known)
        if folded > 0 { notes.append("\(folded) node(s) of shape arithmetic computed at compile time") }
        if !report.uncoveredOps.isEmpty {
            throw KilnError.client(
                .modelCheck,
                "the model (IR \(parsed.model.irVersion), opset \(originalOpset)) is newer than the bundled ONNX library "
                    + "(IR \(libraryIRVersion), opset \(libraryOpset)) and Kiln's own shape inference does not cover "
                    + report.uncoveredOps.joined(separator: ", ")
                    + "; re-export the model at opset \(libraryOpset) or lower")
        }
        try requireStaticShapes(graph)
        var model = parsed.model
        model.graph = graph
        return CheckedModel(
            model: model, inputs: inputs, originalOpset: originalOpset, notes: notes, shapeInference: report,
            checkedByONNX: !newer)
    }

    /// The constant a DataInputConfig value binding stands for, in the input's declared type.
    static func constant(_ binding: DataInputConfig.ConstantBinding, declared: TensorType?) throws -> Constant {
        guard let type = declared?.dataType else {
            throw KilnError.client(
                .dataInputConfig, "input \(quoted(binding.name)) is not a tensor and cannot be given a value")
        }
        let shape = binding.shape ?? declared?.staticShape ?? []
        guard elementCount(shape) == binding.values.count else {
            throw KilnError.client(
                .dataInputConfig,
                "the value of input \(quoted(binding.name)) has \(binding.values.count) elements; its shape \(shapeText(shape)) needs \(elementCount(shape) ?? 0)"
            )
        }
        if let declaredShape = declared?.shape,
            declaredShape.count != shape.count
                || zip(declaredShape, shape).contains(where: { $0.value != nil && $0.value != $1 })
        {
            throw KilnError.client(
                .dataInputConfig,
                "the value of input \(quoted(binding.name)) has shape \(shapeText(shape)); the model declares \(shapeText(declaredShape))"
            )
        }
        let values = binding.values
        switch type {
        case .float32: return Constant(float32: values.map(Float.init), shape: shape)
        case .float64:
            return Constant(
                dataType: .float64, shape: shape, storage: values.withUnsafeBytes { TensorStorage(copying: $0) })
        case .int64: return Constant(.int64, shape: shape, values: values.map { Int64($0) })
        case .int32: return Constant(.int32, shape: shape, values: values.map { Int32(clamping: Int64($0)) })
        case .bool, .uint8: return Constant(type, shape: shape, values: values.map { UInt8(clamping: Int64($0)) })
        case .int8: return Constant(.int8, shape: shape, values: values.map { Int8(clamping: Int64($0)) })
        default:
            throw KilnError.client(
                .dataInputConfig,
                "input \(quoted(binding.name)) is \(type.name); values can be given for float, int and bool inputs")
        }
    }

    /// Graph input positions in the protobuf (which also lists initializers for IR < 4).
    private static func protoInputIndexes(_ parsed: ParsedModel) -> [String: Int] {
        var indexes: [String: Int] = [:]
        let graph = CONNXGraph(parsed.handle)
        for (index, name) in graph.inputNames.enumerated() where indexes[name] == nil { indexes[name] = index }
        return indexes
    }

    /// Nodes whose every output shape inference computed (integer shape arithmetic, including what unrolled
    /// loops feed their bodies) become constants; returns how many.
    static func foldKnownValues(_ graph: inout Graph, _ known: [ValueID: KnownInts]) -> Int {
        var kept: [Node] = []
        for node in graph.nodes {
            let outputs = node.outputs.compactMap { $0 }
            let constants = outputs.map { id in
                known[id].flatMap { values in
                    graph[id].type.flatMap { Constant(integers: values.values, type: $0.dataType, shape: values.shape) }
                }
            }
            guard !outputs.isEmpty, node.guards.isEmpty, node.opType != "Constant", constants.allSatisfy({ $0 != nil })
            else {
                kept.append(node)
                continue
            }
            for (id, constant) in zip(outputs, constants) { graph.initializers[id] = constant }
        }
        defer { graph.nodes = kept }
        return graph.nodes.count - kept.count
    }

    /// Ops whose outputs have no tensor form, refused before libonnx's inference trips over them, saying what
    /// to do instead.
    static func rejectNonTensorOps(_ graph: Graph) throws {
        if graph.opHistogram["ai.onnx.ml::ZipMap"] != nil {
            throw KilnError.client(
                .operatorNotImplemented,
                "ai.onnx.ml::ZipMap produces a sequence of maps, which has no tensor form; export the model without it "
                    + "(skl2onnx: options={id(model): {'zipmap': False}}) to get the class probabilities as a [N, classes] tensor"
            )
        }
    }

    /// After check, every tensor the main graph computes has a static shape.
    static func requireStaticShapes(_ graph: Graph) throws {
        // Ops that neither libonnx nor Kiln knows leave their outputs untyped: name them all as not implemented.
        var unknown: [String] = []
        for node in graph.nodes where !node.domain.isEmpty && node.domain != "ai.onnx" && node.domain != "ai.onnx.ml" {
            let untyped = node.outputs.contains { $0.map { graph[$0].type?.staticShape == nil } ?? false }
            if untyped && !unknown.contains(node.qualifiedOpType) { unknown.append(node.qualifiedOpType) }
        }
        if !unknown.isEmpty {
            throw KilnError.client(
                .operatorNotImplemented,
                "Kiln does not implement \(unknown.joined(separator: ", ")) (no shape rule or schema for them); "
                    + "see the README's operator table for what is supported\(OperatorHints.suffix(for: unknown))")
        }
        for (index, node) in graph.nodes.enumerated() {
            for case let output? in node.outputs {
                let value = graph[output]
                guard let type = value.type, type.staticShape != nil else {
                    throw KilnError.client(
                        .modelCheck,
                        "cannot infer a static shape for \(quoted(value.name)), output of node \(describe(node, index)) "
                            + "(got \(value.type.map(\.description) ?? "no type")); its shape may depend on input data, "
                            + "which Kiln cannot compile, or on an input whose shape DataInputConfig does not fix")
                }
            }
        }
        for output in graph.outputs where graph[output].type?.staticShape == nil {
            throw KilnError.client(
                .modelCheck,
                "graph output \(quoted(graph[output].name)) has no static shape (\(graph[output].type.map(\.description) ?? "no type"))"
            )
        }
    }
}
