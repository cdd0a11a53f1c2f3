import Diagnostics
import ModelIR

/// Quantized int8/uint8 operators: QuantizeLinear, DequantizeLinear,
/// DynamicQuantizeLinear, MatMulInteger, ConvInteger, QLinearMatMul,
/// QLinearConv and com.microsoft's QLinearAdd/QLinearMul. Integer products
/// accumulate in int32; every float step is the one ONNX Runtime's CPU
/// kernels take (x / scale then round half to even; scale products formed as
/// `a_scale * b_scale / y_scale`), so results match it bit for bit.
enum QuantizationLowerings {
    /// The smallest and largest value of a quantized element type.
    static func range(_ type: DataType) -> (Int, Int)? {
        switch type {
        case .uint8: return (0, 255)
        case .int8: return (-128, 127)
        case .uint16: return (0, 65535)
        case .int16: return (-32768, 32767)
        case .int32: return (Int(Int32.min), Int(Int32.max))
        default: return nil
        }
    }

    /// A C expression reading element `index` of an optional per-tensor or per-channel parameter
    /// (scale or zero point), `fallback` when the input is omitted.
    static func parameter(_ c: inout LoweringContext, _ id: ValueID?, index: String, fallback: String) -> String {
        guard let id else { return fallback }
        let pointer = c.pointer(id)
        return c.count(id) <= 1 ? "\(pointer)[0]" : "\(pointer)[\(index)]"
    }

    /// Checks that a per-axis parameter has one element or one per element of `dim`.
    static func requirePerAxis(
        _ c: LoweringContext, _ node: Node, _ index: Int, _ id: ValueID?, dim: Int, what: String
    ) throws {
        guard let id else { return }
        let count = c.count(id)
        guard count == 1 || count == dim else {
            throw c.notImplemented(
                node, index, "\(what) has \(count) elements; Kiln supports one, or one per channel (\(dim))")
        }
    }

    /// The quantized output type's bounds as C float literals.
    static func bounds(_ c: LoweringContext, _ node: Node, _ index: Int, _ type: DataType) throws -> (String, String) {
        guard let (low, high) = range(type), type != .int32 else {
            throw c.notImplemented(
                node, index, "quantizing to \(type.name) (uint8, int8, uint16 and int16 are supported)")
        }
        return ("\(low).0f", "\(high).0f")
    }

    /// The axis a per-axis parameter runs along, and the element counts after it.
    static func axisLayout(_ shape: [Int], axis: Int) -> (dim: Int, inner: Int) {
        guard !shape.isEmpty else { return (1, 1) }
        let normalized = axis < 0 ? axis + shape.count : axis
        let clamped = min(max(normalized, 0), shape.count - 1)
        return (shape[clamped], shape[(clamped + 1)...].reduce(1, *))
    }

    static func rejectBlocked(_ c: LoweringContext, _ node: Node, _ index: Int) throws {
        if let block = node.int("block_size"), block > 0 {
            throw c.notImplemented(node, index, "blocked quantization (block_size \(block)) is not supported")
        }
    }

    /// y = saturate(round_half_even(x / scale) + zero_point), per tensor or per axis.
    static func lowerQuantizeLinear(_ c: inout LoweringContext, _ node: Node, _ index: Int) throws {
        guard let x = node.inputs[0], let y = node.outputs[0], node.inputs.count > 1, let scale = node.inputs[1] else {
            return
        }
        try rejectBlocked(c, node, index)
        let zero = node.inputs.count > 2 ? node.inputs[2] : nil
        let (dim, inner) = axisLayout(c.shape(x), axis: node.int("axis") ?? 1)
        try requirePerAxis(c, node, index, scale, dim: dim, what: "the scale")
        try requirePerAxis(c, node, index, zero, dim: dim, what: "the zero point")
        let (low, high) = try bounds(c, node, index, c.dataType(y))
        let channel = "(i / \(inner)) % \(dim)"
        let s = parameter(&c, scale, index: channel, fallback: "1.0f")
        let z = parameter(&c, zero, index: channel, fallback: "0")
        let (px, py) = (c.pointer(x), c.pointer(y))
        c.emit("  for (size_t i = 0; i < \(c.count(y)); i++) {")
        c.emit("    float v = nearbyint((float)\(px)[i] / \(s)) + (float)\(z);")
        c.emit("    \(py)[i] = (\(c.ctype(y)))(v < \(low) ? \(low) : v > \(high) ? \(high) : v); }")
    }

