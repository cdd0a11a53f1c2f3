import Diagnostics
import ModelIR

/// Reshapes, transposes, slicing, concatenation, gathering and padding:
/// moves of bytes whose pattern is known at compile time.
enum DataMovementLowerings {
    static func elementSize(_ c: LoweringContext, _ id: ValueID) -> Int { c.dataType(id).byteSize ?? 1 }

    /// Reshape, Flatten, Squeeze, Unsqueeze, Identity, Dropout: the bytes do not change.
    static func lowerCopy(_ c: inout LoweringContext, _ node: Node, _ index: Int) throws {
        guard let x = node.inputs[0], let y = node.outputs[0] else { return }
        if node.opType == "Dropout", node.inputs.count > 2, let training = node.inputs[2],
            c.constantIntegers(training) != [0]
        {
            throw c.notImplemented(node, index, "Dropout in training mode (random masks are not compiled)")
        }
        c.emitCopy(from: x, to: y)
        if node.opType == "Dropout", node.outputs.count > 1, let mask = node.outputs[1] {
            c.emit("  memset(\(c.pointer(mask)), 1, \(c.count(mask)));")
        }
    }

    static func lowerTranspose(_ c: inout LoweringContext, _ node: Node, _ index: Int) throws {
        guard let x = node.inputs[0], let y = node.outputs[0] else { return }
        let xs = c.shape(x)
        let perm = node.ints("perm") ?? Array((0..<xs.count).reversed())
        guard xs.count <= 8 else { throw c.notImplemented(node, index, "Transpose of rank \(xs.count) (up to 8)") }
        guard !xs.isEmpty else { return c.emitCopy(from: x, to: y) }
        c.emit("  { static const size_t d[] = \(CSource.sizes(xs)), p[] = \(CSource.sizes(perm));")
        c.emit("    KK(transpose)(\(c.pointer(x)), \(c.pointer(y)), \(elementSize(c, x)), \(xs.count), d, p); }")
    }

    /// Concat: each row of the dims before `axis` gets every input's slab in turn. The rows are shared
    /// out over the runtime's threads from `KK_PARALLEL_ELEMENTS` elements: a channel Concat of NHWC
    /// activations reads what the convolutions before it wrote into both cores' caches. SqueezeNet's eight
    /// at 2 threads on the Zen 5 (`kiln bench --profile`): 0.111 ms in all on one thread, 0.060 shared.
    static func lowerConcat(_ c: inout LoweringContext, _ node: Node, _ index: Int) throws {
        guard let y = node.outputs[0] else { return }
        let ys = c.shape(y)
        var axis = node.int("axis") ?? 0
        if axis < 0 { axis += ys.count }
        let element = elementSize(c, y)
        let outer = ys[..<axis].reduce(1, *)
        let inner = ys[(axis + 1)...].reduce(1, *) * element
        let row = ys[axis] * inner
        var offset = 0
        var copies: [String] = []
        var pointers = [c.pointer(y)]
        for case let input? in node.inputs {
            let chunk = c.shape(input)[axis] * inner
            if chunk > 0 {
                copies.append(
                    "    memcpy(out + o * \(row) + \(offset), (const uint8_t *)p[\(pointers.count)] + o * \(chunk), \(chunk));"
                )
                pointers.append(c.pointer(input))
            }
            offset += chunk
        }
        guard !copies.isEmpty else { return }
        c.emitParallelRanges(
            "kiln_concat_\(index)", pointers: pointers, count: outer, work: outer * row / element,
            body: ["  uint8_t *out = p[0];", "  for (size_t o = first; o < last; o++) {"] + copies + ["  }"])
    }

    static func lowerSplit(_ c: inout LoweringContext, _ node: Node, _ index: Int) throws {
        guard let x = node.inputs[0] else { return }
        let xs = c.shape(x)
        var axis = node.int("axis") ?? 0
        if axis < 0 { axis += xs.count }
        let element = elementSize(c, x)
        let outer = xs[..<axis].reduce(1, *)
        let inner = xs[(axis + 1)...].reduce(1, *) * element
        var offset = 0
        for case let output? in node.outputs {
            let chunk = c.shape(output)[axis] * inner
            if chunk > 0 {
                c.emit(
                    "  for (size_t o = 0; o < \(outer); o++) memcpy((uint8_t *)\(c.pointer(output)) + o * \(chunk), (const uint8_t *)\(c.pointer(x)) + o * \(xs[axis] * inner) + \(offset), \(chunk));"
                )
            }
            offset += chunk
        }
    }

