import Diagnostics
import ModelIR
import TestSupport
import Testing

@testable import Frontends

@Suite("DataInputConfig: parsing every accepted form")
struct DataInputConfigParsingTests {
    @Test("reads a JSON object of name to shape")
    func object() throws {
        let config = try DataInputConfig.parse(#"{"data": [1,3,224,224], "mask": [1,10]}"#)
        #expect(config.form == .named([.init("data", [1, 3, 224, 224]), .init("mask", [1, 10])]))
        #expect(config.notes.isEmpty)
    }

    @Test("reads a list of shapes in graph-input order")
    func list() throws {
        #expect(try DataInputConfig.parse("[[1,3,224,224],[1,10]]").form == .ordered([[1, 3, 224, 224], [1, 10]]))
    }

    @Test("reads one flat shape as the shape of the only input")
    func flat() throws {
        #expect(try DataInputConfig.parse("[1, 64]").form == .ordered([[1, 64]]))
    }

    @Test("accepts Python-style single quotes and says how it read them")
    func singleQuotes() throws {
        let config = try DataInputConfig.parse("{'data': [1,3,224,224]}")
        #expect(config.form == .named([.init("data", [1, 3, 224, 224])]))
        #expect(
            config.notes == [
                #"DataInputConfig used Python-style single quotes; read as the JSON {"data": [1,3,224,224]}"#
            ])
    }

