import Diagnostics

/// The shape rule of each ai.onnx operator Kiln knows, one line each.
/// Adding an op's shape rule is adding a line here (and a function below
/// if no existing one fits).
public enum ShapeRules {
    public static let table: [String: ShapeRule] = {
        var table: [String: ShapeRule] = [:]
        for op in [
            "Relu", "LeakyRelu", "PRelu", "Elu", "Selu", "Celu", "ThresholdedRelu", "Shrink", "Sigmoid",
            "HardSigmoid", "HardSwish", "Tanh", "Softplus", "Softsign", "Erf", "Gelu", "Mish", "Exp", "Log", "Sqrt",
            "Abs", "Neg", "Reciprocal", "Floor", "Ceil", "Round", "Sign", "Sin", "Cos", "Tan", "Asin", "Acos",
            "Atan", "Sinh", "Cosh", "Asinh", "Acosh", "Atanh", "Identity", "Softmax", "LogSoftmax", "Hardmax",
            "LRN", "InstanceNormalization", "MeanVarianceNormalization", "BitwiseNot", "CumSum",
        ] {
            table[op] = sameAsInput
        }
        // Shape arithmetic often passes through these: keep integer values known.
        table["Neg"] = {
            [
                InferredOutput(
                    $0.dataType(0), $0.shape(0),
                    values: $0.value(0).map { KnownInts(shape: $0.shape, values: $0.values.map { -$0 }) })
            ]
        }
        table["Abs"] = {
            [
                InferredOutput(
                    $0.dataType(0), $0.shape(0),
                    values: $0.value(0).map { KnownInts(shape: $0.shape, values: $0.values.map { abs($0) }) })
            ]
        }
        table["Identity"] = { [InferredOutput($0.dataType(0), $0.shape(0), values: $0.value(0))] }
        for op in ["Add", "Sub", "Mul", "Div", "Pow", "Mod", "BitShift", "BitwiseAnd", "BitwiseOr", "BitwiseXor"] {
            table[op] = arithmetic
        }
        for op in ["Max", "Min", "Sum", "Mean"] { table[op] = broadcastAll }
        for op in ["Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or", "Xor"] {
            table[op] = comparison
        }
        table["Not"] = { [InferredOutput(.bool, $0.shape(0))] }
        table["IsNaN"] = table["Not"]
        table["IsInf"] = table["Not"]
        table["Where"] = whereRule
        table["Clip"] = sameAsInput
        table["Dropout"] = dropout
        table["BatchNormalization"] = sameAsInput
        table["LayerNormalization"] = layerNormalization
        table["Conv"] = conv
        for op in ["MaxPool", "AveragePool", "LpPool"] { table[op] = pool }
        for op in ["GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool"] { table[op] = globalPool }
        table["Gemm"] = gemm
        table["MatMul"] = matMul
        table["Flatten"] = flatten
        table["Reshape"] = reshape
        table["Transpose"] = transpose
        table["Concat"] = concat
        table["Squeeze"] = squeeze
        table["Unsqueeze"] = unsqueeze
        table["Shape"] = shapeOp
        table["Size"] = {
            [InferredOutput(.int64, [], values: .init(shape: [], values: [elementCount($0.shape(0)) ?? 0]))]
        }
        table["Gather"] = gather
        table["Slice"] = slice
        table["Cast"] = cast
        table["Constant"] = constant
        table["ConstantOfShape"] = constantOfShape
        for op in [
            "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2", "ReduceLogSum",
            "ReduceLogSumExp", "ReduceSumSquare",
        ] {
            table[op] = reduce
        }
        table["ArgMax"] = argReduce
        table["ArgMin"] = argReduce
        table["Split"] = split
        table["Pad"] = pad
        table["Expand"] = expand
        table["Tile"] = tile
        addQuantizationRules(&table)
        addMachineLearningRules(&table)
        addRecurrentRules(&table)
        addDataDependentRules(&table)
        table["Range"] = range
        table["CastLike"] = {
            [InferredOutput($0.dataType(1), $0.shape(0), values: $0.dataType(1).isInteger ? $0.value(0) : nil)]
        }
        table["ConvTranspose"] = convTranspose
        table["SoftmaxCrossEntropyLoss"] = { c in
            [
                InferredOutput(c.dataType(0), (c.node.string("reduction") ?? "mean") == "none" ? c.shape(1) : []),
                InferredOutput(c.dataType(0), c.shape(0)),
            ]
        }
        table["NegativeLogLikelihoodLoss"] = { c in
            [InferredOutput(c.dataType(0), (c.node.string("reduction") ?? "mean") == "none" ? c.shape(1) : [])]
        }
        table["Resize"] = { try [InferredOutput($0.dataType(0), ResizePlan(context: $0).outputShape)] }
        table["Trilu"] = sameAsInput
        table["GatherElements"] = { [InferredOutput($0.dataType(0), $0.shape(1))] }
        table["ScatterElements"] = sameAsInput
        table["ScatterND"] = sameAsInput
        table["EyeLike"] = { c in
            let type =
                c.node.int("dtype").flatMap { DataType(rawValue: Int32(truncatingIfNeeded: $0)) } ?? c.dataType(0)
            return [InferredOutput(type, c.shape(0))]
        }
        table["TopK"] = topK
        table["GatherND"] = gatherND
        table["DepthToSpace"] = depthToSpace
        table["SpaceToDepth"] = spaceToDepth
        table["ReverseSequence"] = sameAsInput
        table["Det"] = det
        table["MaxUnpool"] = maxUnpool
        table["OneHot"] = oneHot
        for op in ["HannWindow", "HammingWindow", "BlackmanWindow"] { table[op] = window }
        table["GroupNormalization"] = sameAsInput
        table["CenterCropPad"] = centerCropPad
        table["GridSample"] = gridSample
        table["Einsum"] = einsum
        return table
    }()

