import Diagnostics
import ModelIR

/// Ops that pick or rearrange elements by a pattern fixed at compile time
/// (or by index tensors): TopK, GatherND, DepthToSpace, SpaceToDepth,
/// ReverseSequence, OneHot, CenterCropPad, MaxUnpool.
enum RearrangingLowerings {
    typealias I = IndexingLowerings

    /// TopK: a stable insertion sort of each lane's indexes (ties keep the lower index first, as ONNX asks).
    static func lowerTopK(_ c: inout LoweringContext, _ node: Node, _ index: Int) throws {
        guard let x = node.inputs[0], let values = node.outputs[0], let indices = node.outputs[1] else { return }
        let xs = c.shape(x)
        var axis = node.int("axis") ?? -1
        if axis < 0 { axis += xs.count }
        let k = c.shape(values)[axis]
        let (length, outer, inner) = (xs[axis], xs[..<axis].reduce(1, *), xs[(axis + 1)...].reduce(1, *))
        guard k > 0, length > 0 else { return }
        // The lane's index list lives in scratch (as int64: two floats each).
        c.scratchFloats = max(c.scratchFloats, length * 2)
        let largest = (node.int("largest") ?? 1) == 1
        let (px, pv, pi) = (c.pointer(x), c.pointer(values), c.pointer(indices))
        // NaN sorts as the largest value, as ONNX Runtime does.
        let before =
            largest
            ? "(a != a ? b == b : a > b)"
            : "(b != b ? a == a : a < b)"
        c.emit("  { int64_t *ix = (int64_t *)S;")
        c.emit("    for (size_t o = 0; o < \(outer); o++) for (size_t j = 0; j < \(inner); j++) {")
        c.emit("      const \(c.ctype(x)) *lane = \(px) + o * \(length * inner) + j;")
        c.emit("      for (size_t n = 0; n < \(length); n++) { size_t at = n; \(c.ctype(x)) a = lane[n * \(inner)];")
        c.emit(
            "        while (at > 0) { \(c.ctype(x)) b = lane[ix[at - 1] * \(inner)]; if (!\(before)) break; ix[at] = ix[at - 1]; at--; }"
        )
        c.emit("        ix[at] = (int64_t)n; }")
        c.emit(
            "      for (size_t n = 0; n < \(k); n++) { size_t to = o * \(k * inner) + n * \(inner) + j; \(pv)[to] = lane[ix[n] * \(inner)]; \(pi)[to] = ix[n]; }"
        )
        c.emit("    } }")
    }

    static func lowerGatherND(_ c: inout LoweringContext, _ node: Node, _ index: Int) throws {
        guard let data = node.inputs[0], let indices = node.inputs[1], let y = node.outputs[0] else { return }
        let ds = c.shape(data)
        let ishape = c.shape(indices)
        let batchDims = node.int("batch_dims") ?? 0
        let depth = ishape.last ?? 0
        let batches = ishape[..<batchDims].reduce(1, *)
        let perBatch = ishape[batchDims..<(ishape.count - 1)].reduce(1, *)
        let slice = ds[(batchDims + depth)...].reduce(1, *)
        let batchSize = ds[batchDims...].reduce(1, *)
        let strides = rowMajorStrides(ds)
        let (pd, pi, py) = (c.pointer(data), c.pointer(indices), c.pointer(y))
        guard batches * perBatch * slice > 0 else { return }
        c.emit("  for (size_t b = 0; b < \(batches); b++) for (size_t n = 0; n < \(perBatch); n++) {")
        c.emit("    size_t row = b * \(perBatch) + n, o = b * \(batchSize);")
        I.emitTupleOffset(
            &c, indices: pi, row: "row", dims: ds[batchDims..<(batchDims + depth)],
            strides: strides[batchDims..<(batchDims + depth)])
        c.emit("    for (size_t j = 0; j < \(slice); j++) \(py)[row * \(slice) + j] = \(pd)[o + j]; }")
    }

    /// DepthToSpace (DCR and CRD) and SpaceToDepth: a gather whose source index is a formula of the output's.
    static func lowerDepthSpace(_ c: inout LoweringContext, _ node: Node, _ index: Int) throws {
        guard let x = node.inputs[0], let y = node.outputs[0] else { return }
        let xs = c.shape(x)
        let ys = c.shape(y)
        let b = node.int("blocksize") ?? 1
        let (px, py) = (c.pointer(x), c.pointer(y))
        let source: String
        if node.opType == "DepthToSpace" {
            let channel =
                (node.string("mode") ?? "DCR") == "CRD"
                ? "c1 * \(b * b) + (c2 % \(b)) * \(b) + c3 % \(b)"
                : "((c2 % \(b)) * \(b) + c3 % \(b)) * \(ys[1]) + c1"
            source = "((c0 * \(xs[1]) + (\(channel))) * \(xs[2]) + c2 / \(b)) * \(xs[3]) + c3 / \(b)"
        } else {
            // y[n, (i * b + j) * C + c, h, w] = x[n, c, h * b + i, w * b + j]
            let (channel, block) = ("c1 % \(xs[1])", "c1 / \(xs[1])")
            source =
                "((c0 * \(xs[1]) + \(channel)) * \(xs[2]) + c2 * \(b) + (\(block)) / \(b)) * \(xs[3]) + c3 * \(b) + (\(block)) % \(b)"
        }
        I.emitCoordinates(&c, ys, "\(py)[i] = \(px)[\(source)];")
    }