    /// y = (x - zero_point) * scale, the difference taken in int32 as ONNX Runtime does.
    static func lowerDequantizeLinear(_ c: inout LoweringContext, _ node: Node, _ index: Int) throws {
        guard let x = node.inputs[0], let y = node.outputs[0], node.inputs.count > 1, let scale = node.inputs[1] else {
            return
        }
        try rejectBlocked(c, node, index)
        guard c.dataType(y) == .float32 else {
            throw c.notImplemented(node, index, "dequantizing to \(c.dataType(y).name) (float32 is supported)")
        }
        let zero = node.inputs.count > 2 ? node.inputs[2] : nil
        let (dim, inner) = axisLayout(c.shape(x), axis: node.int("axis") ?? 1)
        try requirePerAxis(c, node, index, scale, dim: dim, what: "the scale")
        try requirePerAxis(c, node, index, zero, dim: dim, what: "the zero point")
        let channel = "(i / \(inner)) % \(dim)"
        let s = parameter(&c, scale, index: channel, fallback: "1.0f")
        let z = parameter(&c, zero, index: channel, fallback: "0")
        let (px, py) = (c.pointer(x), c.pointer(y))
        c.emit(
            "  for (size_t i = 0; i < \(c.count(y)); i++) \(py)[i] = (float)((int32_t)\(px)[i] - (int32_t)\(z)) * \(s);"
        )
    }

    /// uint8 quantization with a scale and zero point from the data's range (which always includes 0).
    static func lowerDynamicQuantizeLinear(_ c: inout LoweringContext, _ node: Node, _ index: Int) throws {
        guard let x = node.inputs[0], node.outputs.count == 3, let y = node.outputs[0] else { return }
        let (px, py) = (c.pointer(x), c.pointer(y))
        let scaleOut = node.outputs[1].map { c.pointer($0) }
        let zeroOut = node.outputs[2].map { c.pointer($0) }
        let count = c.count(x)
        c.emit("  { float lo = 0.0f, hi = 0.0f;")
        c.emit(
            "    for (size_t i = 0; i < \(count); i++) { float v = \(px)[i]; lo = v < lo ? v : lo; hi = v > hi ? v : hi; }"
        )
        c.emit("    float scale = hi == lo ? 1.0f : (hi - lo) / 255.0f;")
        c.emit("    float zf = 0.0f - lo / scale; zf = zf < 0.0f ? 0.0f : zf > 255.0f ? 255.0f : zf;")
        c.emit("    uint8_t zero = (uint8_t)nearbyint(zf);")
        if let scaleOut { c.emit("    \(scaleOut)[0] = scale;") }
        if let zeroOut { c.emit("    \(zeroOut)[0] = zero;") }
        c.emit("    for (size_t i = 0; i < \(c.count(y)); i++) {")
        c.emit("      float v = nearbyint(\(px)[i] / scale) + (float)zero;")
        c.emit("      \(py)[i] = (uint8_t)(v < 0.0f ? 0.0f : v > 255.0f ? 255.0f : v); } }")
    }

    // MARK: matrix products

    /// The operands of an integer product by role: MatMulInteger and ConvInteger take A, B and their zero
    /// points; QLinearMatMul and QLinearConv interleave scales, and add Y's scale and zero point (and
    /// QLinearConv an int32 bias).
    struct IntegerOperands {
        var a, aZero, b, bZero: ValueID?
        var aScale, bScale, yScale, yZero, bias: ValueID?

        init(_ node: Node) {
            func input(_ i: Int) -> ValueID? { i < node.inputs.count ? node.inputs[i] : nil }
            if node.opType.hasPrefix("QLinear") {
                (a, aScale, aZero, b, bScale, bZero) = (input(0), input(1), input(2), input(3), input(4), input(5))
                (yScale, yZero, bias) = (input(6), input(7), input(8))
            } else {
                (a, b, aZero, bZero) = (input(0), input(1), input(2), input(3))
            }
        }

        /// True when the int32 result is requantized (all three scales given).
        var requantized: Bool { aScale != nil && bScale != nil && yScale != nil }
    }

