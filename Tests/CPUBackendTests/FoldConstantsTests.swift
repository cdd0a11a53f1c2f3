import Foundation
import Runtime
import TestSupport
import Testing

/// fold-constants' evaluator against the kernels: each case is one node twice, once on initializers (folded at
/// compile time) and once on graph inputs holding the same values (computed by the compiled code), and the two
/// outputs must agree.
@Suite("fold-constants against the kernels")
struct FoldConstantsTests {
    /// One node's data inputs (name suffix, element type, shape, values as Doubles) and the constant inputs
    /// both copies share (axes, indices, shapes), with its output's type and shape.
    struct Case {
        var op: String
        var attributes: [(String, AttrSpec)] = []
        var data: [(type: Int32, dims: [Int], values: [Double])]
        var shared: [TensorSpec] = []
        var output: (type: Int32, dims: [Int])
    }

    static func wave(_ count: Int, _ scale: Double = 1, offset: Double = 0) -> [Double] {
        (0..<count).map { Double(Float(sin(Double($0) * 1.7 + 0.3) * scale + offset)) }
    }

    static let cases: [Case] = {
        let f = ElemType.float
        let i64 = ElemType.int64
        var cases = [
            Case(op: "Add", data: [(f, [2, 3, 4], wave(24)), (f, [3, 1], wave(3))], output: (f, [2, 3, 4])),
            Case(op: "Sub", data: [(f, [4], wave(4)), (f, [2, 4], wave(8))], output: (f, [2, 4])),
            Case(op: "Mul", data: [(f, [2, 3], wave(6)), (f, [], [3.5])], output: (f, [2, 3])),
            Case(op: "Div", data: [(f, [6], wave(6)), (f, [6], wave(6, offset: 2))], output: (f, [6])),
            Case(
                op: "Div", data: [(i64, [6], [7, -7, 7, -7, 0, 5]), (i64, [6], [2, 2, -2, -2, 3, 0])],
                output: (i64, [6])),
            Case(op: "Pow", data: [(f, [5], wave(5, offset: 2)), (f, [5], wave(5))], output: (f, [5])),
            Case(op: "Max", data: [(f, [4], wave(4)), (f, [4], wave(4, 2))], output: (f, [4])),
            Case(op: "Min", data: [(f, [4], wave(4)), (f, [1], [0.1])], output: (f, [4])),
            Case(
                op: "Sum", data: [(f, [3], wave(3)), (f, [3], wave(3, 2)), (f, [1], [1.25])], output: (f, [3])),
            Case(op: "Less", data: [(f, [5], wave(5)), (f, [5], wave(5, 0.5))], output: (ElemType.bool, [5])),
            Case(
                op: "Equal", data: [(i64, [4], [1, 2, 3, 4]), (i64, [4], [1, 0, 3, 0])], output: (ElemType.bool, [4])),
            Case(
                op: "Cast", attributes: [("to", .int(7))], data: [(f, [6], [1.5, -1.5, 2.99, -2.99, 0, 100.25])],
                output: (i64, [6])),
            Case(
                op: "Cast", attributes: [("to", .int(1))], data: [(i64, [3], [-3, 0, 1_099_511_627_776])],
                output: (f, [3])),
            Case(
                op: "Cast", attributes: [("to", .int(9))], data: [(f, [3], [0, -0.5, 2])], output: (ElemType.bool, [3])),
            Case(
                op: "Transpose", attributes: [("perm", .ints([2, 0, 1]))], data: [(f, [2, 3, 4], wave(24))],
                output: (f, [4, 2, 3])),
            Case(
                op: "Slice", data: [(f, [4, 5], wave(20))],
                shared: [
                    .int64("starts", [2], [-1, 4]), .int64("ends", [2], [0, -6]), .int64("axes", [2], [0, 1]),
                    .int64("steps", [2], [-1, -2]),
                ], output: (f, [3, 3])),
            Case(
                op: "Concat", attributes: [("axis", .int(-1))],
                data: [(f, [2, 2], wave(4)), (f, [2, 3], wave(6))],
                output: (f, [2, 5])),
            Case(
                op: "Gather", attributes: [("axis", .int(1))], data: [(f, [2, 4], wave(8))],
                shared: [.int64("indices", [3], [-1, 0, 2])], output: (f, [2, 3])),
            Case(
                op: "Expand", data: [(f, [3, 1], wave(3))], shared: [.int64("shape", [3], [2, 1, 4])],
                output: (f, [2, 3, 4])),
            Case(
                op: "Where", data: [(ElemType.bool, [4], [1, 0, 0, 1]), (f, [4], wave(4)), (f, [1], [9])],
                output: (f, [4])),
        ]
        for op in ["Neg", "Abs", "Sqrt", "Reciprocal", "Exp", "Log", "Relu", "Sigmoid", "Tanh", "Floor", "Ceil", "Erf"]
        {
            let positive = ["Sqrt", "Log"].contains(op)
            cases.append(Case(op: op, data: [(f, [7], wave(7, 3, offset: positive ? 3.5 : 0))], output: (f, [7])))
        }
        return cases
    }()

