import Diagnostics
import ModelIR

/// Convolution, pooling, matrix products, normalisation and softmax: calls
/// into the kernel library with the node's static parameters.
enum NeuralNetworkLowerings {
    static func windowFields(
        _ c: inout LoweringContext, _ name: String, input: [Int], output: [Int], kernel: [Int], strides: [Int],
        dilations: [Int], padBegin: [Int], padEnd: [Int]?
    ) {
        func three(_ values: [Int]) -> String { CSource.sizes(values + Array(repeating: 1, count: 3 - values.count)) }
        c.emit("  \(name).spatial = \(kernel.count);")
        c.emit(
            "  { static const size_t in_[3] = \(three(input)), out_[3] = \(three(output)), k_[3] = \(three(kernel)),")
        c.emit(
            "      s_[3] = \(three(strides)), d_[3] = \(three(dilations)), pb_[3] = \(CSource.sizes(padBegin + Array(repeating: 0, count: 3 - padBegin.count)));"
        )
        c.emit(
            "    memcpy(\(name).in, in_, sizeof in_); memcpy(\(name).out, out_, sizeof out_); memcpy(\(name).kernel, k_, sizeof k_);"
        )
        c.emit(
            "    memcpy(\(name).stride, s_, sizeof s_); memcpy(\(name).dilation, d_, sizeof d_); memcpy(\(name).pad_begin, pb_, sizeof pb_);"
        )
        if let padEnd {
            c.emit(
                "    static const size_t pe_[3] = \(CSource.sizes(padEnd + Array(repeating: 0, count: 3 - padEnd.count)));"
            )
            c.emit("    memcpy(\(name).pad_end, pe_, sizeof pe_);")
        }
        c.emit("  }")
    }

    /// kernel_shape (default: the weight's spatial dims), strides and dilations (default 1).
    static func window(_ node: Node, weight: [Int], spatial: Int) -> (kernel: [Int], strides: [Int], dilations: [Int]) {
        (
            node.ints("kernel_shape") ?? Array(weight[2...]),
            node.ints("strides") ?? Array(repeating: 1, count: spatial),
            node.ints("dilations") ?? Array(repeating: 1, count: spatial)
        )
    }

    static func lowerConv(_ c: inout LoweringContext, _ node: Node, _ index: Int) throws {
        guard let x = node.inputs[0], let w = node.inputs[1], let y = node.outputs[0] else { return }
        let xs = c.shape(x)
        let ws = c.shape(w)
        let ys = c.shape(y)
        let spatial = xs.count - 2
        guard (1...3).contains(spatial) else {
            throw c.notImplemented(node, index, "convolution with \(spatial) spatial dims (1 to 3 are supported)")
        }
        let (kernel, strides, dilations) = window(node, weight: ws, spatial: spatial)
        let group = node.int("group") ?? 1
        let (begin, _) = ConvolutionWindow.pads(
            node, input: Array(xs[2...]), output: Array(ys[2...]), kernel: kernel, strides: strides,
            dilations: dilations)
        let bias = node.inputs.count > 2 ? node.inputs[2].map { c.pointer($0) } : nil
        let depth = (xs[1] / group) * kernel.reduce(1, *)
        c.scratchFloats = max(c.scratchFloats, depth * ys[2...].reduce(1, *))
        c.emit(
            "  { kk_conv_params p = {0}; p.batch = \(xs[0]); p.in_channels = \(xs[1]); p.out_channels = \(ws[0]); p.group = \(group);"
        )
        windowFields(
            &c, "p", input: Array(xs[2...]), output: Array(ys[2...]), kernel: kernel, strides: strides,
            dilations: dilations, padBegin: begin, padEnd: nil)
        // kiln::FusedConv (Passes/FuseConvEpilogue): a residual input, SiLU and a clamp, applied as y is stored.
        if node.inputs.count > 3, let residual = node.inputs[3] { c.emit("    p.residual = \(c.pointer(residual));") }
        if let lo = node.float("activation_min"), let hi = node.float("activation_max") {
            c.emit("    p.clamp = 1; p.lo = \(CSource.float(lo)); p.hi = \(CSource.float(hi));")
        }
        if node.int("silu") == 1 { c.emit("    p.special = KK_SPECIAL_SILU;") }
        c.emit("    KK(conv_f32)(&p, \(c.pointer(x)), \(c.pointer(w)), \(bias ?? "0"), \(c.pointer(y)), S); }")
    }

