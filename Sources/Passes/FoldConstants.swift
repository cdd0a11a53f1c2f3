import Foundation
import ModelIR

extension GraphPass {
    /// Nodes whose every input is a constant (or, for `Shape` and `Size`, whose input's shape is static)
    /// are computed here, once, and become constants: weights an exporter stored transposed, in float16 or
    /// reshaped, `Constant` nodes, and what is left of shape arithmetic after the check stage's integer
    /// folding (float scalars, `ConstantOfShape`, `Where`). The fusions after it then see the constants
    /// they match on. Sweeps in order, so a chain of such nodes folds whole. Floats are computed in their
    /// own precision, as the compiled code would; integer division truncates and gives 0 for a zero divisor,
    /// as the kernels do.
    ///
    /// A node stays when it is a graph output, when an input's type or the op is not one this pass
    /// evaluates, or when its result would take more than twice its inputs' bytes plus 64 KiB (an
    /// `Expand` or `ConstantOfShape` of a scalar into a large tensor is cheaper to run than to store).
    /// Counts the nodes folded.
    public static let foldConstants = GraphPass(name: "fold-constants") { graph, _ in
        let outputs = Set(graph.outputs)
        var removed: Set<Int> = []
        for index in graph.nodes.indices {
            let node = graph.nodes[index]
            guard node.isDefaultDomain, node.guards.isEmpty, node.outputs.count == 1, let output = node.outputs[0],
                !outputs.contains(output), graph.initializers[output] == nil, let type = graph[output].type,
                let shape = type.staticShape
            else { continue }
            let constants = node.inputs.map { $0.flatMap { graph.initializers[$0] } }
            let inputBytes = constants.reduce(0) { $0 + ($1?.storage.count ?? 0) }
            let folded: Constant?
            switch node.opType {
            case "Shape", "Size":
                guard let input = node.inputs.first ?? nil, let dims = graph[input].type?.staticShape else { continue }
                folded = node.shapeValue(of: dims, type: type.dataType)
            default:
                guard zip(node.inputs, constants).allSatisfy({ $0.0 == nil || $0.1 != nil }) else { continue }
                folded = ConstantFolder.evaluate(node, constants, type: type.dataType, shape: shape)
            }
            guard let folded, folded.dataType == type.dataType, folded.shape == shape,
                folded.storage.count <= 2 * inputBytes + (64 << 10)
            else { continue }
            graph.initializers[output] = folded
            removed.insert(index)
        }
        graph.removeNodes(at: removed)
        return removed.count
    }
}

/// The evaluator behind `fold-constants`: a node's result from constant inputs, nil when the op or a
/// type is not covered.
enum ConstantFolder {
    /// Elements of a constant in a type Swift computes with.
    enum Values {
        case float([Float])
        case double([Double])
        case integer([Int])