    static func lowerSlice(_ c: inout LoweringContext, _ node: Node, _ index: Int) throws {
        guard let x = node.inputs[0], let y = node.outputs[0] else { return }
        let xs = c.shape(x)
        let ys = c.shape(y)
        var starts: [Int]
        var axes: [Int]
        var steps: [Int]
        if c.opset >= 10 {
            guard let s = c.constantIntegers(node.inputs[1]) else {
                throw c.notImplemented(node, index, "Slice whose starts are computed at run time")
            }
            starts = s
            axes =
                node.inputs.count > 3 ? (c.constantIntegers(node.inputs[3]) ?? Array(0..<s.count)) : Array(0..<s.count)
            steps =
                node.inputs.count > 4
                ? (c.constantIntegers(node.inputs[4]) ?? Array(repeating: 1, count: s.count))
                : Array(repeating: 1, count: s.count)
            if node.inputs.count > 3, node.inputs[3] != nil, c.constantIntegers(node.inputs[3]) == nil {
                throw c.notImplemented(node, index, "Slice whose axes are computed at run time")
            }
            if node.inputs.count > 4, node.inputs[4] != nil, c.constantIntegers(node.inputs[4]) == nil {
                throw c.notImplemented(node, index, "Slice whose steps are computed at run time")
            }
        } else {
            starts = node.ints("starts") ?? []
            axes = node.ints("axes") ?? Array(0..<starts.count)
            steps = Array(repeating: 1, count: starts.count)
        }
        var begin = Array(repeating: 0, count: xs.count)
        var step = Array(repeating: 1, count: xs.count)
        for (k, rawAxis) in axes.enumerated() {
            let axis = rawAxis < 0 ? rawAxis + xs.count : rawAxis
            let size = xs[axis]
            var start = starts[k] < 0 ? starts[k] + size : starts[k]
            start = steps[k] > 0 ? min(max(start, 0), size) : min(max(start, 0), size - 1)
            begin[axis] = start
            step[axis] = steps[k]
        }
        try emitStrided(&c, node, index, from: x, to: y, begin: begin, step: step, outShape: ys)
    }

    static func emitStrided(
        _ c: inout LoweringContext, _ node: Node, _ index: Int, from x: ValueID, to y: ValueID, begin: [Int],
        step: [Int], outShape: [Int]
    ) throws {
        let xs = c.shape(x)
        guard xs.count <= 8 else { throw c.notImplemented(node, index, "rank \(xs.count) (up to 8)") }
        guard (elementCount(outShape) ?? 0) > 0 else { return }
        var strides: [Int] = []
        var offset = 0
        var unit = 1
        for axis in stride(from: xs.count - 1, through: 0, by: -1) {
            strides.insert(unit * step[axis], at: 0)
            offset += begin[axis] * unit
            unit *= xs[axis]
        }
        if outShape.isEmpty { return c.emitCopy(from: x, to: y) }
        c.emit(
            "  { static const size_t d[] = \(CSource.sizes(outShape)); static const ptrdiff_t s[] = \(CSource.sizes(strides));"
        )
        c.emit(
            "    KK(strided_copy)(\(c.pointer(x)), \(c.pointer(y)), \(elementSize(c, x)), \(outShape.count), d, s, \(offset)); }"
        )
    }

    static func lowerExpand(_ c: inout LoweringContext, _ node: Node, _ index: Int) throws {
        guard let x = node.inputs[0], let y = node.outputs[0] else { return }
        c.emitElementwise(output: y, operands: [x]) { $0[0] }
    }

    static func lowerTile(_ c: inout LoweringContext, _ node: Node, _ index: Int) throws {
        guard let x = node.inputs[0], let y = node.outputs[0] else { return }
        let xs = c.shape(x)
        let ys = c.shape(y)
        // Index y's coordinate modulo x's dims: a loop nest over y.
        let (px, py) = (c.pointer(x), c.pointer(y))
        var indexes: [String] = []
        for (axis, dim) in ys.enumerated() {
            c.emit("  for (size_t i\(axis) = 0; i\(axis) < \(dim); i\(axis)++)")
            indexes.append("i\(axis)")
        }
        var source: [String] = []
        var target: [String] = []
        var sStride = 1
        var tStride = 1
        for axis in stride(from: ys.count - 1, through: 0, by: -1) {
            source.append("(i\(axis) % \(max(xs[axis], 1))) * \(sStride)")
            target.append("i\(axis) * \(tStride)")
            sStride *= xs[axis]
            tStride *= ys[axis]
        }
        c.emit(
            "    \(py)[\(target.isEmpty ? "0" : target.joined(separator: " + "))] = \(px)[\(source.isEmpty ? "0" : source.joined(separator: " + "))];"
        )
    }

