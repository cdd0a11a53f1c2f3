import Diagnostics
import ModelIR

/// Elementwise operators: each is a C expression over the operands' elements,
/// put in a loop nest that broadcasts them (`LoweringContext.emitElementwise`).
enum ElementwiseLowerings {
    typealias Expression = @Sendable (_ x: String, _ node: Node, _ type: DataType) -> String

    static let floats: Set<DataType> = [.float32, .float64]
    static let signedIntegers: Set<DataType> = [.int8, .int16, .int32, .int64]
    static let integers: Set<DataType> = signedIntegers.union([.uint8, .uint16, .uint32, .uint64])
    static let numeric = floats.union(integers)

    static func attribute(_ node: Node, _ name: String, _ fallback: Float) -> String {
        CSource.float(node.float(name) ?? fallback)
    }

    /// Unary ops: name → (types, expression of `x`).
    static let unary: [String: (Set<DataType>, Expression)] = [
        "Relu": (numeric, { x, _, _ in "(\(x) > 0 ? \(x) : 0)" }),
        "Neg": (floats.union(signedIntegers), { x, _, _ in "(-\(x))" }),
        "Abs": (numeric, { x, _, _ in "(\(x) < 0 ? -\(x) : \(x))" }),
        "Sign": (numeric, { x, _, _ in "((\(x) > 0) - (\(x) < 0))" }),
        "Exp": (floats, { x, _, type in type == .float32 ? "kk_expf(\(x))" : "exp(\(x))" }),
        "Log": (floats, { x, _, _ in "log(\(x))" }),
        "Sqrt": (floats, { x, _, _ in "sqrt(\(x))" }),
        "Sin": (floats, { x, _, _ in "sin(\(x))" }),
        "Cos": (floats, { x, _, _ in "cos(\(x))" }),
        "Tan": (floats, { x, _, _ in "tan(\(x))" }),
        "Asin": (floats, { x, _, _ in "asin(\(x))" }),
        "Acos": (floats, { x, _, _ in "acos(\(x))" }),
        "Atan": (floats, { x, _, _ in "atan(\(x))" }),
        "Sinh": (floats, { x, _, _ in "sinh(\(x))" }),
        "Cosh": (floats, { x, _, _ in "cosh(\(x))" }),
        "Asinh": (floats, { x, _, _ in "asinh(\(x))" }),
        "Acosh": (floats, { x, _, _ in "acosh(\(x))" }),
        "Atanh": (floats, { x, _, _ in "atanh(\(x))" }),
        "Erf": (floats, { x, _, type in type == .float32 ? "kk_erff(\(x))" : "erf(\(x))" }),
        "Floor": (floats, { x, _, _ in "floor(\(x))" }),
        "Ceil": (floats, { x, _, _ in "ceil(\(x))" }),
        // nearbyint rounds half to even in the default rounding mode, as ONNX's Round does.
        "Round": (floats, { x, _, _ in "nearbyint(\(x))" }),
        "Reciprocal": (floats, { x, _, _ in "(1 / \(x))" }),
        "Sigmoid": (
            floats, { x, _, type in type == .float32 ? "(1 / (1 + kk_expf(-\(x))))" : "(1 / (1 + exp(-\(x))))" }
        ),
        "Tanh": (floats, { x, _, _ in "tanh(\(x))" }),
        "Softplus": (floats, { x, _, _ in "(\(x) > 0 ? \(x) + log1p(exp(-\(x))) : log1p(exp(\(x))))" }),
        "Softsign": (floats, { x, _, _ in "(\(x) / (1 + fabs(\(x))))" }),
        "LeakyRelu": (floats, { x, node, _ in "(\(x) >= 0 ? \(x) : \(attribute(node, "alpha", 0.01)) * \(x))" }),
        "Elu": (floats, { x, node, _ in "(\(x) >= 0 ? \(x) : \(attribute(node, "alpha", 1)) * expm1(\(x)))" }),
        "Selu": (
            floats,
            { x, node, _ in
                let alpha = attribute(node, "alpha", 1.67326319217681884765625)
                let gamma = attribute(node, "gamma", 1.05070102214813232421875)
                return "(\(gamma) * (\(x) > 0 ? \(x) : \(alpha) * expm1(\(x))))"
            }
        ),
        "Celu": (
            floats,
            { x, node, _ in
                let alpha = attribute(node, "alpha", 1)
                return "(fmax(0, \(x)) + fmin(0, \(alpha) * expm1(\(x) / \(alpha))))"
            }
        ),
        "ThresholdedRelu": (floats, { x, node, _ in "(\(x) > \(attribute(node, "alpha", 1)) ? \(x) : 0)" }),
        "Shrink": (
            floats,
            { x, node, _ in
                let lambd = attribute(node, "lambd", 0.5)
                let bias = attribute(node, "bias", 0)
                return "(\(x) < -\(lambd) ? \(x) + \(bias) : (\(x) > \(lambd) ? \(x) - \(bias) : 0))"
            }
        ),
        "HardSigmoid": (
            floats,
            { x, node, _ in
                "fmax(0, fmin(1, \(attribute(node, "alpha", 0.2)) * \(x) + \(attribute(node, "beta", 0.5))))"
            }
        ),
        "HardSwish": (floats, { x, _, _ in "(\(x) * fmax(0, fmin(1, \(x) / 6 + 0.5f)))" }),
        "Gelu": (
            floats,
            { x, node, type in
                node.string("approximate") == "tanh"
                    ? "(0.5f * \(x) * (1 + tanh(0.7978845608028654 * (\(x) + 0.044715 * \(x) * \(x) * \(x)))))"
                    : type == .float32
                        ? "kk_gelu(\(x))" : "(0.5f * \(x) * (1 + erf(\(x) * 0.70710678118654752440)))"
            }
        ),
        "Mish": (floats, { x, _, _ in "(\(x) * tanh(\(x) > 0 ? \(x) + log1p(exp(-\(x))) : log1p(exp(\(x)))))" }),
        "Not": ([.bool], { x, _, _ in "(!\(x))" }),
        "BitwiseNot": (integers, { x, _, type in "((\(CSource.type(type)!))~\(x))" }),
        "IsNaN": (floats.union([.float16]), { x, _, _ in "(isnan(\(x)) != 0)" }),
        "IsInf": (
            floats.union([.float16]),
            { x, node, _ in
                let negative = (node.int("detect_negative") ?? 1) == 1
                let positive = (node.int("detect_positive") ?? 1) == 1
                return "(isinf(\(x)) && ((\(x) > 0 && \(positive ? 1 : 0)) || (\(x) < 0 && \(negative ? 1 : 0))))"
            }
        ),
    ]