    @Test(
        "rejects bad text with a DataInputConfig reason",
        arguments: [
            ("data: [1,3]", "is not valid JSON"),
            (#"{"data": [1,3"#, "is not valid JSON"),
            (#"{"data": [1,0,224]}"#, "has dim 0; every dim must be a positive integer"),
            (#"{"data": [1,-1,224]}"#, "has dim -1"),
            (#"{"data": [1,3.5]}"#, "dims must be integers"),
            (#"{"data": "1,3"}"#, "must be a list of integers"),
            ("{}", "is empty"),
            ("[]", "is empty"),
            ("42", "must be a JSON object"),
            (#"{"a": [1], "a": [2]}"#, "is given twice"),
        ])
    func rejects(text: String, reason: String) throws {
        let error = #expect(throws: KilnError.self) { try DataInputConfig.parse(text) }
        #expect(error?.category == .dataInputConfig)
        #expect(error?.failureReason.contains(reason) == true, "\(String(describing: error))")
        #expect(error?.failureReason.hasPrefix("ClientError: DataInputConfig: ") == true)
    }
}

@Suite("DataInputConfig: binding to a model's inputs")
struct DataInputConfigBindingTests {
    let inputs = [
        DeclaredInput(
            name: "image", type: TensorType(.float32, [.symbol("N"), .value(3), .symbol("H"), .symbol("W")])),
        DeclaredInput(name: "scale", type: TensorType(.float32, [.symbol("N"), .value(1)])),
    ]

    func resolve(_ text: String?) throws -> [ResolvedInput] {
        try DataInputConfig.resolve(text.map { try DataInputConfig.parse($0) }, inputs: inputs, constants: [])
    }

    func reason(_ text: String?) -> String {
        do {
            _ = try resolve(text)
            return "no error"
        } catch let error as KilnError {
            return error.failureReason
        } catch {
            return "\(error)"
        }
    }

    @Test("binds symbolic dims from names and from order")
    func binds() throws {
        let expected = [
            ResolvedInput(name: "image", dataType: .float32, shape: [2, 3, 32, 32]),
            ResolvedInput(name: "scale", dataType: .float32, shape: [2, 1]),
        ]
        #expect(try resolve(#"{"scale": [2,1], "image": [2,3,32,32]}"#) == expected)
        #expect(try resolve("[[2,3,32,32],[2,1]]") == expected)
    }

    @Test("may be omitted when every input is static")
    func omitted() throws {
        let fixed = [DeclaredInput(name: "x", type: TensorType(.float32, static: [1, 64]))]
        #expect(
            try DataInputConfig.resolve(nil, inputs: fixed, constants: [])
                == [ResolvedInput(name: "x", dataType: .float32, shape: [1, 64])])
    }

    @Test("names an unknown input and lists the real ones")
    func unknown() {
        #expect(
            reason(#"{"img": [1,3,8,8], "scale": [1,1]}"#)
                == "ClientError: DataInputConfig: input 'img' is not an input of the model; its inputs are 'image' [N,3,H,W], 'scale' [N,1]"
        )
    }

    @Test("names a missing input with what the model declares")
    func missing() {
        #expect(
            reason(#"{"image": [1,3,8,8]}"#)
                == #"ClientError: DataInputConfig: no shape given for input 'scale', which the model declares as float32[N,1]; add "scale": [1,1] to DataInputConfig"#
        )
        #expect(reason(nil).contains("no shape given for input 'image'"))
    }

    @Test("names a rank mismatch")
    func rank() {
        #expect(
            reason(#"{"image": [1,3,8], "scale": [1,1]}"#)
                == "ClientError: DataInputConfig: input 'image' has rank 4 [N,3,H,W] in the model but DataInputConfig gives rank 3 [1,3,8]"
        )
    }

    @Test("names a fixed dim that disagrees")
    func fixedDim() {
        #expect(
            reason(#"{"image": [1,4,8,8], "scale": [1,1]}"#)
                == "ClientError: DataInputConfig: input 'image' has dim 1 fixed to 3 in the model [N,3,H,W] but DataInputConfig gives 4 [1,4,8,8]"
        )
    }

    @Test("names a symbol bound to two sizes")
    func inconsistentSymbol() {
        #expect(
            reason(#"{"image": [1,3,8,8], "scale": [2,1]}"#)
                == "ClientError: DataInputConfig: dim 'N' is 1 for input 'image' but 2 for input 'scale'; the model says they are the same size"
        )
    }

    @Test("names a wrong number of shapes in list form")
    func count() {
        #expect(reason("[[1,3,8,8]]").contains("lists 1 shape(s) but the model has 2 input(s)"))
    }

    @Test("refuses to set the shape of a constant")
    func constant() {
        let error = #expect(throws: KilnError.self) {
            try DataInputConfig.resolve(
                try DataInputConfig.parse(#"{"w": [3]}"#),
                inputs: [DeclaredInput(name: "w", type: TensorType(.float32, static: [3]))],
                constants: ["w"])
        }
        #expect(error?.message.contains("is a constant of the model") == true)
    }
}

@Suite("DataInputConfig: inputs fixed to a value at compile time")
struct ConstantBindingTests {
    @Test("reads {\"value\": ...} with its nesting and binds it as a constant that drives shapes")
    func binds() throws {
        let config = try DataInputConfig.parse(#"{"x": [2,3,4], "axes": {"value": [1]}}"#)
        #expect(config.constants == [.init(name: "axes", values: [1], shape: [1])])
        let graph = GraphSpec(
            nodes: [NodeSpec("ReduceMean", ["x", "axes"], ["y"])],
            inputs: [ValueSpec("x", ElemType.float, [2, 3, 4]), ValueSpec("axes", ElemType.int64, [1])],
            outputs: [ValueSpec("y", ElemType.float, [2, 1, 4])])
        let checked = try checkModel(
            ModelSpec(opset: 18, graph: graph), config: #"{"x": [2,3,4], "axes": {"value": [1]}}"#)
        #expect(checked.inputs.map(\.name) == ["x"])
        #expect(outputShape(checked) == [2, 1, 4])
        #expect(checked.notes.contains("input 'axes' is fixed at compile time to the value DataInputConfig gives"))
    }

    @Test("binds a value in the libonnx path too, where shape inference uses it")
    func bindsForLibONNX() throws {
        let graph = GraphSpec(
            nodes: [NodeSpec("Reshape", ["x", "shape"], ["y"])],
            inputs: [ValueSpec("x", ElemType.float, [2, 3]), ValueSpec("shape", ElemType.int64, [2])],
            outputs: [ValueSpec("y", ElemType.float, nil)])
        var model = ModelSpec(graph: graph)
        model.graph.outputs = [ValueSpec("y", ElemType.float, ["a", "b"])]
        let checked = try checkModel(model, config: #"{"shape": {"value": [3, 2]}}"#)
        #expect(outputShape(checked) == [3, 2])
    }

    @Test(
        "refuses values that do not fit",
        arguments: [
            (#"{"axes": {"value": [1, 2]}, "x": [2,3,4]}"#, "has shape [2]; the model declares [1]"),
            (#"{"axes": {"value": [[1]]}, "x": [2,3,4]}"#, "has shape [1,1]; the model declares [1]"),
            (#"{"axes": {"value": "one"}, "x": [2,3,4]}"#, "use numbers"),
            (#"{"axes": {"shape": [1]}, "x": [2,3,4]}"#, "write {\"value\": [numbers]}"),
            (#"{"nope": {"value": [1]}, "x": [2,3,4]}"#, "is not an input of the model"),
        ])
    func refuses(text: String, reason: String) throws {
        let graph = GraphSpec(
            nodes: [NodeSpec("ReduceMean", ["x", "axes"], ["y"])],
            inputs: [ValueSpec("x", ElemType.float, [2, 3, 4]), ValueSpec("axes", ElemType.int64, [1])],
            outputs: [ValueSpec("y", ElemType.float, [2, 1, 4])])
        let error = failure { try checkModel(ModelSpec(opset: 18, graph: graph), config: text) }
        #expect(error?.category == .dataInputConfig)
        #expect(error?.message.contains(reason) == true, "\(String(describing: error))")
    }
}