    // MARK: elementwise

    static func sameAsInput(_ c: ShapeContext) throws -> [InferredOutput] {
        [InferredOutput(c.dataType(0), c.shape(0))]
    }

    static func arithmetic(_ c: ShapeContext) throws -> [InferredOutput] {
        let shape = try broadcast(c.shape(0), c.shape(1), c)
        var values: KnownInts?
        if let a = c.value(0), let b = c.value(1), c.dataType(0).isInteger,
            let count = elementCount(shape), count <= 1024
        {
            let op: ((Int, Int) -> Int?)? =
                switch c.node.opType {
                case "Add": { $0 &+ $1 }
                case "Sub": { $0 &- $1 }
                case "Mul": { $0 &* $1 }
                // Integer Div truncates toward zero, like C and ONNX Runtime.
                case "Div": { $1 == 0 ? nil : $0 / $1 }
                default: nil
                }
            if let op {
                var result: [Int] = []
                var ok = true
                for index in 0..<count {
                    guard
                        let value = op(
                            a.values[broadcastIndex(index, shape, a.shape)],
                            b.values[broadcastIndex(index, shape, b.shape)])
                    else {
                        ok = false
                        break
                    }
                    result.append(value)
                }
                if ok { values = KnownInts(shape: shape, values: result) }
            }
        }
        return [InferredOutput(c.dataType(0), shape, values: values)]
    }

    static func broadcastAll(_ c: ShapeContext) throws -> [InferredOutput] {
        var shape = c.shape(0)
        for slot in 1..<c.inputCount { shape = try broadcast(shape, c.shape(slot), c) }
        return [InferredOutput(c.dataType(0), shape)]
    }

    static func comparison(_ c: ShapeContext) throws -> [InferredOutput] {
        [InferredOutput(.bool, try broadcast(c.shape(0), c.shape(1), c))]
    }

    static func whereRule(_ c: ShapeContext) throws -> [InferredOutput] {
        let shape = try broadcast(try broadcast(c.shape(0), c.shape(1), c), c.shape(2), c)
        return [InferredOutput(c.dataType(1), shape)]
    }

    static func dropout(_ c: ShapeContext) throws -> [InferredOutput] {
        [InferredOutput(c.dataType(0), c.shape(0)), InferredOutput(.bool, c.shape(0))]
    }

