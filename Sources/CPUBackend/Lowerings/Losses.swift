import Diagnostics
import ModelIR

/// Loss operators (inference form), as generated loops.
enum LossLowerings {
    /// NegativeLogLikelihoodLoss: -input[n, target, d...] × weight[target], reduced by none, sum or mean.
    static func lowerNLL(_ c: inout LoweringContext, _ node: Node, _ index: Int) throws {
        try emitNLL(&c, node, index, inputPointer: nil)
    }

    /// SoftmaxCrossEntropyLoss: log-softmax over the class axis (into the log_prob output or scratch), then NLL.
    static func lowerSCE(_ c: inout LoweringContext, _ node: Node, _ index: Int) throws {
        guard let input = node.inputs[0] else { return }
        let shape = c.shape(input)
        guard shape.count >= 2 else { throw c.notImplemented(node, index, "SoftmaxCrossEntropyLoss of rank < 2") }
        let logProb: String
        if node.outputs.count > 1, let output = node.outputs[1] {
            logProb = c.pointer(output)
        } else {
            c.scratchFloats = max(c.scratchFloats, c.count(input))
            logProb = "S"
        }
        c.emit(
            "  KK(softmax_f32)(1, \(c.pointer(input)), \(shape[0]), \(shape[1]), \(shape[2...].reduce(1, *)), \(logProb));"
        )
        try emitNLL(&c, node, index, inputPointer: logProb)
    }

    static func emitNLL(_ c: inout LoweringContext, _ node: Node, _ index: Int, inputPointer: String?) throws {
        guard let input = node.inputs[0], let target = node.inputs[1], let y = node.outputs[0] else { return }
        let shape = c.shape(input)
        guard shape.count >= 2 else { throw c.notImplemented(node, index, "NegativeLogLikelihoodLoss of rank < 2") }
        let classes = shape[1]
        let inner = shape[2...].reduce(1, *)
        let count = c.count(target)
        let reduction = node.string("reduction") ?? "mean"
        guard ["none", "sum", "mean"].contains(reduction) else {
            throw c.notImplemented(node, index, "reduction \(quoted(reduction))")
        }
        let weight = node.inputs.count > 2 ? node.inputs[2].map { c.pointer($0) } : nil
        let ignore = node.int("ignore_index")
        let (px, pt, py) = (inputPointer ?? c.pointer(input), c.pointer(target), c.pointer(y))
        c.emit("  { double total = 0, weights = 0;")
        c.emit(
            "    for (size_t i = 0; i < \(count); i++) { int64_t t = (int64_t)\(pt)[i]; size_t n = i / \(max(inner, 1)), d = i % \(max(inner, 1));"
        )
        c.emit(
            "      double w = \(ignore.map { "t == \($0) ? 0 : " } ?? "")\(weight.map { "\($0)[t < 0 || t >= \(classes) ? 0 : t]" } ?? "1");"
        )
        c.emit("      if (w != 0 && (t < 0 || t >= \(classes))) return 2;")
        c.emit("      double loss = w == 0 ? 0 : -(double)\(px)[(n * \(classes) + (size_t)t) * \(inner) + d] * w;")
        if reduction == "none" {
            c.emit("      \(py)[i] = (\(c.ctype(y)))loss; } (void)total; (void)weights; }")
        } else {
            c.emit("      total += loss; weights += w; }")
            c.emit(
                "    \(py)[0] = (\(c.ctype(y)))(\(reduction == "mean" ? "weights == 0 ? 0 : total / weights" : "total")); }"
            )
        }
    }
}