        init?(_ constant: Constant) {
            let bytes = constant.storage.bytes
            let count = constant.elementCount
            switch constant.dataType {
            case .float32:
                guard bytes.count >= count * 4 else { return nil }
                self = .float((0..<count).map { bytes.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) })
            case .float64:
                guard bytes.count >= count * 8 else { return nil }
                self = .double((0..<count).map { bytes.loadUnaligned(fromByteOffset: $0 * 8, as: Double.self) })
            case .float16:
                // Only a Cast reads these: widened exactly to float.
                guard bytes.count >= count * 2 else { return nil }
                self = .float(
                    (0..<count).map {
                        Float(Float16(bitPattern: bytes.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self)))
                    })
            default:
                guard let values = constant.integers() else { return nil }
                self = .integer(values)
            }
        }

        var count: Int {
            switch self {
            case .float(let v): v.count
            case .double(let v): v.count
            case .integer(let v): v.count
            }
        }

        /// Element `i` as a Double (casts, comparisons).
        func double(_ i: Int) -> Double {
            switch self {
            case .float(let v): Double(v[i])
            case .double(let v): v[i]
            case .integer(let v): Double(v[i])
            }
        }

        /// These values as a constant of `type` (which must be this case's kind) and `shape`.
        func constant(_ type: DataType, _ shape: [Int]) -> Constant? {
            switch self {
            case .float(let v):
                guard type == .float32 else { return nil }
                return Constant(float32: v, shape: shape)
            case .double(let v):
                guard type == .float64 else { return nil }
                return Constant(
                    dataType: .float64, shape: shape, storage: v.withUnsafeBytes { TensorStorage(copying: $0) })
            case .integer(let v):
                return Constant(integers: v, type: type, shape: shape)
            }
        }
    }

    static func evaluate(_ node: Node, _ inputs: [Constant?], type: DataType, shape: [Int]) -> Constant? {
        let first = inputs.first ?? nil
        switch node.opType {
        case "Constant":
            return node.constantValue
        case "Identity", "Reshape", "Flatten", "Squeeze", "Unsqueeze":
            // The same elements in the output's (inferred) shape.
            guard let first, first.elementCount == elementCount(shape) else { return nil }
            return Constant(dataType: first.dataType, shape: shape, storage: first.storage)
        case "Transpose":
            guard let first else { return nil }
            let rank = first.shape.count
            let perm = node.ints("perm") ?? Array((0..<rank).reversed())
            guard perm.count == rank, Set(perm) == Set(0..<rank) else { return nil }
            let strides = rowMajorStrides(first.shape)
            return gather(first, shape, indices(shape, base: 0, strides: perm.map { strides[$0] }))
        case "Expand":
            guard let first else { return nil }
            return gather(first, shape, broadcast(first.shape, to: shape))
        case "Slice":
            return slice(node, inputs, shape)
        case "Concat":
            return concat(node, inputs.compactMap { $0 }, shape)
        case "Gather":
            return gatherOp(node, inputs, shape)
        case "ConstantOfShape":
            let value = node.tensor("value") ?? Constant(float32: [0], shape: [1])
            guard let count = elementCount(shape), value.elementCount == 1, let size = value.dataType.byteSize,
                value.storage.count >= size
            else { return nil }
            return gather(value, shape, [Int](repeating: 0, count: count))
        case "Cast":
            guard let first, let values = Values(first) else { return nil }
            return cast(values, to: type, shape)
        case "Where":
            guard inputs.count == 3, let condition = inputs[0].flatMap(Values.init), let x = inputs[1],
                let y = inputs[2], x.dataType == y.dataType, case .integer(let flags) = condition
            else { return nil }
            let (c, a, b) = (
                broadcast(inputs[0]!.shape, to: shape), broadcast(x.shape, to: shape), broadcast(y.shape, to: shape)
            )
            let size = x.dataType.byteSize ?? 0
            guard size > 0, let count = elementCount(shape), x.storage.count >= x.elementCount * size,
                y.storage.count >= y.elementCount * size, flags.count == inputs[0]!.elementCount
            else { return nil }
            var bytes = [UInt8](repeating: 0, count: count * size)
            bytes.withUnsafeMutableBytes { out in
                for i in 0..<count {
                    let (source, offset) = flags[c[i]] != 0 ? (x, a[i]) : (y, b[i])
                    out.baseAddress!.advanced(by: i * size).copyMemory(
                        from: source.storage.bytes.baseAddress!.advanced(by: offset * size), byteCount: size)
                }
            }
            return Constant(dataType: x.dataType, shape: shape, storage: TensorStorage(bytes))
        default:
            if let unary = unaryFloat[node.opType] {
                guard inputs.count == 1, let first, let values = Values(first) else { return nil }
                switch values {
                case .float(let v): return Constant(float32: v.map { Float(unary(Double($0))) }, shape: shape)
                case .double(let v): return Values.double(v.map(unary)).constant(type, shape)
                case .integer(let v):
                    guard node.opType == "Neg" || node.opType == "Abs" else { return nil }
                    return Values.integer(v.map { node.opType == "Neg" ? 0 &- $0 : Swift.abs($0) }).constant(
                        type, shape)
                }
            }
            return binary(node, inputs, type: type, shape: shape)
        }
    }

    /// Unary float ops, computed in double and rounded once (float32's own functions differ from the
    /// kernels' by an ulp either way).
    static let unaryFloat: [String: @Sendable (Double) -> Double] = [
        "Neg": { -$0 }, "Abs": { Swift.abs($0) }, "Sqrt": { $0.squareRoot() }, "Reciprocal": { 1 / $0 },
        "Exp": { Foundation.exp($0) }, "Log": { Foundation.log($0) }, "Relu": { $0 > 0 ? $0 : 0 },
        "Sigmoid": { 1 / (1 + Foundation.exp(-$0)) }, "Tanh": { Foundation.tanh($0) },
        "Floor": { $0.rounded(.down) }, "Ceil": { $0.rounded(.up) }, "Erf": { Foundation.erf($0) },
    ]

    /// Add, Sub, Mul, Div, Pow, Min, Max (two or more inputs, left to right) and the comparisons, with
    /// broadcasting.
    static func binary(_ node: Node, _ inputs: [Constant?], type: DataType, shape: [Int]) -> Constant? {
        let ops: Set = ["Add", "Sub", "Mul", "Div", "Pow", "Min", "Max", "Sum", "Equal", "Less", "Greater"]
        guard ops.contains(node.opType), inputs.count >= 2, inputs.allSatisfy({ $0 != nil }),
            ["Min", "Max", "Sum"].contains(node.opType) || inputs.count == 2
        else { return nil }
        let constants = inputs.map { $0! }
        let values = constants.compactMap(Values.init)
        guard let count = elementCount(shape), values.count == constants.count else { return nil }
        let maps = constants.map { broadcast($0.shape, to: shape) }
        let comparison = ["Equal", "Less", "Greater"].contains(node.opType)
        if comparison {
            guard type == .bool else { return nil }
            let result = (0..<count).map { i -> Int in
                let (a, b) = (values[0].double(maps[0][i]), values[1].double(maps[1][i]))
                switch node.opType {
                case "Equal": return a == b ? 1 : 0
                case "Less": return a < b ? 1 : 0
                default: return a > b ? 1 : 0
                }
            }
            return Constant(integers: result, type: .bool, shape: shape)
        }
        /// Element i of the result: the inputs' elements combined left to right, in their own precision.
        func fold<T: BinaryFloatingPoint>(_ arrays: [[T]]) -> [T] {
            (0..<count).map { i in
                (1..<arrays.count).reduce(arrays[0][maps[0][i]]) { combine($0, arrays[$1][maps[$1][i]], node.opType) }
            }
        }
        switch values[0] {
        case .float:
            let floats = values.compactMap { if case .float(let v) = $0 { v } else { nil } }
            guard floats.count == values.count else { return nil }
            return Constant(float32: fold(floats), shape: shape)
        case .double:
            let doubles = values.compactMap { if case .double(let v) = $0 { v } else { nil } }
            guard doubles.count == values.count else { return nil }
            return Values.double(fold(doubles)).constant(type, shape)
        case .integer:
            let integers = values.compactMap { if case .integer(let v) = $0 { v } else { nil } }
            guard integers.count == values.count, node.opType != "Pow", type != .bool else { return nil }
            let result = (0..<count).map { i in
                (1..<integers.count).reduce(integers[0][maps[0][i]]) { a, slot in
                    let b = integers[slot][maps[slot][i]]
                    switch node.opType {
                    case "Add", "Sum": return a &+ b
                    case "Sub": return a &- b
                    case "Mul": return a &* b
                    case "Div": return b == 0 ? 0 : a.dividedReportingOverflow(by: b).partialValue
                    case "Min": return Swift.min(a, b)
                    default: return Swift.max(a, b)
                    }
                }
            }
            return Constant(integers: result, type: type, shape: shape)
        }
    }

    static func combine<T: BinaryFloatingPoint>(_ a: T, _ b: T, _ op: String) -> T {
        switch op {
        case "Add", "Sum": return a + b
        case "Sub": return a - b
        case "Mul": return a * b
        case "Div": return a / b
        case "Pow": return T(Foundation.pow(Double(a), Double(b)))
        // NaN wins, as in the kernels.
        case "Min": return a.isNaN || b.isNaN ? .nan : Swift.min(a, b)
        default: return a.isNaN || b.isNaN ? .nan : Swift.max(a, b)
        }
    }

    static func cast(_ values: Values, to type: DataType, _ shape: [Int]) -> Constant? {
        let count = values.count
        switch type {
        case .float32: return Constant(float32: (0..<count).map { Float(values.double($0)) }, shape: shape)
        case .float64: return Values.double((0..<count).map(values.double)).constant(type, shape)
        case .bool:
            return Constant(integers: (0..<count).map { values.double($0) != 0 ? 1 : 0 }, type: .bool, shape: shape)
        default:
            guard type.isInteger else { return nil }
            if case .integer(let v) = values { return Constant(integers: v, type: type, shape: shape) }
            // Float to integer truncates toward zero; out of range (and NaN) is undefined in ONNX: left unfolded.
            var result: [Int] = []
            for i in 0..<count {
                let d = values.double(i)
                guard d.isFinite, Swift.abs(d) < 9.2e18 else { return nil }
                result.append(Int(d))
            }
            return Constant(integers: result, type: type, shape: shape)
        }
    }

    // MARK: moving elements

    /// For each element of `shape` in row-major order, `base + Σ coordinate[axis] × strides[axis]`.
    static func indices(_ shape: [Int], base: Int, strides: [Int]) -> [Int] {
        guard let count = elementCount(shape), count > 0 else { return [] }
        var result = [Int]()
        result.reserveCapacity(count)
        var coordinates = [Int](repeating: 0, count: shape.count)
        var offset = base
        for _ in 0..<count {
            result.append(offset)
            var axis = shape.count - 1
            while axis >= 0 {
                coordinates[axis] += 1
                offset += strides[axis]
                if coordinates[axis] < shape[axis] { break }
                offset -= strides[axis] * coordinates[axis]
                coordinates[axis] = 0
                axis -= 1
            }
        }
        return result
    }

    /// Where each element of `shape` comes from in a tensor of `source` shape broadcast to it (NumPy rules).
    static func broadcast(_ source: [Int], to shape: [Int]) -> [Int] {
        let padded = [Int](repeating: 1, count: max(0, shape.count - source.count)) + source
        let sourceStrides = rowMajorStrides(padded)
        return indices(shape, base: 0, strides: zip(padded, sourceStrides).map { $0 == 1 ? 0 : $1 })
    }

    /// A constant of `shape` whose element i is `source`'s element `map[i]`, byte for byte.
    static func gather(_ source: Constant, _ shape: [Int], _ map: [Int]) -> Constant? {
        guard let size = source.dataType.byteSize, elementCount(shape) == map.count,
            source.storage.count >= source.elementCount * size,
            map.allSatisfy({ $0 >= 0 && $0 < max(source.elementCount, 1) })
        else { return nil }
        if map.isEmpty { return Constant(dataType: source.dataType, shape: shape, storage: TensorStorage([])) }
        var bytes = [UInt8](repeating: 0, count: map.count * size)
        bytes.withUnsafeMutableBytes { out in
            let from = source.storage.bytes.baseAddress!
            for (i, index) in map.enumerated() {
                out.baseAddress!.advanced(by: i * size).copyMemory(
                    from: from.advanced(by: index * size), byteCount: size)
            }
        }
        return Constant(dataType: source.dataType, shape: shape, storage: TensorStorage(bytes))
    }

    static func slice(_ node: Node, _ inputs: [Constant?], _ shape: [Int]) -> Constant? {
        guard let data = inputs.first ?? nil else { return nil }
        let rank = data.shape.count
        let starts: [Int]
        let ends: [Int]
        var axes: [Int]
        var steps: [Int]
        if let attribute = node.ints("starts") {  // opset 1-9: attributes
            starts = attribute
            ends = node.ints("ends") ?? []
            axes = node.ints("axes") ?? Array(0..<starts.count)
            steps = [Int](repeating: 1, count: starts.count)
        } else {
            guard inputs.count >= 3, let s = inputs[1]?.integers(), let e = inputs[2]?.integers() else { return nil }
            (starts, ends) = (s, e)
            axes = inputs.count > 3 ? inputs[3]?.integers() ?? Array(0..<s.count) : Array(0..<s.count)
            steps = inputs.count > 4 ? inputs[4]?.integers() ?? [] : []
            if steps.isEmpty { steps = [Int](repeating: 1, count: s.count) }
        }
        guard ends.count == starts.count, axes.count == starts.count, steps.count == starts.count,
            shape.count == rank, !steps.contains(0)
        else { return nil }
        axes = axes.map { $0 < 0 ? $0 + rank : $0 }
        var first = [Int](repeating: 0, count: rank)
        var step = [Int](repeating: 1, count: rank)
        for (slot, axis) in axes.enumerated() {
            guard axis >= 0 && axis < rank else { return nil }
            let dim = data.shape[axis]
            var start = starts[slot] < 0 ? starts[slot] + dim : starts[slot]
            start = steps[slot] > 0 ? min(max(start, 0), dim) : min(max(start, 0), dim - 1)
            (first[axis], step[axis]) = (start, steps[slot])
        }
        let sourceStrides = rowMajorStrides(data.shape)
        let base = zip(first, sourceStrides).reduce(0) { $0 + $1.0 * $1.1 }
        return gather(data, shape, indices(shape, base: base, strides: zip(step, sourceStrides).map(*)))
    }

    static func concat(_ node: Node, _ inputs: [Constant], _ shape: [Int]) -> Constant? {
        guard let rank = inputs.first?.shape.count, var axis = node.int("axis"), shape.count == rank else { return nil }
        if axis < 0 { axis += rank }
        guard axis >= 0 && axis < rank,
            inputs.allSatisfy({ $0.shape.count == rank && $0.dataType == inputs[0].dataType })
        else { return nil }
        // Each input's elements land in a slab of the output: gather from the inputs laid end to end.
        var offsets: [Int] = []
        var total = 0
        for input in inputs {
            offsets.append(total)
            total += input.elementCount
        }
        guard let size = inputs[0].dataType.byteSize else { return nil }
        var joined = [UInt8]()
        for input in inputs { joined += input.storage.bytes.prefix(input.elementCount * size) }
        let source = Constant(dataType: inputs[0].dataType, shape: [total], storage: TensorStorage(joined))
        var map: [Int] = []
        let outer = shape[..<axis].reduce(1, *)
        for o in 0..<outer {
            for (input, offset) in zip(inputs, offsets) {
                let slab = input.shape[axis...].reduce(1, *)
                map += (0..<slab).map { offset + o * slab + $0 }
            }
        }
        return gather(source, shape, map)
    }

    static func gatherOp(_ node: Node, _ inputs: [Constant?], _ shape: [Int]) -> Constant? {
        guard inputs.count == 2, let data = inputs[0], let indices = inputs[1]?.integers() else { return nil }
        let rank = data.shape.count
        var axis = node.int("axis") ?? 0
        if axis < 0 { axis += rank }
        guard axis >= 0 && axis < rank else { return nil }
        let dim = data.shape[axis]
        let outer = data.shape[..<axis].reduce(1, *)
        let inner = data.shape[(axis + 1)...].reduce(1, *)
        var map: [Int] = []
        for o in 0..<outer {
            for index in indices {
                let i = index < 0 ? index + dim : index
                guard i >= 0 && i < dim else { return nil }
                map += (0..<inner).map { (o * dim + i) * inner + $0 }
            }
        }
        return gather(data, shape, map)
    }
}