    /// Each case as a folded node (inputs `c<case>_<slot>`, initializers; then an Identity to the output
    /// `f<case>`) and a computed one (`g<case>_<slot>`, graph inputs; output `r<case>`).
    static func model() -> ModelSpec {
        var nodes: [NodeSpec] = []
        var inputs: [ValueSpec] = []
        var outputs: [ValueSpec] = []
        var initializers: [TensorSpec] = []
        for (index, test) in cases.enumerated() {
            var shared: [String] = []
            for var tensor in test.shared {
                tensor.name = "s\(index)_\(tensor.name)"
                shared.append(tensor.name)
                initializers.append(tensor)
            }
            let names = test.data.indices.map { "\(index)_\($0)" }
            for (name, data) in zip(names, test.data) {
                initializers.append(TensorSpec(name: "c" + name, elemType: data.type, dims: data.dims, raw: raw(data)))
                inputs.append(ValueSpec("g" + name, data.type, data.dims.map { .value($0) }))
            }
            // A node that writes a graph output is never folded: the folded copy goes out through an Identity.
            nodes.append(
                NodeSpec(test.op, names.map { "c" + $0 } + shared, ["v\(index)"], name: "v\(index)", test.attributes))
            nodes.append(NodeSpec("Identity", ["v\(index)"], ["f\(index)"], name: "f\(index)"))
            nodes.append(
                NodeSpec(test.op, names.map { "g" + $0 } + shared, ["r\(index)"], name: "r\(index)", test.attributes))
            for prefix in ["f", "r"] {
                outputs.append(ValueSpec("\(prefix)\(index)", test.output.type, test.output.dims.map { .value($0) }))
            }
        }
        return ModelSpec(
            graph: GraphSpec(nodes: nodes, inputs: inputs, outputs: outputs, initializers: initializers))
    }

    /// The bytes of values of an ONNX element type (float, int64, bool).
    static func raw(_ data: (type: Int32, dims: [Int], values: [Double])) -> [UInt8] {
        switch data.type {
        case ElemType.float: return data.values.map { Float($0) }.withUnsafeBytes { Array($0) }
        case ElemType.int64: return data.values.map { Int64($0) }.withUnsafeBytes { Array($0) }
        default: return data.values.map { $0 != 0 ? 1 : 0 }
        }
    }

    @Test("every op fold-constants evaluates gives what the compiled node computes")
    func agrees() async throws {
        let directory = try TemporaryDirectory()
        let result = try await compile(Self.model(), target: native(layout: "NHWC"), in: directory)
        #expect(result.manifest.passesApplied.first == "fold-constants: \(Self.cases.count)")
        let feeds = Self.cases.flatMap { $0.data.map { Data(Self.raw($0)) } }
        let outputs = try OpenedArtifact(path: try #require(result.artifactPath)).loaded.run(feeds)
        for (index, test) in Self.cases.enumerated() {
            let (folded, computed) = (outputs[2 * index], outputs[2 * index + 1])
            if test.output.type == ElemType.float {
                let (a, b) = (floats(folded), floats(computed))
                let close = zip(a, b).allSatisfy { abs($0 - $1) <= 1e-6 * max(1, abs($1)) || ($0.isNaN && $1.isNaN) }
                #expect(close && a.count == b.count, "\(test.op) #\(index): folded \(a), computed \(b)")
            } else {
                #expect(
                    folded == computed, "\(test.op) #\(index): folded \(Array(folded)), computed \(Array(computed))")
            }
        }
    }
}