    typealias Binary = @Sendable (_ a: String, _ b: String, _ node: Node, _ type: DataType) -> String

    /// Binary ops with broadcasting: name → (types of input 0, expression).
    static let binary: [String: (Set<DataType>, Binary)] = [
        "Add": (numeric, { a, b, _, _ in "(\(a) + \(b))" }),
        "Sub": (numeric, { a, b, _, _ in "(\(a) - \(b))" }),
        "Mul": (numeric, { a, b, _, _ in "(\(a) * \(b))" }),
        "Div": (
            numeric,
            { a, b, _, type in
                // Integer division by zero is undefined in C; ONNX leaves it undefined too: give 0, never trap.
                type.isInteger ? "(\(b) == 0 ? 0 : \(a) / \(b))" : "(\(a) / \(b))"
            }
        ),
        "Pow": (numeric, { a, b, _, type in type.isInteger ? "pow((double)\(a), (double)\(b))" : "pow(\(a), \(b))" }),
        // fmod is exact, so float16 operands give float16's exact answer.
        "Mod": (
            numeric.union([.float16]),
            { a, b, node, type in
                // tgmath has no float16 overload: compute it in float (exact for fmod).
                if type == .float16 { return "fmod((float)\(a), (float)\(b))" }
                if node.int("fmod") == 1 || !type.isInteger { return "fmod(\(a), \(b))" }
                // Integer Mod takes the divisor's sign, like Python's %.
                return
                    "(\(b) == 0 ? 0 : ((\(a) % \(b)) != 0 && ((\(a) % \(b)) < 0) != (\(b) < 0) ? (\(a) % \(b)) + \(b) : (\(a) % \(b))))"
            }
        ),
        "PRelu": (numeric, { a, b, _, _ in "(\(a) < 0 ? \(b) * \(a) : \(a))" }),
        "Equal": (numeric.union([.bool]), { a, b, _, _ in "(\(a) == \(b))" }),
        "Less": (numeric, { a, b, _, _ in "(\(a) < \(b))" }),
        "Greater": (numeric, { a, b, _, _ in "(\(a) > \(b))" }),
        "LessOrEqual": (numeric, { a, b, _, _ in "(\(a) <= \(b))" }),
        "GreaterOrEqual": (numeric, { a, b, _, _ in "(\(a) >= \(b))" }),
        "And": ([.bool], { a, b, _, _ in "(\(a) && \(b))" }),
        "Or": ([.bool], { a, b, _, _ in "(\(a) || \(b))" }),
        "Xor": ([.bool], { a, b, _, _ in "((\(a) != 0) != (\(b) != 0))" }),
        "BitwiseAnd": (integers, { a, b, _, _ in "(\(a) & \(b))" }),
        "BitwiseOr": (integers, { a, b, _, _ in "(\(a) | \(b))" }),
        "BitwiseXor": (integers, { a, b, _, _ in "(\(a) ^ \(b))" }),
        "BitShift": (
            [.uint8, .uint16, .uint32, .uint64],
            { a, b, node, type in
                let bits = (type.byteSize ?? 8) * 8
                let shift = node.string("direction") == "LEFT" ? "<<" : ">>"
                return "(\(b) >= \(bits) ? 0 : (\(CSource.type(type)!))(\(a) \(shift) \(b)))"
            }
        ),
    ]