    static func layerNormalization(_ c: ShapeContext) throws -> [InferredOutput] {
        let shape = c.shape(0)
        let axis = try c.axis(c.node.int("axis") ?? -1, rank: shape.count)
        let reduced = Array(shape[..<axis]) + Array(repeating: 1, count: shape.count - axis)
        let statsType: DataType =
            c.node.int("stash_type") == 1 || c.node.int("stash_type") == nil ? .float32 : c.dataType(0)
        return [
            InferredOutput(c.dataType(0), shape), InferredOutput(statsType, reduced),
            InferredOutput(statsType, reduced),
        ]
    }

    /// NumPy broadcasting of two shapes.
    static func broadcast(_ a: [Int], _ b: [Int], _ c: ShapeContext) throws -> [Int] {
        let rank = max(a.count, b.count)
        var result: [Int] = []
        for index in 0..<rank {
            let x = index < rank - a.count ? 1 : a[index - (rank - a.count)]
            let y = index < rank - b.count ? 1 : b[index - (rank - b.count)]
            if x == y || y == 1 {
                result.append(x)
            } else if x == 1 {
                result.append(y)
            } else {
                throw c.fail("shapes \(shapeText(a)) and \(shapeText(b)) do not broadcast")
            }
        }
        return result
    }

    /// The flat index into a (broadcast) operand of shape `from` for output element `index` of shape `to`.
    static func broadcastIndex(_ index: Int, _ to: [Int], _ from: [Int]) -> Int {
        var remainder = index
        var result = 0
        var step = 1
        for axis in stride(from: to.count - 1, through: 0, by: -1) {
            let coordinate = remainder % max(to[axis], 1)
            remainder /= max(to[axis], 1)
            let fromAxis = axis - (to.count - from.count)
            if fromAxis >= 0 {
                if from[fromAxis] != 1 { result += coordinate * step }
                step *= from[fromAxis]
            }
        }
        return result
    }

    // MARK: convolution and pooling

    static func spatialOutput(
        _ c: ShapeContext, input: [Int], kernel: [Int], ceilMode: Bool
    ) throws -> [Int] {
        let spatial = input.count - 2
        guard kernel.count == spatial else {
            throw c.fail(
                "kernel rank \(kernel.count) does not match \(spatial) spatial dims of input \(shapeText(input))")
        }
        let strides = c.node.ints("strides") ?? Array(repeating: 1, count: spatial)
        let dilations = c.node.ints("dilations") ?? Array(repeating: 1, count: spatial)
        let pads = c.node.ints("pads") ?? Array(repeating: 0, count: spatial * 2)
        let autoPad = c.node.string("auto_pad") ?? "NOTSET"
        guard strides.count == spatial, dilations.count == spatial, pads.count == spatial * 2 else {
            throw c.fail("strides, dilations or pads do not match \(spatial) spatial dims")
        }
        var output: [Int] = []
        for axis in 0..<spatial {
            let size = input[axis + 2]
            let stride = strides[axis]
            guard stride > 0, dilations[axis] > 0, kernel[axis] > 0 else {
                throw c.fail("kernel, stride and dilation must be positive")
            }
            let effective = dilations[axis] * (kernel[axis] - 1) + 1
            let dim: Int
            switch autoPad {
            case "SAME_UPPER", "SAME_LOWER":
                dim = (size + stride - 1) / stride
            case "VALID":
                dim = (size - effective) / stride + 1
            case "NOTSET", "":
                let padded = size + pads[axis] + pads[axis + spatial] - effective
                if ceilMode {
                    var value = (padded + stride - 1) / stride + 1
                    // The last window must start inside the input or left padding.
                    if (value - 1) * stride >= size + pads[axis] { value -= 1 }
                    dim = value
                } else {
                    dim = padded >= 0 ? padded / stride + 1 : 0
                }
            default:
                throw c.fail("auto_pad \(quoted(autoPad)) is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID")
            }
            guard dim > 0 else {
                throw c.fail("the window does not fit: input \(shapeText(input)), kernel \(shapeText(kernel))")
            }
            output.append(dim)
        }
        return output
    }