    static func lowerGather(_ c: inout LoweringContext, _ node: Node, _ index: Int) throws {
        guard let data = node.inputs[0], let indices = node.inputs[1], let y = node.outputs[0] else { return }
        let ds = c.shape(data)
        var axis = node.int("axis") ?? 0
        if axis < 0 { axis += ds.count }
        let outer = ds[..<axis].reduce(1, *)
        let inner = ds[(axis + 1)...].reduce(1, *)
        var indexPointer = c.pointer(indices)
        if c.dataType(indices) == .int32 {
            let count = c.count(indices)
            c.emit(
                "  int64_t g\(index)[\(max(count, 1))]; for (size_t i = 0; i < \(count); i++) g\(index)[i] = \(indexPointer)[i];"
            )
            indexPointer = "g\(index)"
        }
        c.emit(
            "  if (KK(gather)(\(c.pointer(data)), \(indexPointer), \(c.pointer(y)), \(elementSize(c, data)), \(outer), \(ds[axis]), \(inner), \(c.count(indices)))) return 2;"
        )
    }

    /// Compress with a condition known at compile time (shape inference insists): a gather of the kept indexes.
    static func lowerCompress(_ c: inout LoweringContext, _ node: Node, _ index: Int) throws {
        guard node.inputs.count == 2, let data = node.inputs[0], let y = node.outputs[0],
            let condition = c.constantIntegers(node.inputs[1])
        else {
            throw c.notImplemented(node, index, "Compress whose condition is computed at run time")
        }
        let ds = c.shape(data)
        let (outer, length, inner): (Int, Int, Int)
        if let raw = node.int("axis") {
            let axis = raw < 0 ? raw + ds.count : raw
            (outer, length, inner) = (ds[..<axis].reduce(1, *), ds[axis], ds[(axis + 1)...].reduce(1, *))
        } else {
            (outer, length, inner) = (1, c.count(data), 1)
        }
        let kept = condition.prefix(length).enumerated().filter { $0.element != 0 }.map(\.offset)
        guard !kept.isEmpty, outer * inner > 0 else { return }
        c.emit("  { static const int64_t kept[] = \(CSource.sizes(kept));")
        c.emit(
            "    if (KK(gather)(\(c.pointer(data)), kept, \(c.pointer(y)), \(elementSize(c, data)), \(outer), \(length), \(inner), \(kept.count))) return 2; }"
        )
    }

    static func lowerPad(_ c: inout LoweringContext, _ node: Node, _ index: Int) throws {
        guard let x = node.inputs[0], let y = node.outputs[0] else { return }
        let xs = c.shape(x)
        let mode = ["constant": 0, "reflect": 1, "edge": 2, "wrap": 3][node.string("mode") ?? "constant"]
        guard let mode else { throw c.notImplemented(node, index, "Pad mode \(quoted(node.string("mode") ?? ""))") }
        var pads: [Int]
        var value: String = "0"
        if c.opset >= 11 {
            guard let constant = c.constantIntegers(node.inputs[1]) else {
                throw c.notImplemented(node, index, "Pad whose pads are computed at run time")
            }
            pads = constant
            if node.inputs.count > 2, let v = node.inputs[2] { value = c.pointer(v) }
        } else {
            pads = node.ints("pads") ?? []
            let literal = CSource.literal(Double(node.float("value") ?? 0), as: c.dataType(x))
            c.emit("  static const \(c.ctype(x)) pv\(index)[1] = {\(literal)};")
            value = "pv\(index)"
        }
        var axes = Array(0..<xs.count)
        if c.opset >= 18, node.inputs.count > 3, let axesInput = node.inputs[3] {
            guard let constant = c.constantIntegers(axesInput) else {
                throw c.notImplemented(node, index, "Pad whose axes are computed at run time")
            }
            axes = constant.map { $0 < 0 ? $0 + xs.count : $0 }
        }
        var begin = Array(repeating: 0, count: xs.count)
        for (k, axis) in axes.enumerated() { begin[axis] = pads[k] }
        if value == "0" {
            c.emit("  static const \(c.ctype(x)) pv\(index)[1] = {0};")
            value = "pv\(index)"
        }
        c.emit(
            "  { static const size_t di[] = \(CSource.sizes(xs)), dout[] = \(CSource.sizes(c.shape(y))); static const ptrdiff_t b[] = \(CSource.sizes(begin));"
        )
        c.emit(
            "    KK(pad)(\(c.pointer(x)), \(c.pointer(y)), \(elementSize(c, x)), \(xs.count), di, b, dout, \(mode), \(value)); }"
        )
    }

