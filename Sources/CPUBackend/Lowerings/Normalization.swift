import Diagnostics
import ModelIR

/// Normalizations beyond batch, layer and instance norm: LRN,
/// MeanVarianceNormalization and GroupNormalization. Statistics are
/// accumulated in double.
enum NormalizationLowerings {
    static func lowerLRN(_ c: inout LoweringContext, _ node: Node, _ index: Int) throws {
        guard let x = node.inputs[0], let y = node.outputs[0] else { return }
        let xs = c.shape(x)
        guard xs.count >= 2, let size = node.int("size"), size > 0 else {
            throw c.notImplemented(node, index, "LRN needs an input of rank ≥ 2 and a positive size")
        }
        let alpha = Double(node.float("alpha") ?? 0.0001)
        let beta = Double(node.float("beta") ?? 0.75)
        let bias = Double(node.float("bias") ?? 1)
        let (channels, spatial) = (xs[1], xs[2...].reduce(1, *))
        let (below, above) = ((size - 1) / 2, (size - 1) - (size - 1) / 2)
        let (px, py) = (c.pointer(x), c.pointer(y))
        c.emit(
            "  for (size_t n = 0; n < \(xs[0]); n++) for (size_t ch = 0; ch < \(channels); ch++) for (size_t s = 0; s < \(spatial); s++) {"
        )
        c.emit(
            "    double sum = 0; size_t first = ch >= \(below) ? ch - \(below) : 0, last = ch + \(above) < \(channels) ? ch + \(above) : \(channels - 1);"
        )
        c.emit(
            "    for (size_t k = first; k <= last; k++) { double v = \(px)[(n * \(channels) + k) * \(spatial) + s]; sum += v * v; }"
        )
        c.emit("    size_t at = (n * \(channels) + ch) * \(spatial) + s;")
        c.emit(
            "    \(py)[at] = (\(c.ctype(y)))(\(px)[at] / pow(\(CSource.double(bias)) + \(CSource.double(alpha / Double(size))) * sum, \(CSource.double(beta)))); }"
        )
    }

    /// (x - E[x]) / (sqrt(E[x²] - E[x]²) + 1e-9) over `axes` (default N, H, W), as ONNX's function body computes it.
    static func lowerMeanVarianceNormalization(_ c: inout LoweringContext, _ node: Node, _ index: Int) throws {
        guard let x = node.inputs[0], let y = node.outputs[0] else { return }
        let xs = c.shape(x)
        let axes = Set((node.ints("axes") ?? [0, 2, 3]).map { $0 < 0 ? $0 + xs.count : $0 })
        guard axes.allSatisfy({ $0 >= 0 && $0 < xs.count }) else {
            throw c.notImplemented(node, index, "MeanVarianceNormalization axes outside the input's rank")
        }
        let kept = xs.indices.filter { !axes.contains($0) }
        let groups = kept.map { xs[$0] }.reduce(1, *)
        let perGroup = max(1, (elementCount(xs) ?? 0) / max(groups, 1))
        let keptStrides = rowMajorStrides(kept.map { xs[$0] })
        let group = kept.enumerated().map { "c\($0.element) * \(keptStrides[$0.offset])" }
        let g = group.isEmpty ? "0" : group.joined(separator: " + ")
        c.scratchFloats = max(c.scratchFloats, groups * 4)
        let (px, py) = (c.pointer(x), c.pointer(y))
        c.emit("  { double *sum = (double *)S, *squares = sum + \(groups);")
        c.emit("  for (size_t k = 0; k < \(groups); k++) sum[k] = squares[k] = 0;")
        IndexingLowerings.emitCoordinates(
            &c, xs, "size_t g = \(g); double v = \(px)[i]; sum[g] += v; squares[g] += v * v;")
        IndexingLowerings.emitCoordinates(
            &c, xs,
            "size_t g = \(g); double mean = sum[g] / \(perGroup); double variance = squares[g] / \(perGroup) - mean * mean; \(py)[i] = (\(c.ctype(y)))((\(px)[i] - mean) / (sqrt(variance > 0 ? variance : 0) + 1e-9));"
        )
        c.emit("  }")
    }

    /// GroupNormalization: statistics per (batch, group) over the group's channels and all spatial positions;
    /// scale and bias per channel (opset 21) or per group (opset 18).
    static func lowerGroupNormalization(_ c: inout LoweringContext, _ node: Node, _ index: Int) throws {
        guard let x = node.inputs[0], let scale = node.inputs[1], let bias = node.inputs[2], let y = node.outputs[0]
        else { return }
        let xs = c.shape(x)
        guard xs.count >= 2, let groups = node.int("num_groups"), groups > 0, xs[1] % groups == 0 else {
            throw c.notImplemented(node, index, "GroupNormalization needs channels divisible by num_groups")
        }
        let perChannel = c.opset >= 21
        let epsilon = Double(node.float("epsilon") ?? 1e-5)
        let (channels, spatial) = (xs[1], xs[2...].reduce(1, *))
        let length = channels / groups * spatial
        let (px, ps, pb, py) = (c.pointer(x), c.pointer(scale), c.pointer(bias), c.pointer(y))
        let parameter = perChannel ? "ch" : "g"
        c.emit("  for (size_t n = 0; n < \(xs[0]); n++) for (size_t g = 0; g < \(groups); g++) {")
        c.emit("    size_t base = (n * \(groups) + g) * \(length); double mean = 0, variance = 0;")
        c.emit("    for (size_t k = 0; k < \(length); k++) mean += \(px)[base + k];")
        c.emit("    mean /= \(max(length, 1));")
        c.emit("    for (size_t k = 0; k < \(length); k++) { double d = \(px)[base + k] - mean; variance += d * d; }")
        c.emit("    double inv = 1 / sqrt(variance / \(max(length, 1)) + \(CSource.double(epsilon)));")
        c.emit(
            "    for (size_t k = 0; k < \(length); k++) { size_t ch = g * \(channels / groups) + k / \(max(spatial, 1)); (void)ch;"
        )
        c.emit(
            "      \(py)[base + k] = (\(c.ctype(y)))((\(px)[base + k] - mean) * inv * \(ps)[\(parameter)] + \(pb)[\(parameter)]); } }"
        )
    }
}