    static func lowerUnary(_ c: inout LoweringContext, _ node: Node, _ index: Int) throws {
        guard let (_, expression) = unary[node.opType], let x = node.inputs[0], let y = node.outputs[0] else { return }
        let type = c.dataType(x)
        c.emitElementwise(output: y, operands: [x], parallel: true) { expression($0[0], node, type) }
    }

    static func lowerBinary(_ c: inout LoweringContext, _ node: Node, _ index: Int) throws {
        guard let (_, expression) = binary[node.opType], let a = node.inputs[0], let b = node.inputs[1],
            let y = node.outputs[0]
        else { return }
        let type = c.dataType(a)
        c.emitElementwise(output: y, operands: [a, b], parallel: true) { expression($0[0], $0[1], node, type) }
    }

    /// kiln::FusedElementwise (Passes/FuseElementwise.swift): its body's nodes as locals of one loop over the
    /// output, each op's expression as its own lowering writes it.
    static func lowerFused(_ c: inout LoweringContext, _ node: Node, _ index: Int) throws {
        guard case .graph(let body)? = node.attributes["body"], let y = node.outputs[0], let result = body.outputs.first
        else { throw c.notImplemented(node, index, "a fused elementwise node without its body") }
        func op(_ inner: Node) -> String { inner.qualifiedOpType == "kiln::Gelu" ? "Gelu" : inner.opType }
        for inner in body.nodes where unary[op(inner)] == nil && binary[op(inner)] == nil {
            throw c.notImplemented(node, index, "\(inner.qualifiedOpType) inside a fused elementwise node")
        }
        c.emitElementwise(output: y, operands: node.inputs.compactMap { $0 }, parallel: true) { loads in
            var names = Dictionary(uniqueKeysWithValues: zip(body.inputs, loads))
            var statements: [String] = []
            for (step, inner) in body.nodes.enumerated() {
                let arguments = inner.inputs.map { names[$0!]! }
                let type = body[inner.outputs[0]!].type?.dataType ?? .float32
                let expression =
                    unary[op(inner)].map { $0.1(arguments[0], inner, type) }
                    ?? binary[op(inner)]!.1(arguments[0], arguments[1], inner, type)
                statements.append("\(CSource.type(type)!) t\(step) = \(expression);")
                names[inner.outputs[0]!] = "t\(step)"
            }
            return (statements, names[result]!)
        }
    }