    static func lowerConstantOfShape(_ c: inout LoweringContext, _ node: Node, _ index: Int) throws {
        guard let y = node.outputs[0] else { return }
        let value = node.tensor("value")?.doubles()?.first ?? 0
        let literal = CSource.literal(value, as: c.dataType(y))
        c.emit("  for (size_t i = 0; i < \(c.count(y)); i++) \(c.pointer(y))[i] = \(literal);")
    }

    static func lowerRange(_ c: inout LoweringContext, _ node: Node, _ index: Int) throws {
        guard let start = node.inputs[0], let delta = node.inputs[2], let y = node.outputs[0] else { return }
        c.emit(
            "  for (size_t i = 0; i < \(c.count(y)); i++) \(c.pointer(y))[i] = (\(c.ctype(y)))(\(c.pointer(start))[0] + (\(c.ctype(y)))i * \(c.pointer(delta))[0]);"
        )
    }

    static func lowerReduce(_ c: inout LoweringContext, _ node: Node, _ index: Int) throws {
        guard let x = node.inputs[0], let y = node.outputs[0] else { return }
        let xs = c.shape(x)
        let inputSince = node.opType == "ReduceSum" ? 13 : 18
        var axes: [Int]?
        if c.opset >= inputSince {
            if node.inputs.count > 1, let axesInput = node.inputs[1] {
                guard let constant = c.constantIntegers(axesInput) else {
                    throw c.notImplemented(node, index, "\(node.opType) whose axes are computed at run time")
                }
                axes = constant
            }
        } else {
            axes = node.ints("axes")
        }
        if (axes ?? []).isEmpty && node.int("noop_with_empty_axes") == 1 { return c.emitCopy(from: x, to: y) }
        let reduced = Set((axes ?? []).isEmpty ? Array(xs.indices) : axes!.map { $0 < 0 ? $0 + xs.count : $0 })
        let op = [
            "ReduceSum": 0, "ReduceMean": 1, "ReduceMax": 2, "ReduceMin": 3, "ReduceProd": 4, "ReduceL1": 5,
            "ReduceL2": 6,
            "ReduceLogSum": 7, "ReduceLogSumExp": 8, "ReduceSumSquare": 9,
        ][node.opType]!
        let kernel: String
        switch c.dataType(x) {
        case .float32: kernel = "reduce_f32"
        case .float64: kernel = "reduce_f64"
        case .int64: kernel = "reduce_i64"
        default: kernel = "reduce_i32"
        }
        if xs.isEmpty { return c.emitElementwise(output: y, operands: [x]) { $0[0] } }
        guard xs.count <= 8 else { throw c.notImplemented(node, index, "reductions of rank \(xs.count) (up to 8)") }
        c.emit(
            "  { static const size_t d[] = \(CSource.sizes(xs)); static const uint8_t r[] = \(CSource.sizes(xs.indices.map { reduced.contains($0) ? 1 : 0 }));"
        )
        c.emit("    KK(\(kernel))(\(op), \(c.pointer(x)), \(xs.count), d, r, \(c.pointer(y))); }")
    }

    static func lowerArgReduce(_ c: inout LoweringContext, _ node: Node, _ index: Int) throws {
        guard let x = node.inputs[0], let y = node.outputs[0] else { return }
        let xs = c.shape(x)
        var axis = node.int("axis") ?? 0
        if axis < 0 { axis += xs.count }
        c.emit(
            "  KK(arg_reduce_f32)(\(node.opType == "ArgMax" ? 1 : 0), \(node.int("select_last_index") ?? 0), \(c.pointer(x)), \(xs[..<axis].reduce(1, *)), \(xs[axis]), \(xs[(axis + 1)...].reduce(1, *)), \(c.pointer(y)));"
        )
    }
}

