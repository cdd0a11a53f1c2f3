/// Shape rules of the quantized operators (ai.onnx and com.microsoft): the
/// integer ops reuse the float ops' shape arithmetic on their data inputs.
extension ShapeRules {
    static func addQuantizationRules(_ table: inout [String: ShapeRule]) {
        table["QuantizeLinear"] = quantizeLinear
        table["DequantizeLinear"] = { c in
            [InferredOutput(c.has(1) ? c.dataType(1) : .float32, c.shape(0))]
        }
        table["DynamicQuantizeLinear"] = { c in
            [InferredOutput(.uint8, c.shape(0)), InferredOutput(.float32, []), InferredOutput(.uint8, [])]
        }
        table["MatMulInteger"] = { c in
            [InferredOutput(.int32, try matMul(c.picking([0, 1]))[0].type.staticShape ?? [])]
        }
        table["ConvInteger"] = { c in
            [InferredOutput(.int32, try conv(c.picking([0, 1]))[0].type.staticShape ?? [])]
        }
        table["QLinearMatMul"] = { c in
            [
                InferredOutput(
                    c.has(7) ? c.dataType(7) : .uint8, try matMul(c.picking([0, 3]))[0].type.staticShape ?? [])
            ]
        }
        table["QLinearConv"] = { c in
            [InferredOutput(c.has(7) ? c.dataType(7) : .uint8, try conv(c.picking([0, 3]))[0].type.staticShape ?? [])]
        }
        for op in ["com.microsoft::QLinearAdd", "com.microsoft::QLinearMul"] {
            table[op] = { c in [InferredOutput(c.dataType(0), try broadcast(c.shape(0), c.shape(3), c))] }
        }
        table["com.microsoft::QLinearGlobalAveragePool"] = { c in
            let x = c.shape(0)
            guard x.count >= 3 else { throw c.fail("QLinearGlobalAveragePool needs a rank-3 or higher input") }
            let channelsLast = (c.node.int("channels_last") ?? 0) != 0
            let shape =
                channelsLast
                ? [x[0]] + Array(repeating: 1, count: x.count - 2) + [x[x.count - 1]]
                : [x[0], x[1]] + Array(repeating: 1, count: x.count - 2)
            return [InferredOutput(c.dataType(0), shape)]
        }
    }

    /// The output type: the zero point's, else `output_dtype` (opset 21), else uint8.
    static func quantizeLinear(_ c: ShapeContext) throws -> [InferredOutput] {
        var type = DataType.uint8
        if c.has(2) {
            type = c.dataType(2)
        } else if let raw = c.node.int("output_dtype"), raw != 0 {
            guard let declared = DataType(rawValue: Int32(truncatingIfNeeded: raw)) else {
                throw c.fail("attribute 'output_dtype' is not a known data type")
            }
            type = declared
        }
        return [InferredOutput(type, c.shape(0))]
    }
}

extension ShapeContext {
    /// The same node seen through some of its inputs only, in the given order (for rules that reuse
    /// another op's rule on a subset of inputs).
    func picking(_ slots: [Int]) -> ShapeContext {
        var node = self.node
        node.inputs = slots.map { $0 < node.inputs.count ? node.inputs[$0] : nil }
        return ShapeContext(
            node: node, nodeIndex: nodeIndex, opset: opset,
            inputTypes: slots.map { $0 < inputTypes.count ? inputTypes[$0] : nil },
            inputValues: slots.map { $0 < inputValues.count ? inputValues[$0] : nil },
            inputConstants: slots.map { $0 < inputConstants.count ? inputConstants[$0] : nil })
    }
}