    /// Sum, Mean, Max, Min over any number of broadcast inputs.
    static func lowerVariadic(_ c: inout LoweringContext, _ node: Node, _ index: Int) throws {
        guard let y = node.outputs[0] else { return }
        let inputs = node.inputs.compactMap { $0 }
        let type = c.dataType(inputs[0])
        let combine: (String, String) -> String
        switch node.opType {
        case "Max": combine = { "(\($0) >= \($1) || \($0) != \($0) ? \($0) : \($1))" }
        case "Min": combine = { "(\($0) <= \($1) || \($0) != \($0) ? \($0) : \($1))" }
        default: combine = { "(\($0) + \($1))" }
        }
        if inputs.count == 1 {
            c.emitElementwise(output: y, operands: inputs) { $0[0] }
        } else {
            c.emitElementwise(output: y, operands: [inputs[0], inputs[1]]) { combine($0[0], $0[1]) }
            for input in inputs.dropFirst(2) {
                c.emitElementwise(output: y, operands: [y, input]) { combine($0[0], $0[1]) }
            }
        }
        if node.opType == "Mean" {
            let divisor = CSource.literal(Double(inputs.count), as: type)
            c.emitElementwise(output: y, operands: [y]) { "(\($0[0]) / \(divisor))" }
        }
    }

    static func lowerWhere(_ c: inout LoweringContext, _ node: Node, _ index: Int) throws {
        guard let condition = node.inputs[0], let x = node.inputs[1], let other = node.inputs[2],
            let y = node.outputs[0]
        else { return }
        c.emitElementwise(output: y, operands: [condition, x, other]) { "(\($0[0]) ? \($0[1]) : \($0[2]))" }
    }

    static func lowerCast(_ c: inout LoweringContext, _ node: Node, _ index: Int) throws {
        guard let x = node.inputs[0], let y = node.outputs[0] else { return }
        let target = c.dataType(y)
        guard let targetType = CSource.type(target) else {
            throw KilnError.client(
                .unsupportedDataType, "node \(describe(node, index)): Cast to \(target.name) is not supported")
        }
        if target == .bool {
            c.emitElementwise(output: y, operands: [x]) { "(\($0[0]) != 0)" }
        } else {
            c.emitElementwise(output: y, operands: [x]) { "(\(targetType))\($0[0])" }
        }
    }

    static func lowerClip(_ c: inout LoweringContext, _ node: Node, _ index: Int) throws {
        guard let x = node.inputs[0], let y = node.outputs[0] else { return }
        let type = c.dataType(x)
        var low: String?
        var high: String?
        if c.opset < 11 {
            low = node.float("min").map { CSource.literal(Double($0), as: type) }
            high = node.float("max").map { CSource.literal(Double($0), as: type) }
        } else {
            if node.inputs.count > 1, let id = node.inputs[1] { low = "\(c.pointer(id))[0]" }
            if node.inputs.count > 2, let id = node.inputs[2] { high = "\(c.pointer(id))[0]" }
        }
        c.emitElementwise(output: y, operands: [x]) { operands in
            var value = operands[0]
            if let low { value = "(\(value) < \(low) ? \(low) : \(value))" }
            if let high { value = "(\(value) > \(high) ? \(high) : \(value))" }
            return value
        }
    }
}