/// Gather/scatter by element, triangles and identity-like fills.
enum IndexingLowerings {
    /// Emits a loop over every element of `shape` with `i` the flat index and
    /// `c<axis>` the coordinates; `body` is the loop body.
    static func emitCoordinates(_ c: inout LoweringContext, _ shape: [Int], _ body: String) {
        let total = elementCount(shape) ?? 0
        let strides = rowMajorStrides(shape)
        c.emit("  for (size_t i = 0; i < \(total); i++) {")
        for (axis, dim) in shape.enumerated() {
            c.emit("    size_t c\(axis) = (i / \(strides[axis])) % \(max(dim, 1)); (void)c\(axis);")
        }
        c.emit("    \(body) }")
    }

    /// Emits `o += k · stride` for each of the `dims.count` indices in row `row` of an index tuple
    /// tensor (GatherND, ScatterND), wrapping negative indices and returning 2 for out-of-range ones.
    static func emitTupleOffset(
        _ c: inout LoweringContext, indices: String, row: String, dims: ArraySlice<Int>, strides: ArraySlice<Int>
    ) {
        for (d, (dim, stride)) in zip(dims, strides).enumerated() {
            c.emit(
                "    { int64_t k = \(indices)[\(row) * \(dims.count) + \(d)]; if (k < 0) k += \(dim); if (k < 0 || k >= \(dim)) return 2; o += (size_t)k * \(stride); }"
            )
        }
    }

    /// C that reads `k` from `indices[i]` (negative indices wrap, out-of-range ones return 2) and sets `o` to
    /// the flat offset in `shape` of the element at coordinate k on `axis` and c0, c1, ... elsewhere.
    static func elementOffset(indices: String, shape: [Int], axis: Int) -> String {
        let dataStrides = rowMajorStrides(shape)
        let terms = shape.indices.map { $0 == axis ? "(size_t)k * \(dataStrides[$0])" : "c\($0) * \(dataStrides[$0])" }
        return
            "int64_t k = \(indices)[i]; if (k < 0) k += \(shape[axis]); if (k < 0 || k >= \(shape[axis])) return 2; size_t o = \(terms.joined(separator: " + "));"
    }

    /// How ScatterElements and ScatterND write an update into their target, by `reduction`; nil when unknown.
    static func scatterAssignment(_ reduction: String) -> ((_ target: String, _ update: String) -> String)? {
        switch reduction {
        case "none": { "\($0) = \($1)" }
        case "add": { "\($0) += \($1)" }
        case "mul": { "\($0) *= \($1)" }
        case "max": { "\($0) = \($0) > \($1) ? \($0) : \($1)" }
        case "min": { "\($0) = \($0) < \($1) ? \($0) : \($1)" }
        default: nil
        }
    }

    static func lowerGatherElements(_ c: inout LoweringContext, _ node: Node, _ index: Int) throws {
        guard let data = node.inputs[0], let indices = node.inputs[1], let y = node.outputs[0] else { return }
        let ds = c.shape(data)
        var axis = node.int("axis") ?? 0
        if axis < 0 { axis += ds.count }
        let (pd, pi, py) = (c.pointer(data), c.pointer(indices), c.pointer(y))
        emitCoordinates(
            &c, c.shape(indices), "\(elementOffset(indices: pi, shape: ds, axis: axis)) \(py)[i] = \(pd)[o];")
    }

    static func lowerScatterElements(_ c: inout LoweringContext, _ node: Node, _ index: Int) throws {
        guard let data = node.inputs[0], let indices = node.inputs[1], let updates = node.inputs[2],
            let y = node.outputs[0]
        else { return }
        let ds = c.shape(data)
        var axis = node.int("axis") ?? 0
        if axis < 0 { axis += ds.count }
        let reduction = node.string("reduction") ?? "none"
        guard let assign = scatterAssignment(reduction) else {
            throw c.notImplemented(node, index, "ScatterElements reduction \(quoted(reduction))")
        }
        c.emitCopy(from: data, to: y)
        let (pi, pu, py) = (c.pointer(indices), c.pointer(updates), c.pointer(y))
        emitCoordinates(
            &c, c.shape(indices),
            "\(elementOffset(indices: pi, shape: ds, axis: axis)) \(assign("\(py)[o]", "\(pu)[i]"));")
    }