    /// MatMulInteger (int32 out) and QLinearMatMul (requantized), with batch broadcasting.
    static func lowerIntegerMatMul(_ c: inout LoweringContext, _ node: Node, _ index: Int) throws {
        let operands = IntegerOperands(node)
        guard let a = operands.a, let b = operands.b, let y = node.outputs[0] else { return }
        let batches = NeuralNetworkLowerings.matMulBatches(c.shape(a), c.shape(b))
        let (m, k, n) = (batches.m, batches.k, batches.n)
        try requirePerAxis(c, node, index, operands.aZero, dim: m, what: "A's zero point")
        try requirePerAxis(c, node, index, operands.bZero, dim: n, what: "B's zero point")
        try requirePerAxis(c, node, index, operands.aScale, dim: m, what: "A's scale")
        try requirePerAxis(c, node, index, operands.bScale, dim: n, what: "B's scale")
        let az = parameter(&c, operands.aZero, index: "r", fallback: "0")
        let bz = parameter(&c, operands.bZero, index: "j", fallback: "0")
        let (pa, pb, py) = (c.pointer(a), c.pointer(b), c.pointer(y))
        c.emitSizes("oa\(index)", batches.offsetsA)
        c.emitSizes("ob\(index)", batches.offsetsB)
        c.emit("  for (size_t t = 0; t < \(batches.total); t++)")
        c.emit("    for (size_t r = 0; r < \(m); r++) for (size_t j = 0; j < \(n); j++) {")
        c.emit("      int32_t acc = 0;")
        c.emit(
            "      for (size_t q = 0; q < \(k); q++) acc += ((int32_t)\(pa)[oa\(index)[t] + r * \(k) + q] - (int32_t)\(az)) * ((int32_t)\(pb)[ob\(index)[t] + q * \(n) + j] - (int32_t)\(bz));"
        )
        try emitResult(
            &c, node, index, operands, aIndex: "r", bIndex: "j", target: "\(py)[t * \(m * n) + r * \(n) + j]",
            type: c.dataType(y))
        c.emit("    }")
    }

    /// Stores the int32 `acc` at `target`: as it is (MatMulInteger, ConvInteger), or requantized with
    /// `a_scale[aIndex] * b_scale[bIndex] / y_scale` (QLinearMatMul, QLinearConv).
    static func emitResult(
        _ c: inout LoweringContext, _ node: Node, _ index: Int, _ operands: IntegerOperands, aIndex: String,
        bIndex: String, target: String, type: DataType
    ) throws {
        guard operands.requantized else {
            c.emit("      \(target) = acc;")
            return
        }
        let scale =
            "\(parameter(&c, operands.aScale, index: aIndex, fallback: "1.0f")) * \(parameter(&c, operands.bScale, index: bIndex, fallback: "1.0f")) / \(parameter(&c, operands.yScale, index: "0", fallback: "1.0f"))"
        try emitRequantize(
            &c, node, index, acc: "acc", scale: scale, zero: operands.yZero, target: target, type: type)
    }

    /// `target = saturate(round_half_even(acc * scale) + zero)`, as MLAS requantizes.
    static func emitRequantize(
        _ c: inout LoweringContext, _ node: Node, _ index: Int, acc: String, scale: String, zero: ValueID?,
        target: String, type: DataType
    ) throws {
        let (low, high) = try bounds(c, node, index, type)
        let z = parameter(&c, zero, index: "0", fallback: "0")
        c.emit("      { float zf = (float)\(z), v = (float)\(acc) * (\(scale));")
        c.emit("        v = v < \(low) - zf ? \(low) - zf : v > \(high) - zf ? \(high) - zf : v;")
        c.emit("        \(target) = (\(CSource.type(type)!))((int32_t)nearbyint(v) + (int32_t)zf); }")
    }

    // MARK: convolution

