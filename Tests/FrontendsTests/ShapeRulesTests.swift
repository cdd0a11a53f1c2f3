import Diagnostics
import TestSupport
import Testing

@testable import Frontends
@testable import ModelIR

/// Runs one node through Kiln's shape rules alone (authority mode), with the given input shapes.
func infer(
    _ op: String, _ shapes: [[Int]], _ attributes: [String: AttributeValue] = [:], opset: Int = 17,
    constants: [Int: [Int]] = [:]
) throws -> [[Int]] {
    var graph = Graph()
    var inputs: [ValueID?] = []
    for (slot, shape) in shapes.enumerated() {
        let type = TensorType(constants[slot] != nil ? .int64 : .float32, static: shape)
        let id = graph.addValue(Value(name: "in\(slot)", type: type))
        if let values = constants[slot] {
            graph.initializers[id] = Constant(.int64, shape: shape, values: values.map(Int64.init))
        }
        inputs.append(id)
    }
    let output = graph.addValue(Value(name: "out", type: nil))
    let second = graph.addValue(Value(name: "out2", type: nil))
    graph.nodes = [Node(name: "n", opType: op, inputs: inputs, outputs: [output, second], attributes: attributes)]
    _ = try ShapeInference(opset: opset, mode: .authority).run(&graph)
    return [graph[output].type?.staticShape ?? [], graph[second].type?.staticShape ?? []]
}

@Suite("Kiln's shape rules")
struct ShapeRulesTests {
    @Test("broadcasts elementwise operands like NumPy")
    func broadcast() throws {
        #expect(try infer("Add", [[2, 1, 4], [3, 1]])[0] == [2, 3, 4])
        #expect(throws: KilnError.self) { try infer("Mul", [[2, 3], [4]]) }
    }