    static func conv(_ c: ShapeContext) throws -> [InferredOutput] {
        let x = c.shape(0)
        let w = c.shape(1)
        guard x.count >= 3, w.count == x.count else {
            throw c.fail("input \(shapeText(x)) and weight \(shapeText(w)) ranks do not fit a convolution")
        }
        let group = c.node.int("group") ?? 1
        guard group > 0, x[1] == w[1] * group else {
            throw c.fail(
                "input has \(x[1]) channels but weight \(shapeText(w)) with group \(group) expects \(w[1] * group)")
        }
        let kernel = c.node.ints("kernel_shape") ?? Array(w[2...])
        let spatial = try spatialOutput(c, input: x, kernel: kernel, ceilMode: false)
        return [InferredOutput(c.dataType(0), [x[0], w[0]] + spatial)]
    }

    static func convTranspose(_ c: ShapeContext) throws -> [InferredOutput] {
        let x = c.shape(0)
        let w = c.shape(1)
        guard x.count >= 3, w.count == x.count else { throw c.fail("input and weight ranks do not fit") }
        let spatial = x.count - 2
        let group = c.node.int("group") ?? 1
        let kernel = c.node.ints("kernel_shape") ?? Array(w[2...])
        let strides = c.node.ints("strides") ?? Array(repeating: 1, count: spatial)
        let dilations = c.node.ints("dilations") ?? Array(repeating: 1, count: spatial)
        let outputPadding = c.node.ints("output_padding") ?? Array(repeating: 0, count: spatial)
        let pads = c.node.ints("pads") ?? Array(repeating: 0, count: spatial * 2)
        let autoPad = c.node.string("auto_pad") ?? "NOTSET"
        var output: [Int] = []
        if let explicit = c.node.ints("output_shape") {
            output = Array(explicit.suffix(spatial))
        } else {
            for axis in 0..<spatial {
                if autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER" {
                    output.append(x[axis + 2] * strides[axis])
                } else {
                    output.append(
                        strides[axis] * (x[axis + 2] - 1) + outputPadding[axis] + (kernel[axis] - 1) * dilations[axis]
                            + 1
                            - pads[axis] - pads[axis + spatial])
                }
            }
        }
        guard output.allSatisfy({ $0 > 0 }) else { throw c.fail("the output would be empty") }
        return [InferredOutput(c.dataType(0), [x[0], w[1] * group] + output)]
    }

    static func pool(_ c: ShapeContext) throws -> [InferredOutput] {
        let x = c.shape(0)
        guard x.count >= 3, let kernel = c.node.ints("kernel_shape") else {
            throw c.fail("needs an input of rank ≥ 3 and a kernel_shape")
        }
        let shape =
            [x[0], x[1]] + (try spatialOutput(c, input: x, kernel: kernel, ceilMode: c.node.int("ceil_mode") == 1))
        return [InferredOutput(c.dataType(0), shape), InferredOutput(.int64, shape)]
    }

    static func globalPool(_ c: ShapeContext) throws -> [InferredOutput] {
        let x = c.shape(0)
        guard x.count >= 2 else { throw c.fail("needs an input of rank ≥ 2") }
        return [InferredOutput(c.dataType(0), [x[0], x[1]] + Array(repeating: 1, count: x.count - 2))]
    }

    // MARK: matrix products

    static func gemm(_ c: ShapeContext) throws -> [InferredOutput] {
        let a = c.shape(0)
        let b = c.shape(1)
        guard a.count == 2, b.count == 2 else { throw c.fail("A \(shapeText(a)) and B \(shapeText(b)) must be 2-D") }
        let (m, k1) = c.node.int("transA") == 1 ? (a[1], a[0]) : (a[0], a[1])
        let (k2, n) = c.node.int("transB") == 1 ? (b[1], b[0]) : (b[0], b[1])
        guard k1 == k2 else { throw c.fail("inner dimensions differ: A \(shapeText(a)), B \(shapeText(b))") }
        if c.has(2) { _ = try broadcast([m, n], c.shape(2), c) }
        return [InferredOutput(c.dataType(0), [m, n])]
    }

    static func matMul(_ c: ShapeContext) throws -> [InferredOutput] {
        var a = c.shape(0)
        var b = c.shape(1)
        guard !a.isEmpty, !b.isEmpty else { throw c.fail("MatMul inputs must not be scalars") }
        let promotedA = a.count == 1
        let promotedB = b.count == 1
        if promotedA { a = [1] + a }
        if promotedB { b = b + [1] }
        guard a[a.count - 1] == b[b.count - 2] else {
            throw c.fail("inner dimensions differ: \(shapeText(c.shape(0))) × \(shapeText(c.shape(1)))")
        }
        var shape = try broadcast(Array(a.dropLast(2)), Array(b.dropLast(2)), c) + [a[a.count - 2], b[b.count - 1]]
        if promotedA { shape.remove(at: shape.count - 2) }
        if promotedB { shape.removeLast() }
        return [InferredOutput(c.dataType(0), shape)]
    }

    // MARK: shape manipulation

    static func flatten(_ c: ShapeContext) throws -> [InferredOutput] {
        let x = c.shape(0)
        var axis = c.node.int("axis") ?? 1
        if axis < 0 { axis += x.count }
        guard axis >= 0 && axis <= x.count else { throw c.fail("axis out of range for \(shapeText(x))") }
        let outer = x[..<axis].reduce(1, *)
        let inner = x[axis...].reduce(1, *)
        return [InferredOutput(c.dataType(0), [outer, inner])]
    }

    static func reshape(_ c: ShapeContext) throws -> [InferredOutput] {
        let x = c.shape(0)
        let requested = try c.requiredValue(1, "target shape")
        let allowZero = c.node.int("allowzero") == 1
        var shape: [Int] = []
        var inferAt: Int?
        for (index, dim) in requested.enumerated() {
            switch dim {
            case -1:
                guard inferAt == nil else { throw c.fail("target shape \(shapeText(requested)) has more than one -1") }
                inferAt = index
                shape.append(1)
            case 0 where !allowZero:
                guard index < x.count else {
                    throw c.fail("target shape \(shapeText(requested)) copies a dim that does not exist")
                }
                shape.append(x[index])
            default:
                guard dim >= 0 else { throw c.fail("target shape \(shapeText(requested)) has a negative dim") }
                shape.append(dim)
            }
        }
        let total = elementCount(x) ?? 0
        if let inferAt {
            let known = shape.reduce(1, *)
            guard known > 0, total % known == 0 else {
                throw c.fail("cannot reshape \(shapeText(x)) to \(shapeText(requested))")
            }
            shape[inferAt] = total / known
        }
        guard elementCount(shape) == total else {
            throw c.fail("cannot reshape \(shapeText(x)) (\(total) elements) to \(shapeText(shape))")
        }
        let values = c.value(0).map { KnownInts(shape: shape, values: $0.values) }
        return [InferredOutput(c.dataType(0), shape, values: values)]
    }

    static func transpose(_ c: ShapeContext) throws -> [InferredOutput] {
        let x = c.shape(0)
        let perm = c.node.ints("perm") ?? Array((0..<x.count).reversed())
        guard perm.count == x.count, Set(perm) == Set(0..<x.count) else {
            throw c.fail("perm \(shapeText(perm)) is not a permutation of the \(x.count) axes")
        }
        return [InferredOutput(c.dataType(0), perm.map { x[$0] })]
    }

    static func concat(_ c: ShapeContext) throws -> [InferredOutput] {
        let first = c.shape(0)
        let axis = try c.axis(c.node.int("axis") ?? 0, rank: first.count)
        var shape = first
        shape[axis] = 0
        var values: [Int]? = []
        for slot in 0..<c.inputCount where c.has(slot) {
            let other = c.shape(slot)
            guard other.count == first.count,
                (0..<first.count).allSatisfy({ $0 == axis || other[$0] == first[$0] })
            else {
                throw c.fail("input \(slot) \(shapeText(other)) does not fit \(shapeText(first)) along axis \(axis)")
            }
            shape[axis] += other[axis]
            if let known = c.value(slot), first.count == 1 {
                values?.append(contentsOf: known.values)
            } else {
                values = nil
            }
        }
        return [InferredOutput(c.dataType(0), shape, values: values.map(KnownInts.vector))]
    }

    static func axesFromAttributeOrInput(_ c: ShapeContext, inputSince: Int) throws -> [Int]? {
        if c.opset >= inputSince {
            return c.has(1) ? try c.requiredValue(1, "axes") : nil
        }
        return c.node.ints("axes")
    }

    static func squeeze(_ c: ShapeContext) throws -> [InferredOutput] {
        let x = c.shape(0)
        let axes = try axesFromAttributeOrInput(c, inputSince: 13)
        let normalized = try Set((axes ?? x.indices.filter { x[$0] == 1 }).map { try c.axis($0, rank: x.count) })
        for axis in normalized where x[axis] != 1 {
            throw c.fail("cannot squeeze axis \(axis) of \(shapeText(x)): it is not 1")
        }
        let shape = x.indices.filter { !normalized.contains($0) }.map { x[$0] }
        return [
            InferredOutput(c.dataType(0), shape, values: c.value(0).map { KnownInts(shape: shape, values: $0.values) })
        ]
    }

    static func unsqueeze(_ c: ShapeContext) throws -> [InferredOutput] {
        let x = c.shape(0)
        guard let axes = try axesFromAttributeOrInput(c, inputSince: 13) else { throw c.fail("needs axes") }
        let rank = x.count + axes.count
        let normalized = try Set(axes.map { try c.axis($0, rank: rank) })
        guard normalized.count == axes.count else { throw c.fail("axes \(shapeText(axes)) repeat an axis") }
        var shape: [Int] = []
        var next = 0
        for axis in 0..<rank {
            if normalized.contains(axis) {
                shape.append(1)
            } else {
                shape.append(x[next])
                next += 1
            }
        }
        return [
            InferredOutput(c.dataType(0), shape, values: c.value(0).map { KnownInts(shape: shape, values: $0.values) })
        ]
    }

    static func shapeOp(_ c: ShapeContext) throws -> [InferredOutput] {
        let x = c.shape(0)
        let rank = x.count
        func clamp(_ value: Int) -> Int { min(max(value < 0 ? value + rank : value, 0), rank) }
        let start = clamp(c.node.int("start") ?? 0)
        let end = clamp(c.node.int("end") ?? rank)
        let dims = start < end ? Array(x[start..<end]) : []
        return [InferredOutput(.int64, [dims.count], values: .vector(dims))]
    }

    static func gather(_ c: ShapeContext) throws -> [InferredOutput] {
        let data = c.shape(0)
        let indices = c.shape(1)
        guard !data.isEmpty else { throw c.fail("cannot gather from a scalar") }
        let axis = try c.axis(c.node.int("axis") ?? 0, rank: data.count)
        let shape = Array(data[..<axis]) + indices + Array(data[(axis + 1)...])
        var values: KnownInts?
        if let known = c.value(0), let index = c.value(1), data.count == 1 {
            var result: [Int] = []
            for raw in index.values {
                let position = raw < 0 ? raw + data[0] : raw
                guard position >= 0 && position < data[0] else {
                    throw c.fail("index \(raw) is out of range for \(data[0])")
                }
                result.append(known.values[position])
            }
            values = KnownInts(shape: shape, values: result)
        }
        return [InferredOutput(c.dataType(0), shape, values: values)]
    }

    static func slice(_ c: ShapeContext) throws -> [InferredOutput] {
        let x = c.shape(0)
        let starts: [Int]
        let ends: [Int]
        var axes: [Int]
        var steps: [Int]
        if c.opset >= 10 {
            starts = try c.requiredValue(1, "starts")
            ends = try c.requiredValue(2, "ends")
            axes = c.has(3) ? try c.requiredValue(3, "axes") : Array(0..<starts.count)
            steps = c.has(4) ? try c.requiredValue(4, "steps") : Array(repeating: 1, count: starts.count)
        } else {
            starts = c.node.ints("starts") ?? []
            ends = c.node.ints("ends") ?? []
            axes = c.node.ints("axes") ?? Array(0..<starts.count)
            steps = Array(repeating: 1, count: starts.count)
        }
        guard starts.count == ends.count, axes.count == starts.count, steps.count == starts.count else {
            throw c.fail("starts, ends, axes and steps differ in length")
        }
        axes = try axes.map { try c.axis($0, rank: x.count) }
        var shape = x
        var ranges: [(start: Int, step: Int)] = x.map { _ in (0, 1) }
        for (index, axis) in axes.enumerated() {
            let size = x[axis]
            let step = steps[index]
            guard step != 0 else { throw c.fail("a slice step is 0") }
            func clamp(_ value: Int, _ low: Int, _ high: Int) -> Int { min(max(value, low), high) }
            var start = starts[index] < 0 ? starts[index] + size : starts[index]
            var end = ends[index] < 0 ? ends[index] + size : ends[index]
            if step > 0 {
                start = clamp(start, 0, size)
                end = clamp(end, 0, size)
                shape[axis] = max(0, (end - start + step - 1) / step)
            } else {
                start = clamp(start, 0, size - 1)
                end = clamp(end, -1, size - 1)
                shape[axis] = max(0, (start - end + (-step) - 1) / (-step))
            }
            ranges[axis] = (start, step)
        }
        var values: KnownInts?
        if let known = c.value(0), x.count == 1 {
            values = .vector((0..<shape[0]).map { known.values[ranges[0].start + $0 * ranges[0].step] })
        }
        return [InferredOutput(c.dataType(0), shape, values: values)]
    }

    static func cast(_ c: ShapeContext) throws -> [InferredOutput] {
        guard let raw = c.node.int("to"), let type = DataType(rawValue: Int32(truncatingIfNeeded: raw)) else {
            throw c.fail("attribute 'to' is not a known data type")
        }
        let values = type.isInteger ? c.value(0) : nil
        return [InferredOutput(type, c.shape(0), values: values)]
    }

    static func constant(_ c: ShapeContext) throws -> [InferredOutput] {
        if let tensor = c.node.tensor("value") {
            let values =
                tensor.dataType.isInteger && tensor.elementCount <= 1024
                ? tensor.integers().map { KnownInts(shape: tensor.shape, values: $0) } : nil
            return [InferredOutput(tensor.dataType, tensor.shape, values: values)]
        }
        if let value = c.node.int("value_int") {
            return [InferredOutput(.int64, [], values: .init(shape: [], values: [value]))]
        }
        if let values = c.node.ints("value_ints") {
            return [InferredOutput(.int64, [values.count], values: .vector(values))]
        }
        if c.node.float("value_float") != nil { return [InferredOutput(.float32, [])] }
        if case .floats(let values)? = c.node.attributes["value_floats"] {
            return [InferredOutput(.float32, [values.count])]
        }
        throw c.fail("has no value Kiln can read (sparse and string constants are not supported)")
    }

    static func constantOfShape(_ c: ShapeContext) throws -> [InferredOutput] {
        let shape = try c.requiredValue(0, "shape")
        guard shape.allSatisfy({ $0 >= 0 }) else { throw c.fail("shape \(shapeText(shape)) has a negative dim") }
        let value = c.node.tensor("value")
        let type = value?.dataType ?? .float32
        var known: KnownInts?
        if type.isInteger, let fill = value?.integers()?.first, let count = elementCount(shape), count <= 1024 {
            known = KnownInts(shape: shape, values: Array(repeating: fill, count: count))
        }
        return [InferredOutput(type, shape, values: known)]
    }

    static func reduce(_ c: ShapeContext) throws -> [InferredOutput] {
        let x = c.shape(0)
        let inputSince = c.node.opType == "ReduceSum" ? 13 : 18
        let axes = try axesFromAttributeOrInput(c, inputSince: inputSince) ?? []
        let keepDims = (c.node.int("keepdims") ?? 1) == 1
        if axes.isEmpty && c.node.int("noop_with_empty_axes") == 1 { return [InferredOutput(c.dataType(0), x)] }
        let reduced = try Set(axes.isEmpty ? Array(x.indices) : axes.map { try c.axis($0, rank: x.count) })
        var shape: [Int] = []
        for axis in x.indices {
            if reduced.contains(axis) {
                if keepDims { shape.append(1) }
            } else {
                shape.append(x[axis])
            }
        }
        return [InferredOutput(c.dataType(0), shape)]
    }

    static func argReduce(_ c: ShapeContext) throws -> [InferredOutput] {
        let x = c.shape(0)
        let axis = try c.axis(c.node.int("axis") ?? 0, rank: x.count)
        var shape = x
        if (c.node.int("keepdims") ?? 1) == 1 { shape[axis] = 1 } else { shape.remove(at: axis) }
        return [InferredOutput(.int64, shape)]
    }

    static func split(_ c: ShapeContext) throws -> [InferredOutput] {
        let x = c.shape(0)
        let axis = try c.axis(c.node.int("axis") ?? 0, rank: x.count)
        let outputs = c.node.outputs.count
        var sizes: [Int]
        if c.opset >= 13, c.has(1) {
            sizes = try c.requiredValue(1, "split")
        } else if c.opset < 13, let attribute = c.node.ints("split") {
            sizes = attribute
        } else {
            let parts = c.opset >= 18 ? (c.node.int("num_outputs") ?? outputs) : outputs
            guard parts > 0 else { throw c.fail("has no outputs") }
            let chunk = (x[axis] + parts - 1) / parts
            sizes = (0..<parts).map { min(chunk, max(0, x[axis] - $0 * chunk)) }
        }
        guard sizes.count == outputs, sizes.reduce(0, +) == x[axis] else {
            throw c.fail(
                "split sizes \(shapeText(sizes)) do not divide axis \(axis) of \(shapeText(x)) into \(outputs) outputs")
        }
        return sizes.map { size in
            var shape = x
            shape[axis] = size
            return InferredOutput(c.dataType(0), shape)
        }
    }

    static func pad(_ c: ShapeContext) throws -> [InferredOutput] {
        let x = c.shape(0)
        let pads = c.opset >= 11 ? try c.requiredValue(1, "pads") : (c.node.ints("pads") ?? [])
        var axes = Array(x.indices)
        if c.opset >= 18, c.has(3) { axes = try c.requiredValue(3, "axes").map { try c.axis($0, rank: x.count) } }
        guard pads.count == axes.count * 2 else {
            throw c.fail("pads \(shapeText(pads)) do not match \(axes.count) axes")
        }
        var shape = x
        for (index, axis) in axes.enumerated() {
            shape[axis] += pads[index] + pads[index + axes.count]
            guard shape[axis] >= 0 else { throw c.fail("pads \(shapeText(pads)) remove more than axis \(axis) holds") }
        }
        return [InferredOutput(c.dataType(0), shape)]
    }

    static func expand(_ c: ShapeContext) throws -> [InferredOutput] {
        let requested = try c.requiredValue(1, "shape")
        return [InferredOutput(c.dataType(0), try broadcast(c.shape(0), requested, c))]
    }

    static func tile(_ c: ShapeContext) throws -> [InferredOutput] {
        let x = c.shape(0)
        let repeats = try c.requiredValue(1, "repeats")
        guard repeats.count == x.count, repeats.allSatisfy({ $0 >= 0 }) else {
            throw c.fail("repeats \(shapeText(repeats)) do not match \(shapeText(x))")
        }
        return [InferredOutput(c.dataType(0), zip(x, repeats).map(*))]
    }

    static func range(_ c: ShapeContext) throws -> [InferredOutput] {
        guard c.dataType(0).isInteger else {
            throw c.fail("float Range needs its start, limit and delta at compile time, which Kiln does not fold yet")
        }
        let start = try c.requiredValue(0, "start")
        let limit = try c.requiredValue(1, "limit")
        let delta = try c.requiredValue(2, "delta")
        guard let s = start.first, let l = limit.first, let d = delta.first, d != 0 else { throw c.fail("delta is 0") }
        let count = max(0, Int((Double(l - s) / Double(d)).rounded(.up)))
        let values = count <= 1024 ? KnownInts.vector((0..<count).map { s + $0 * d }) : nil
        return [InferredOutput(c.dataType(0), [count], values: values)]
    }
}