    /// ConvInteger (int32 out) and QLinearConv (requantized, optional int32 bias): a direct loop
    /// nest over 1 to 3 spatial dims; padding contributes zero (the zero point minus itself).
    static func lowerIntegerConv(_ c: inout LoweringContext, _ node: Node, _ index: Int) throws {
        let operands = IntegerOperands(node)
        guard let x = operands.a, let w = operands.b, let y = node.outputs[0] else { return }
        let (xs, ws, ys) = (c.shape(x), c.shape(w), c.shape(y))
        let spatial = xs.count - 2
        guard (1...3).contains(spatial) else {
            throw c.notImplemented(node, index, "convolution with \(spatial) spatial dims (1 to 3 are supported)")
        }
        let (kernel, strides, dilations) = NeuralNetworkLowerings.window(node, weight: ws, spatial: spatial)
        let (begin, _) = ConvolutionWindow.pads(
            node, input: Array(xs[2...]), output: Array(ys[2...]), kernel: kernel, strides: strides,
            dilations: dilations)
        let group = node.int("group") ?? 1
        let (channels, outChannels) = (xs[1] / group, ws[0] / group)
        try requirePerAxis(c, node, index, operands.aZero, dim: 1, what: "X's zero point")
        try requirePerAxis(c, node, index, operands.bZero, dim: ws[0], what: "W's zero point")
        try requirePerAxis(c, node, index, operands.bScale, dim: ws[0], what: "W's scale")
        func three(_ values: [Int], _ fill: Int) -> [Int] { Array(repeating: fill, count: 3 - values.count) + values }
        let (inp, out, ker) = (three(Array(xs[2...]), 1), three(Array(ys[2...]), 1), three(kernel, 1))
        let (st, di, pb) = (three(strides, 1), three(dilations, 1), three(begin, 0))
        let xz = parameter(&c, operands.aZero, index: "0", fallback: "0")
        let wz = parameter(&c, operands.bZero, index: "m", fallback: "0")
        let (px, pw, py) = (c.pointer(x), c.pointer(w), c.pointer(y))
        let inSize = inp.reduce(1, *)
        let outSize = out.reduce(1, *)
        let kSize = ker.reduce(1, *)
        c.emit("  for (size_t b = 0; b < \(xs[0]); b++) for (size_t m = 0; m < \(ws[0]); m++) {")
        c.emit("    size_t g = m / \(outChannels);")
        c.emit("    for (size_t o0 = 0; o0 < \(out[0]); o0++) for (size_t o1 = 0; o1 < \(out[1]); o1++)")
        c.emit("    for (size_t o2 = 0; o2 < \(out[2]); o2++) {")
        c.emit("      int32_t acc = 0;")
        c.emit("      for (size_t ic = 0; ic < \(channels); ic++) {")
        c.emit("        const \(c.ctype(x)) *xp = \(px) + (b * \(xs[1]) + g * \(channels) + ic) * \(inSize);")
        c.emit("        const \(c.ctype(w)) *wp = \(pw) + (m * \(channels) + ic) * \(kSize);")
        c.emit("        for (size_t k0 = 0; k0 < \(ker[0]); k0++) {")
        c.emit("          ptrdiff_t i0 = (ptrdiff_t)(o0 * \(st[0]) + k0 * \(di[0])) - \(pb[0]);")
        c.emit("          if (i0 < 0 || i0 >= \(inp[0])) continue;")
        c.emit("          for (size_t k1 = 0; k1 < \(ker[1]); k1++) {")
        c.emit("            ptrdiff_t i1 = (ptrdiff_t)(o1 * \(st[1]) + k1 * \(di[1])) - \(pb[1]);")
        c.emit("            if (i1 < 0 || i1 >= \(inp[1])) continue;")
        c.emit("            for (size_t k2 = 0; k2 < \(ker[2]); k2++) {")
        c.emit("              ptrdiff_t i2 = (ptrdiff_t)(o2 * \(st[2]) + k2 * \(di[2])) - \(pb[2]);")
        c.emit("              if (i2 < 0 || i2 >= \(inp[2])) continue;")
        c.emit(
            "              acc += ((int32_t)xp[(i0 * \(inp[1]) + i1) * \(inp[2]) + i2] - (int32_t)\(xz)) * ((int32_t)wp[(k0 * \(ker[1]) + k1) * \(ker[2]) + k2] - (int32_t)\(wz));"
        )
        c.emit("            } } } }")
        if operands.requantized, let bias = operands.bias { c.emit("      acc += \(c.pointer(bias))[m];") }
        try emitResult(
            &c, node, index, operands, aIndex: "0", bIndex: "m",
            target: "\(py)[(b * \(ws[0]) + m) * \(outSize) + (o0 * \(out[1]) + o1) * \(out[2]) + o2]",
            type: c.dataType(y))
        c.emit("    } }")
    }

    // MARK: com.microsoft