    @Test("computes convolution and pooling windows, including auto_pad and ceil_mode")
    func windows() throws {
        #expect(
            try infer(
                "Conv", [[1, 3, 224, 224], [64, 3, 7, 7]], ["strides": .ints([2, 2]), "pads": .ints([3, 3, 3, 3])])[0]
                == [1, 64, 112, 112])
        #expect(
            try infer(
                "Conv", [[1, 8, 10, 10], [8, 1, 3, 3]],
                ["group": .int(8), "auto_pad": .string(Array("SAME_UPPER".utf8)), "strides": .ints([2, 2])])[0] == [
                    1, 8, 5, 5,
                ])
        #expect(
            try infer("MaxPool", [[1, 1, 5, 5]], ["kernel_shape": .ints([2, 2]), "strides": .ints([2, 2])])[0] == [
                1, 1, 2, 2,
            ])
        #expect(
            try infer(
                "MaxPool", [[1, 1, 5, 5]],
                ["kernel_shape": .ints([2, 2]), "strides": .ints([2, 2]), "ceil_mode": .int(1)])[0] == [1, 1, 3, 3])
        #expect(try infer("GlobalAveragePool", [[2, 5, 7, 7]])[0] == [2, 5, 1, 1])
    }

    @Test("multiplies matrices with batch broadcasting and 1-D promotion")
    func matmul() throws {
        #expect(try infer("MatMul", [[2, 1, 4, 8], [3, 8, 5]])[0] == [2, 3, 4, 5])
        #expect(try infer("MatMul", [[8], [8, 5]])[0] == [5])
        #expect(try infer("Gemm", [[4, 8], [5, 8]], ["transB": .int(1)])[0] == [4, 5])
    }

    @Test("follows each opset's axes convention for reductions and Split")
    func opsetConventions() throws {
        #expect(try infer("ReduceMean", [[2, 3, 4]], ["axes": .ints([1])], opset: 17)[0] == [2, 1, 4])
        #expect(
            try infer("ReduceMean", [[2, 3, 4], [1]], ["keepdims": .int(0)], opset: 18, constants: [1: [-1]])[0] == [
                2, 3,
            ])
        #expect(try infer("Split", [[6, 2]], ["num_outputs": .int(2)], opset: 18) == [[3, 2], [3, 2]])
    }

    @Test("reshapes with 0 and -1 and checks the element count")
    func reshape() throws {
        #expect(try infer("Reshape", [[2, 3, 4], [3]], constants: [1: [0, -1, 2]])[0] == [2, 6, 2])
        #expect(throws: KilnError.self) { try infer("Reshape", [[2, 3], [1]], constants: [1: [7]]) }
    }

    @Test("slices with negative indices and steps")
    func slice() throws {
        #expect(
            try infer("Slice", [[10, 4], [1], [1], [1], [1]], constants: [1: [-1], 2: [-100], 3: [0], 4: [-2]])[0] == [
                5, 4,
            ])
    }

    @Test("refuses a target shape only known at run time, saying why")
    func runtimeShape() throws {
        var graph = Graph()
        let x = graph.addValue(Value(name: "x", type: TensorType(.float32, static: [2, 3])))
        let s = graph.addValue(Value(name: "s", type: TensorType(.int64, static: [2])))
        let y = graph.addValue(Value(name: "y", type: nil))
        graph.nodes = [Node(name: "r", opType: "Reshape", inputs: [x, s], outputs: [y])]
        let error = #expect(throws: KilnError.self) { try ShapeInference(opset: 17, mode: .authority).run(&graph) }
        #expect(error?.message.contains("its target shape (input 1) is computed at run time") == true)
    }

    @Test("parses Einsum equations, with ellipses and implicit outputs, and refuses bad ones")
    func einsum() throws {
        let equation = { (text: String) in ["equation": AttributeValue.string(Array(text.utf8))] }
        #expect(try infer("Einsum", [[2, 3, 4], [2, 4, 5]], equation("bij, bjk -> bik"))[0] == [2, 3, 5])
        #expect(try infer("Einsum", [[3, 4], [4, 5]], equation("ij,jk"))[0] == [3, 5])
        #expect(try infer("Einsum", [[2, 3, 3]], equation("...ii->...i"))[0] == [2, 3])
        #expect(try infer("Einsum", [[5], [5]], equation("i,i"))[0] == [])
        #expect(throws: KilnError.self) { try infer("Einsum", [[3, 4], [5, 6]], equation("ij,jk->ik")) }
        #expect(throws: KilnError.self) { try infer("Einsum", [[3, 4]], equation("ij->iz")) }
        #expect(throws: KilnError.self) { try infer("Einsum", [[3, 4]], equation("ijk->i")) }
        #expect(throws: KilnError.self) { try infer("Einsum", [[3, 4]], equation("i*->i")) }
    }

    @Test("rearranging ops: TopK, GatherND, DepthToSpace, SpaceToDepth, CenterCropPad, Det, MaxUnpool")
    func rearranging() throws {
        #expect(try infer("TopK", [[3, 4], [1]], [:], constants: [1: [2]]) == [[3, 2], [3, 2]])
        #expect(throws: KilnError.self) { try infer("TopK", [[3, 4], [1]], [:], constants: [1: [5]]) }
        #expect(try infer("GatherND", [[2, 3, 4], [5, 2]])[0] == [5, 4])
        #expect(try infer("GatherND", [[2, 3, 4], [2, 1]], ["batch_dims": .int(1)])[0] == [2, 4])
        #expect(throws: KilnError.self) { try infer("GatherND", [[2, 3], [2, 3]]) }
        #expect(try infer("DepthToSpace", [[1, 8, 2, 3]], ["blocksize": .int(2)])[0] == [1, 2, 4, 6])
        #expect(throws: KilnError.self) { try infer("DepthToSpace", [[1, 6, 2, 3]], ["blocksize": .int(2)]) }
        #expect(try infer("SpaceToDepth", [[1, 2, 4, 6]], ["blocksize": .int(2)])[0] == [1, 8, 2, 3])
        #expect(
            try infer("CenterCropPad", [[20, 10, 3], [2]], ["axes": .ints([0, 1])], constants: [1: [10, 12]])[0] == [
                10, 12, 3,
            ])
        #expect(try infer("Det", [[4, 3, 3]])[0] == [4])
        #expect(throws: KilnError.self) { try infer("Det", [[3, 2]]) }
        #expect(
            try infer(
                "MaxUnpool", [[1, 1, 2, 2], [1, 1, 2, 2]], ["kernel_shape": .ints([2, 2]), "strides": .ints([2, 2])])[0]
                == [1, 1, 4, 4])
    }
}