    static func lowerConvTranspose(_ c: inout LoweringContext, _ node: Node, _ index: Int) throws {
        guard let x = node.inputs[0], let w = node.inputs[1], let y = node.outputs[0] else { return }
        let xs = c.shape(x)
        let ws = c.shape(w)
        let ys = c.shape(y)
        let spatial = xs.count - 2
        guard (1...3).contains(spatial) else {
            throw c.notImplemented(node, index, "transposed convolution with \(spatial) spatial dims")
        }
        let (kernel, strides, dilations) = window(node, weight: ws, spatial: spatial)
        let group = node.int("group") ?? 1
        var begin = Array(repeating: 0, count: spatial)
        let autoPad = node.string("auto_pad") ?? "NOTSET"
        if let explicit = node.ints("pads"), autoPad == "NOTSET" || autoPad.isEmpty {
            begin = Array(explicit[0..<spatial])
        } else if autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER" || node.ints("output_shape") != nil {
            let outputPadding = node.ints("output_padding") ?? Array(repeating: 0, count: spatial)
            for axis in 0..<spatial {
                let total =
                    strides[axis] * (xs[axis + 2] - 1) + outputPadding[axis]
                    + ((kernel[axis] - 1) * dilations[axis] + 1) - ys[axis + 2]
                guard total >= 0 else {
                    throw c.notImplemented(
                        node, index, "ConvTranspose whose output_shape is larger than its natural output")
                }
                begin[axis] = autoPad == "SAME_UPPER" ? total / 2 : total - total / 2
            }
        }
        let bias = node.inputs.count > 2 ? node.inputs[2].map { c.pointer($0) } : nil
        c.emit(
            "  { kk_conv_params p = {0}; p.batch = \(xs[0]); p.in_channels = \(xs[1]); p.out_channels = \(ws[1] * group); p.group = \(group);"
        )
        windowFields(
            &c, "p", input: Array(xs[2...]), output: Array(ys[2...]), kernel: kernel, strides: strides,
            dilations: dilations, padBegin: begin, padEnd: nil)
        c.emit("    KK(conv_transpose_f32)(&p, \(c.pointer(x)), \(c.pointer(w)), \(bias ?? "0"), \(c.pointer(y))); }")
    }

    static func lowerPool(_ c: inout LoweringContext, _ node: Node, _ index: Int) throws {
        guard let x = node.inputs[0], let y = node.outputs[0] else { return }
        let xs = c.shape(x)
        let ys = c.shape(y)
        let spatial = xs.count - 2
        guard (1...3).contains(spatial), let kernel = node.ints("kernel_shape") else {
            throw c.notImplemented(node, index, "pooling with \(spatial) spatial dims (1 to 3 are supported)")
        }
        let strides = node.ints("strides") ?? Array(repeating: 1, count: spatial)
        let dilations = node.ints("dilations") ?? Array(repeating: 1, count: spatial)
        let (begin, end) = ConvolutionWindow.pads(
            node, input: Array(xs[2...]), output: Array(ys[2...]), kernel: kernel, strides: strides,
            dilations: dilations)
        let kind = ["MaxPool": 0, "AveragePool": 1, "LpPool": 2][node.opType]!
        if kind == 1, node.int("count_include_pad") == 1, node.int("ceil_mode") == 1,
            dilations.contains(where: { $0 > 1 })
        {
            throw c.notImplemented(node, index, "AveragePool with count_include_pad, ceil_mode and dilations together")
        }
        let indices = node.outputs.count > 1 ? node.outputs[1].map { c.pointer($0) } : nil
        c.emit("  { kk_pool_params p = {0}; p.batch = \(xs[0]); p.channels = \(xs[1]); p.kind = \(kind);")
        c.emit(
            "    p.count_include_pad = \(node.int("count_include_pad") ?? 0); p.p_norm = \(node.int("p") ?? 2); p.storage_order = \(node.int("storage_order") ?? 0);"
        )
        windowFields(
            &c, "p", input: Array(xs[2...]), output: Array(ys[2...]), kernel: kernel, strides: strides,
            dilations: dilations, padBegin: begin, padEnd: end)
        c.emit("    KK(pool_f32)(&p, \(c.pointer(x)), \(c.pointer(y)), \(indices ?? "0")); }")
    }

    static func lowerGlobalPool(_ c: inout LoweringContext, _ node: Node, _ index: Int) throws {
        guard let x = node.inputs[0], let y = node.outputs[0] else { return }
        let xs = c.shape(x)
        let planes = xs[0] * xs[1]
        let size = xs[2...].reduce(1, *)
        let (px, py) = (c.pointer(x), c.pointer(y))
        c.emit("  for (size_t p = 0; p < \(planes); p++) {")
        switch node.opType {
        case "GlobalMaxPool":
            c.emit(
                "    float m = -INFINITY; for (size_t i = 0; i < \(size); i++) m = \(px)[p * \(size) + i] > m ? \(px)[p * \(size) + i] : m;"
            )
            c.emit("    \(py)[p] = m; }")
        case "GlobalLpPool":
            let p = node.int("p") ?? 2
            c.emit(
                "    double s = 0; for (size_t i = 0; i < \(size); i++) s += pow(fabs((double)\(px)[p * \(size) + i]), \(p));"
            )
            c.emit("    \(py)[p] = (float)pow(s, 1.0 / \(p)); }")
        default:
            c.emit("    double s = 0; for (size_t i = 0; i < \(size); i++) s += \(px)[p * \(size) + i];")
            c.emit("    \(py)[p] = (float)(s / \(max(size, 1))); }")
        }
    }

    static func lowerGemm(_ c: inout LoweringContext, _ node: Node, _ index: Int) throws {
        guard let a = node.inputs[0], let b = node.inputs[1], let y = node.outputs[0] else { return }
        let transA = node.int("transA") == 1
        let transB = node.int("transB") == 1
        let (sa, sb, sy) = (c.shape(a), c.shape(b), c.shape(y))
        let (m, n) = (sy[0], sy[1])
        let k = transA ? sa[0] : sa[1]
        let alpha = node.float("alpha") ?? 1
        let beta = node.float("beta") ?? 1
        let gemm = c.dataType(a) == .float64 ? "dgemm" : "sgemm"
        let elementType = c.dataType(a)
        let literal: (Float) -> String = { CSource.literal(Double($0), as: elementType) }
        var betaUsed = literal(0)
        if node.inputs.count > 2, let bias = node.inputs[2], beta != 0 {
            c.emitElementwise(output: y, operands: [bias]) { $0[0] }
            betaUsed = literal(beta)
        }
        c.emit(
            "  KK(\(gemm))(\(transA ? 1 : 0), \(transB ? 1 : 0), \(m), \(n), \(k), \(literal(alpha)), \(c.pointer(a)), \(sa[1]), \(c.pointer(b)), \(sb[1]), \(betaUsed), \(c.pointer(y)), \(n));"
        )
    }

    /// MatMul's batch broadcasting: m, k, n, the number of products and each product's element offsets
    /// into A and B (1-D operands promoted as ONNX says).
    static func matMulBatches(_ shapeA: [Int], _ shapeB: [Int]) -> (
        m: Int, k: Int, n: Int, total: Int, offsetsA: [Int], offsetsB: [Int]
    ) {
        var sa = shapeA
        var sb = shapeB
        if sa.count == 1 { sa = [1] + sa }
        if sb.count == 1 { sb = sb + [1] }
        let (m, k, n) = (sa[sa.count - 2], sa[sa.count - 1], sb[sb.count - 1])
        let (batchA, batchB) = (Array(sa.dropLast(2)), Array(sb.dropLast(2)))
        let rank = max(batchA.count, batchB.count)
        let paddedA = Array(repeating: 1, count: rank - batchA.count) + batchA
        let paddedB = Array(repeating: 1, count: rank - batchB.count) + batchB
        let batch = zip(paddedA, paddedB).map { max($0, $1) }
        let total = batch.reduce(1, *)
        let offsetsA = batchOffsets(sa, batch: batch)
        let offsetsB = batchOffsets(sb, batch: batch)
        return (m, k, n, total, offsetsA, offsetsB)
    }

    /// For each product of a `batch`-shaped stack (row-major), where its matrix starts in an operand of
    /// `shape` (rank >= 2: batch dims, then the matrix), in elements; the operand's batch dims broadcast (size 1
    /// or missing on the left).
    static func batchOffsets(_ shape: [Int], batch: [Int]) -> [Int] {
        let matrix = shape.suffix(2).reduce(1, *)
        let own = Array(shape.dropLast(2))
        let padded = Array(repeating: 1, count: max(0, batch.count - own.count)) + own
        return (0..<batch.reduce(1, *)).map { flat in
            var (rest, offset, step) = (flat, 0, 1)
            for axis in stride(from: batch.count - 1, through: 0, by: -1) {
                let coordinate = rest % batch[axis]
                rest /= batch[axis]
                if padded[axis] != 1 { offset += coordinate * step }
                step *= padded[axis]
            }
            return offset * matrix
        }
    }

    /// kiln::Attention (Passes/FuseAttention.swift): softmax(scale · Q Kᵀ + mask) V by the fused kernel
    /// (gemm.c), every operand's batch dims broadcast to the scores'.
    static func lowerAttention(_ c: inout LoweringContext, _ node: Node, _ index: Int) throws {
        guard node.inputs.count >= 3, let q = node.inputs[0], let kt = node.inputs[1], let v = node.inputs[2],
            let y = node.outputs[0]
        else { return }
        let (qs, ks, vs) = (c.shape(q), c.shape(kt), c.shape(v))
        let (lq, d, lk, dv) = (qs[qs.count - 2], qs[qs.count - 1], ks[ks.count - 1], vs[vs.count - 1])
        let batch = Array(c.shape(y).dropLast(2))
        let batches = batch.reduce(1, *)
        c.emitSizes("aq\(index)", batchOffsets(qs, batch: batch))
        c.emitSizes("ak\(index)", batchOffsets(ks, batch: batch))
        c.emitSizes("av\(index)", batchOffsets(vs, batch: batch))
        let mask = node.inputs.count > 3 ? node.inputs[3] : nil
        var strides = (row: 0, column: 0)
        if let mask {
            let ms = Array(repeating: 1, count: max(0, 2 - c.shape(mask).count)) + c.shape(mask)
            c.emitSizes("am\(index)", batchOffsets(ms, batch: batch))
            strides = (ms[ms.count - 2] == 1 ? 0 : ms[ms.count - 1], ms[ms.count - 1] == 1 ? 0 : 1)
        }
        c.scratchFloats = max(c.scratchFloats, batches * lq * lk)
        let scale = CSource.float(node.float("scale") ?? 1)
        c.emit(
            "  { static const kk_attention_params p = {\(batches), \(lq), \(lk), \(d), \(dv), \(scale), aq\(index), ak\(index), av\(index), \(mask == nil ? "0" : "am\(index)"), \(strides.row), \(strides.column)};"
        )
        c.emit(
            "    KK(attention_f32)(&p, \(c.pointer(q)), \(c.pointer(kt)), \(c.pointer(v)), \(mask.map { c.pointer($0) } ?? "0"), \(c.pointer(y)), S); }"
        )
    }

    static func lowerMatMul(_ c: inout LoweringContext, _ node: Node, _ index: Int) throws {
        guard let a = node.inputs[0], let b = node.inputs[1], let y = node.outputs[0] else { return }
        let (m, k, n, total, offsetsA, offsetsB) = matMulBatches(c.shape(a), c.shape(b))
        let gemm = c.dataType(a) == .float64 ? "dgemm" : "sgemm"
        let one = CSource.literal(1, as: c.dataType(a))
        let zero = CSource.literal(0, as: c.dataType(a))
        c.emitSizes("oa\(index)", offsetsA)
        c.emitSizes("ob\(index)", offsetsB)
        if gemm == "sgemm" && total > 1 {
            c.emit(
                "  KK(sgemm_batched)(\(total), \(m), \(n), \(k), \(c.pointer(a)), oa\(index), \(c.pointer(b)), ob\(index), \(c.pointer(y)));"
            )
            return
        }
        c.emit(
            "  for (size_t t = 0; t < \(total); t++) KK(\(gemm))(0, 0, \(m), \(n), \(k), \(one), \(c.pointer(a)) + oa\(index)[t], \(k), \(c.pointer(b)) + ob\(index)[t], \(n), \(zero), \(c.pointer(y)) + t * \(m * n), \(n));"
        )
    }

    /// kiln::FusedMatMul (Passes/FuseMatMulEpilogue.swift): x [..., K] times a constant W packed as
    /// [panels][1][K][32], run as a 1x1 NHWC convolution of x's rows as pixels (conv_nhwc.c), the column bias,
    /// residual and activation applied as its tiles are stored.
    static func lowerFusedMatMul(_ c: inout LoweringContext, _ node: Node, _ index: Int) throws {
        guard let x = node.inputs[0], let w = node.inputs[1], let y = node.outputs[0] else { return }
        let (k, n) = (c.shape(w)[2], c.shape(y).last ?? 0)
        let rows = n > 0 ? c.count(y) / n : 0
        c.scratchFloats = max(c.scratchFloats, k)
        c.emit("  { kk_conv_nhwc_params p = {0};")
        c.emit(
            "    p.batch = 1; p.in_h = 1; p.in_w = \(rows); p.in_c = \(k); p.out_h = 1; p.out_w = \(rows); p.out_c = \(n);"
        )
        c.emit(
            "    p.kernel_h = 1; p.kernel_w = 1; p.stride_h = 1; p.stride_w = 1; p.dilation_h = 1; p.dilation_w = 1;")
        if node.inputs.count > 3, let residual = node.inputs[3] { c.emit("    p.residual = \(c.pointer(residual));") }
        if node.int("gelu") == 1 { c.emit("    p.special = KK_SPECIAL_GELU;") }
        if node.int("silu") == 1 { c.emit("    p.special = KK_SPECIAL_SILU;") }
        if let lo = node.float("activation_min"), let hi = node.float("activation_max") {
            c.emit("    p.clamp = 1; p.lo = \(CSource.float(lo)); p.hi = \(CSource.float(hi));")
        }
        let bias = node.inputs.count > 2 ? node.inputs[2].map { c.pointer($0) } : nil
        c.emit("    KK(conv_nhwc_f32)(&p, \(c.pointer(x)), \(c.pointer(w)), \(bias ?? "0"), \(c.pointer(y)), S); }")
    }

    static func lowerBatchNorm(_ c: inout LoweringContext, _ node: Node, _ index: Int) throws {
        guard node.inputs.count >= 5, let x = node.inputs[0], let y = node.outputs[0] else { return }
        if node.int("training_mode") == 1 || node.outputs.dropFirst().contains(where: { $0 != nil }) {
            throw c.notImplemented(node, index, "BatchNormalization in training mode (only inference is compiled)")
        }
        let xs = c.shape(x)
        let spatial = xs.count > 2 ? xs[2...].reduce(1, *) : 1
        let args = node.inputs[1...4].map { $0.map { c.pointer($0) } ?? "0" }
        c.emit(
            "  KK(batch_norm_f32)(\(c.pointer(x)), \(args.joined(separator: ", ")), \(CSource.float(node.float("epsilon") ?? 1e-5)), \(xs[0]), \(xs.count > 1 ? xs[1] : 1), \(spatial), \(c.pointer(y)));"
        )
    }

    static func lowerLayerNorm(_ c: inout LoweringContext, _ node: Node, _ index: Int) throws {
        guard let x = node.inputs[0], let scale = node.inputs[1], let y = node.outputs[0] else { return }
        let xs = c.shape(x)
        var axis = node.int("axis") ?? -1
        if axis < 0 { axis += xs.count }
        let inner = xs[axis...].reduce(1, *)
        let outer = xs[..<axis].reduce(1, *)
        let bias = node.inputs.count > 2 ? node.inputs[2] : nil
        for operand in [scale] + (bias.map { [$0] } ?? []) where c.count(operand) != inner {
            throw c.notImplemented(node, index, "LayerNormalization with a scale or bias that broadcasts")
        }
        let mean = node.outputs.count > 1 ? node.outputs[1].map { c.pointer($0) } : nil
        let invStd = node.outputs.count > 2 ? node.outputs[2].map { c.pointer($0) } : nil
        c.emit(
            "  KK(layer_norm_f32)(\(c.pointer(x)), \(c.pointer(scale)), \(bias.map { c.pointer($0) } ?? "0"), \(CSource.float(node.float("epsilon") ?? 1e-5)), \(outer), \(inner), \(c.pointer(y)), \(mean ?? "0"), \(invStd ?? "0"));"
        )
    }

    static func lowerSoftmax(_ c: inout LoweringContext, _ node: Node, _ index: Int) throws {
        guard let x = node.inputs[0], let y = node.outputs[0] else { return }
        let xs = c.shape(x)
        let kind = ["Softmax": 0, "LogSoftmax": 1, "Hardmax": 2][node.opType]!
        var axis = node.int("axis") ?? (c.opset >= 13 ? -1 : 1)
        if axis < 0 { axis += xs.count }
        let (outer, length, inner): (Int, Int, Int)
        if c.opset >= 13 {
            (outer, length, inner) = (
                xs[..<axis].reduce(1, *), xs.isEmpty ? 1 : xs[axis], xs.isEmpty ? 1 : xs[(axis + 1)...].reduce(1, *)
            )
        } else {
            // Before opset 13 the input is coerced to 2-D at `axis`.
            (outer, length, inner) = (xs[..<axis].reduce(1, *), xs[axis...].reduce(1, *), 1)
        }
        let kernel = c.dataType(x) == .float64 ? "softmax_f64" : "softmax_f32"
        c.emit("  KK(\(kernel))(\(kind), \(c.pointer(x)), \(outer), \(length), \(inner), \(c.pointer(y)));")
    }

    static func lowerInstanceNorm(_ c: inout LoweringContext, _ node: Node, _ index: Int) throws {
        guard let x = node.inputs[0], let scale = node.inputs[1], let bias = node.inputs[2], let y = node.outputs[0]
        else {
            return
        }
        let xs = c.shape(x)
        let size = xs[2...].reduce(1, *)
        let eps = CSource.float(node.float("epsilon") ?? 1e-5)
        let (px, py, ps, pb) = (c.pointer(x), c.pointer(y), c.pointer(scale), c.pointer(bias))
        c.emit("  for (size_t p = 0; p < \(xs[0] * xs[1]); p++) { size_t ch = p % \(xs[1]);")
        c.emit(
            "    double m = 0, v = 0; for (size_t i = 0; i < \(size); i++) m += \(px)[p * \(size) + i]; m /= \(max(size, 1));"
        )
        c.emit(
            "    for (size_t i = 0; i < \(size); i++) { double d = \(px)[p * \(size) + i] - m; v += d * d; } v /= \(max(size, 1));"
        )
        c.emit("    double inv = 1.0 / sqrt(v + \(eps));")
        c.emit(
            "    for (size_t i = 0; i < \(size); i++) \(py)[p * \(size) + i] = (float)((\(px)[p * \(size) + i] - m) * inv * \(ps)[ch] + \(pb)[ch]); }"
        )
    }
}