    /// QLinearAdd / QLinearMul: both operands dequantized, combined in float, requantized;
    /// the float steps follow ONNX Runtime's reference loop.
    static func lowerQLinearBinary(_ c: inout LoweringContext, _ node: Node, _ index: Int) throws {
        guard node.inputs.count >= 7, let a = node.inputs[0], let aScale = node.inputs[1], let b = node.inputs[3],
            let bScale = node.inputs[4], let cScale = node.inputs[6], let y = node.outputs[0]
        else {
            throw c.notImplemented(node, index, "\(node.opType) needs A, its scale, B, its scale and C's scale")
        }
        for id in [aScale, bScale, cScale] + [node.inputs[2], node.inputs[5]].compactMap({ $0 })
            + (node.inputs.count > 7 ? [node.inputs[7]].compactMap { $0 } : [])
        where c.count(id) != 1 {
            throw c.notImplemented(node, index, "\(node.opType) with per-channel scales or zero points")
        }
        let (low, high) = try bounds(c, node, index, c.dataType(y))
        let az = parameter(&c, node.inputs[2], index: "0", fallback: "0")
        let bz = parameter(&c, node.inputs[5], index: "0", fallback: "0")
        let cz = parameter(&c, node.inputs.count > 7 ? node.inputs[7] : nil, index: "0", fallback: "0")
        let (sa, sb, sc) = (c.pointer(aScale), c.pointer(bScale), c.pointer(cScale))
        let type = c.ctype(y)
        c.emit("  {")
        // No FMA contraction beyond the fused steps written out below.
        c.emit("#pragma clang fp contract(off)")
        let combine: (String, String) -> String
        if node.opType == "QLinearAdd" {
            // MLAS's x86 kernel: a·(sa/sc) + (b·(sb/sc) + (zc − (sa/sc)·za − (sb/sc)·zb)), fused multiply-adds.
            c.emit("  const float rac = \(sa)[0] / \(sc)[0], rbc = \(sb)[0] / \(sc)[0];")
            c.emit("  const float fixed = (float)\(cz) - __builtin_fmaf(rac, (float)\(az), rbc * (float)\(bz));")
            combine = { p, q in "__builtin_fmaf((float)\(p), rac, __builtin_fmaf((float)\(q), rbc, fixed))" }
        } else {
            combine = { p, q in
                "(\(sa)[0] * (float)((int32_t)\(p) - (int32_t)\(az))) * (\(sb)[0] * (float)((int32_t)\(q) - (int32_t)\(bz))) / \(sc)[0] + (float)\(cz)"
            }
        }
        c.emitElementwise(output: y, operands: [a, b]) { loads in
            "({ float v_ = nearbyint(\(combine(loads[0], loads[1]))); (\(type))(v_ < \(low) ? \(low) : v_ > \(high) ? \(high) : v_); })"
        }
        c.emit("  }")
    }
}

extension QuantizationLowerings {
    /// com.microsoft QLinearGlobalAveragePool (NCHW or channels-last): int32 sums of each channel minus its
    /// zero point, requantized with x_scale / (y_scale * pixels) as MLAS does.
    static func lowerQLinearGlobalAveragePool(_ c: inout LoweringContext, _ node: Node, _ index: Int) throws {
        guard node.inputs.count >= 4, let x = node.inputs[0], let xScale = node.inputs[1], let yScale = node.inputs[3],
            let y = node.outputs[0]
        else {
            throw c.notImplemented(node, index, "QLinearGlobalAveragePool needs X, its scale and Y's scale")
        }
        let xs = c.shape(x)
        guard xs.count >= 3 else { throw c.notImplemented(node, index, "an input of rank \(xs.count)") }
        let channelsLast = (node.int("channels_last") ?? 0) != 0
        let channels = channelsLast ? xs[xs.count - 1] : xs[1]
        let pixels = channelsLast ? xs[1..<(xs.count - 1)].reduce(1, *) : xs[2...].reduce(1, *)
        let xz = parameter(&c, node.inputs[2], index: "0", fallback: "0")
        let (px, py) = (c.pointer(x), c.pointer(y))
        let scale = "\(c.pointer(xScale))[0] / (\(c.pointer(yScale))[0] * (float)\(pixels))"
        let zero = node.inputs.count > 4 ? node.inputs[4] : nil
        let (pixelStride, channelStride) = channelsLast ? (channels, 1) : (1, pixels)
        c.emit("  for (size_t b = 0; b < \(xs[0]); b++) for (size_t m = 0; m < \(channels); m++) {")
        c.emit("    int32_t acc = -(int32_t)\(xz) * \(pixels);")
        c.emit(
            "    for (size_t p = 0; p < \(pixels); p++) acc += (int32_t)\(px)[b * \(channels * pixels) + m * \(channelStride) + p * \(pixelStride)];"
        )
        try emitRequantize(
            &c, node, index, acc: "acc", scale: scale, zero: zero, target: "\(py)[b * \(channels) + m]",
            type: c.dataType(y))
        c.emit("  }")
    }
}