    static func lowerReverseSequence(_ c: inout LoweringContext, _ node: Node, _ index: Int) throws {
        guard let x = node.inputs[0], let lengths = node.inputs[1], let y = node.outputs[0] else { return }
        let xs = c.shape(x)
        let batchAxis = node.int("batch_axis") ?? 1
        let timeAxis = node.int("time_axis") ?? 0
        let timeStride = rowMajorStrides(xs)[timeAxis]
        let (px, pl, py) = (c.pointer(x), c.pointer(lengths), c.pointer(y))
        I.emitCoordinates(
            &c, xs,
            "int64_t length = \(pl)[c\(batchAxis)]; if (length < 0 || length > \(xs[timeAxis])) return 2; int64_t t = (int64_t)c\(timeAxis) < length ? length - 1 - (int64_t)c\(timeAxis) : (int64_t)c\(timeAxis); \(py)[i] = \(px)[(int64_t)i + (t - (int64_t)c\(timeAxis)) * \(timeStride)];"
        )
    }

    static func lowerOneHot(_ c: inout LoweringContext, _ node: Node, _ index: Int) throws {
        guard let indices = node.inputs[0], let values = node.inputs[2], let y = node.outputs[0] else { return }
        let ys = c.shape(y)
        var axis = node.int("axis") ?? -1
        if axis < 0 { axis += ys.count }
        let depth = ys[axis]
        let indexStrides = rowMajorStrides(c.shape(indices))
        var terms: [String] = []
        for (position, outAxis) in ys.indices.filter({ $0 != axis }).enumerated() {
            terms.append("c\(outAxis) * \(indexStrides[position])")
        }
        let (pi, pv, py) = (c.pointer(indices), c.pointer(values), c.pointer(y))
        I.emitCoordinates(
            &c, ys,
            "int64_t k = (int64_t)\(pi)[\(terms.isEmpty ? "0" : terms.joined(separator: " + "))]; if (k < 0) k += \(depth); \(py)[i] = k == (int64_t)c\(axis) ? \(pv)[1] : \(pv)[0];"
        )
    }

    /// CenterCropPad: each output coordinate reads the input shifted by the crop (or pad) offset, zero outside.
    static func lowerCenterCropPad(_ c: inout LoweringContext, _ node: Node, _ index: Int) throws {
        guard let x = node.inputs[0], let y = node.outputs[0] else { return }
        let xs = c.shape(x)
        let ys = c.shape(y)
        let strides = rowMajorStrides(xs)
        var terms: [String] = []
        var inside: [String] = []
        for axis in xs.indices {
            // Cropping starts at floor((in - out) / 2); padding puts floor((out - in) / 2) before.
            let shift = xs[axis] >= ys[axis] ? (xs[axis] - ys[axis]) / 2 : -((ys[axis] - xs[axis]) / 2)
            let coordinate = "((int64_t)c\(axis) + \(shift))"
            if xs[axis] < ys[axis] { inside.append("\(coordinate) >= 0 && \(coordinate) < \(xs[axis])") }
            terms.append("\(coordinate) * \(strides[axis])")
        }
        let (px, py) = (c.pointer(x), c.pointer(y))
        let read = "\(px)[\(terms.isEmpty ? "0" : terms.joined(separator: " + "))]"
        I.emitCoordinates(
            &c, ys, "\(py)[i] = \(inside.isEmpty ? read : "(\(inside.joined(separator: " && "))) ? \(read) : 0");")
    }

    /// MaxUnpool: zeros, then each input value at the position its index names in the unpooled shape the
    /// attributes give; a larger output_shape keeps that block at its origin, as ONNX's reference does.
    static func lowerMaxUnpool(_ c: inout LoweringContext, _ node: Node, _ index: Int) throws {
        guard let x = node.inputs[0], let indices = node.inputs[1], let y = node.outputs[0] else { return }
        let xs = c.shape(x)
        let ys = c.shape(y)
        let kernel = node.ints("kernel_shape") ?? []
        let spatial = kernel.count
        let strides = node.ints("strides") ?? Array(repeating: 1, count: spatial)
        let pads = node.ints("pads") ?? Array(repeating: 0, count: spatial * 2)
        let natural =
            [xs[0], xs[1]]
            + (0..<spatial).map { (xs[$0 + 2] - 1) * strides[$0] + kernel[$0] - pads[$0] - pads[$0 + spatial] }
        guard zip(natural, ys).allSatisfy({ $0 <= $1 }) else {
            throw c.notImplemented(node, index, "MaxUnpool whose output_shape is smaller than the unpooled shape")
        }
        let total = elementCount(natural) ?? 0
        let (px, pi, py) = (c.pointer(x), c.pointer(indices), c.pointer(y))
        c.emit("  memset(\(py), 0, \(c.count(y) * (c.dataType(y).byteSize ?? 1)));")
        let naturalStrides = rowMajorStrides(natural)
        let outStrides = rowMajorStrides(ys)
        let target = natural.indices.map { "((size_t)k / \(naturalStrides[$0]) % \(natural[$0])) * \(outStrides[$0])" }
        c.emit(
            "  for (size_t i = 0; i < \(c.count(x)); i++) { int64_t k = \(pi)[i]; if (k < 0 || k >= \(total)) return 2; \(py)[\(natural == ys ? "k" : target.joined(separator: " + "))] = \(px)[i]; }"
        )
    }
}