    static func lowerScatterND(_ c: inout LoweringContext, _ node: Node, _ index: Int) throws {
        guard let data = node.inputs[0], let indices = node.inputs[1], let updates = node.inputs[2],
            let y = node.outputs[0]
        else { return }
        let ds = c.shape(data)
        let ishape = c.shape(indices)
        let depth = ishape.last ?? 0
        let slice = ds[depth...].reduce(1, *)
        let count = ishape.dropLast().reduce(1, *)
        let dataStrides = rowMajorStrides(ds)
        let reduction = node.string("reduction") ?? "none"
        guard let assign = scatterAssignment(reduction) else {
            throw c.notImplemented(node, index, "ScatterND reduction \(quoted(reduction))")
        }
        c.emitCopy(from: data, to: y)
        let (pi, pu, py) = (c.pointer(indices), c.pointer(updates), c.pointer(y))
        c.emit("  for (size_t n = 0; n < \(count); n++) { size_t o = 0;")
        emitTupleOffset(&c, indices: pi, row: "n", dims: ds[..<depth], strides: dataStrides[..<depth])
        c.emit("    for (size_t j = 0; j < \(slice); j++) \(assign("\(py)[o + j]", "\(pu)[n * \(slice) + j]")); }")
    }

    static func lowerTrilu(_ c: inout LoweringContext, _ node: Node, _ index: Int) throws {
        guard let x = node.inputs[0], let y = node.outputs[0] else { return }
        let xs = c.shape(x)
        guard xs.count >= 2 else { throw c.notImplemented(node, index, "Trilu needs rank ≥ 2") }
        var k = "0"
        if node.inputs.count > 1, let kInput = node.inputs[1] { k = "\(c.pointer(kInput))[0]" }
        let upper = (node.int("upper") ?? 1) == 1
        let (row, column) = (xs.count - 2, xs.count - 1)
        let (px, py) = (c.pointer(x), c.pointer(y))
        let keep =
            upper
            ? "(int64_t)c\(column) - (int64_t)c\(row) >= (int64_t)(\(k))"
            : "(int64_t)c\(column) - (int64_t)c\(row) <= (int64_t)(\(k))"
        emitCoordinates(&c, xs, "\(py)[i] = \(keep) ? \(px)[i] : 0;")
    }

    static func lowerCumSum(_ c: inout LoweringContext, _ node: Node, _ index: Int) throws {
        guard let x = node.inputs[0], let axisInput = node.inputs[1], let y = node.outputs[0] else { return }
        let xs = c.shape(x)
        guard var axis = c.constantIntegers(axisInput)?.first else {
            throw c.notImplemented(node, index, "CumSum whose axis is computed at run time")
        }
        if axis < 0 { axis += xs.count }
        let outer = xs[..<axis].reduce(1, *)
        let length = xs[axis]
        let inner = xs[(axis + 1)...].reduce(1, *)
        let exclusive = node.int("exclusive") == 1
        let reverse = node.int("reverse") == 1
        let (px, py) = (c.pointer(x), c.pointer(y))
        c.emit("  for (size_t o = 0; o < \(outer); o++) for (size_t j = 0; j < \(inner); j++) { \(c.ctype(y)) sum = 0;")
        c.emit(
            "    for (size_t s = 0; s < \(length); s++) { size_t k = \(reverse ? "\(length) - 1 - s" : "s"); size_t at = (o * \(length) + k) * \(inner) + j;"
        )
        c.emit(
            exclusive ? "      \(py)[at] = sum; sum += \(px)[at]; } }" : "      sum += \(px)[at]; \(py)[at] = sum; } }")
    }

    static func lowerEyeLike(_ c: inout LoweringContext, _ node: Node, _ index: Int) throws {
        guard let y = node.outputs[0] else { return }
        let k = node.int("k") ?? 0
        emitCoordinates(&c, c.shape(y), "\(c.pointer(y))[i] = (int64_t)c1 - (int64_t)c0 == \(k);")
    }

    static func lowerCastLike(_ c: inout LoweringContext, _ node: Node, _ index: Int) throws {
        try ElementwiseLowerings.lowerCast(&c, node, index)
    }
}
